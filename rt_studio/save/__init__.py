"""The save path: what runs inside the user's transaction on every document event.

`handler` is the doc_events hook (early returns, then the matcher). What it shares with the
delivery layer lives below both: `rt_studio.rule_cache` (the per-process rule cache kept
current across processes) and `rt_studio.transaction` (state that lives as long as the
transaction, and what happens at its commit or rollback).
"""
