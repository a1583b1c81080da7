"""The last evaluations of each rule, kept in Redis so an admin can see why a rule did not fire.

Entries are queued in memory during the transaction and written in one pipeline after it
commits (or after it rolls back, marked as such): the save path never waits on Redis.
"""

import json

import frappe

from rt_studio.site import site_now

#: Evaluations kept per rule, and across all rules for the studio page.
PER_RULE = 50
ALL_RULES = 500


def _key(rule: str | None) -> str:
	"""The list's key before Frappe's site prefix (RedisWrapper's list methods add it)."""
	return f"rt_studio:trace:{rule}" if rule else "rt_studio:trace:*"


def record(outcome, doctype: str, docname: str, test: bool = False) -> None:
	"""Queue one evaluation for writing when the transaction ends."""
	entry = {
		"time": site_now().isoformat(),
		"rule": outcome.rule,
		"doctype": doctype,
		"docname": docname,
		"event": outcome.event,
		"fired": outcome.fired,
		"reason": outcome.reason,
		"recipients": sum(1 for r in outcome.recipients if r.verdict == "deliver"),
		"batched": sum(1 for r in outcome.recipients if r.verdict == "batched"),
		"muted": sum(1 for r in outcome.recipients if r.verdict == "muted"),
		"error": str(outcome.error) if outcome.error else None,
		"test": test,
	}
	queue = getattr(frappe.local, "rt_studio_trace", None)
	if queue is None:
		queue = frappe.local.rt_studio_trace = []
		frappe.db.after_commit.add(flush)
		frappe.db.after_rollback.add(flush_rolled_back)
	queue.append(entry)


def flush(rolled_back: bool = False) -> None:
	queue = getattr(frappe.local, "rt_studio_trace", None) or []
	frappe.local.rt_studio_trace = None
	if not queue:
		return
	pipe = frappe.cache.pipeline()
	for entry in queue:
		if rolled_back:
			entry = {**entry, "fired": False, "reason": f"rolled back, nothing sent ({entry['reason']})"}
		data = json.dumps(entry, default=str)
		for name, size in ((_key(entry["rule"]), PER_RULE), (_key(None), ALL_RULES)):
			key = frappe.cache.make_key(name)
			pipe.lpush(key, data)
			pipe.ltrim(key, 0, size - 1)
	pipe.execute()


def flush_rolled_back() -> None:
	flush(rolled_back=True)


def read(rule: str | None = None, limit: int = PER_RULE) -> list[dict]:
	"""Newest first; `rule=None` reads the evaluations of all rules."""
	return [json.loads(item) for item in frappe.cache.lrange(_key(rule), 0, max(limit, 1) - 1)]


def clear(rule: str | None = None) -> None:
	frappe.cache.delete_value(_key(rule))
