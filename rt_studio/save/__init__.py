"""The save path: what runs inside the user's transaction on every document event.

`handler` is the doc_events hook (early returns, then the matcher), `cache` the per-process
rule cache kept current across processes, `transaction` the one mechanism for state that
lives as long as the transaction and for what happens at its commit or rollback.
"""
