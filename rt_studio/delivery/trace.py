"""The last evaluations of each rule, kept in Redis so an admin can see why a rule did not fire.

Entries are queued in memory during the transaction and written in one pipeline after it
commits (or after it rolls back, marked as such): the save path never waits on Redis.
A large audience's delivery job shows its progress on the entry that deferred it: the job
writes how far it got to a key of its own after each chunk, and `read` adds it to the entry.
"""

import json
from collections import Counter

import frappe

from rt_studio import transaction
from rt_studio.engine.verdicts import BATCHED, DELIVER, MUTED, NO_SUCH_USER
from rt_studio.people.site import site_now

#: Evaluations kept per rule, and across all rules for the studio page.
PER_RULE = 50
ALL_RULES = 500
#: How long a delivery job's progress is kept: as long as its entry is likely to be looked at.
PROGRESS_SECONDS = 24 * 3600

#: Values of the verdict "no such user" listed in an entry, so an admin can see the typo.
UNKNOWN_USERS_SHOWN = 10


def _key(rule: str | None) -> str:
	"""The list's key before Frappe's site prefix (RedisWrapper's list methods add it)."""
	return f"rt_studio:trace:{rule}" if rule else "rt_studio:trace:*"


def record(
	outcome, doctype: str, docname: str, *, test: bool = False, job: str | None = None, tally=None
) -> None:
	"""Queue one evaluation for writing when the transaction ends.

	`job` names the delivery job that handles (or handled) a deferred evaluation; `tally`, the
	job's `deferred.Tally` when it ended, replaces the outcome's own recipients (the job decided
	them chunk by chunk) with its counts, its values that named no user and its final progress.
	"""
	if tally is not None:
		verdicts, unknown, progress = tally.verdicts, tally.unknown, tally.final
	else:
		verdicts = Counter(r.verdict for r in outcome.recipients)
		unknown = [r.user for r in outcome.recipients if r.verdict == NO_SUCH_USER]
		progress = None
	unknown = unknown[:UNKNOWN_USERS_SHOWN]
	entry = {
		"time": site_now().isoformat(),
		"rule": outcome.rule,
		"doctype": doctype,
		"docname": docname,
		"event": outcome.event,
		"fired": outcome.fired,
		"reason": outcome.reason,
		"recipients": verdicts.get(DELIVER, 0),
		"batched": verdicts.get(BATCHED, 0),
		"muted": verdicts.get(MUTED, 0),
		"verdicts": dict(verdicts),
		"unknown_users": unknown,
		"error": str(outcome.error) if outcome.error else None,
		"test": test,
		"job": job,
		"deferred": bool(getattr(outcome, "deferred", 0)),
	}
	if progress is not None:
		entry["progress"] = {**progress, "time": entry["time"]}
	transaction.queued("rt_studio_trace", write, write_rolled_back).append(entry)


def write(queue: list[dict], rolled_back: bool = False) -> None:
	"""One round trip: each list gets its entries in one LPUSH (oldest first, so the newest ends up
	at the head) and is trimmed once; no MULTI, a reader may see a list one trim too long."""
	if not queue:
		return
	lists: dict[str, list[str]] = {}
	pipe = frappe.cache.pipeline(transaction=False)
	for entry in queue:
		if rolled_back:
			entry = {**entry, "fired": False, "reason": f"rolled back, nothing sent ({entry['reason']})"}
		data = json.dumps(entry, default=str)
		lists.setdefault(_key(entry["rule"]), []).append(data)
		lists.setdefault(_key(None), []).append(data)
		if entry.get("job") and entry.get("progress") and not rolled_back:
			_set_progress(pipe, entry["job"], entry["progress"])
	for name, values in lists.items():
		key = frappe.cache.make_key(name)
		pipe.lpush(key, *values)
		pipe.ltrim(key, 0, (ALL_RULES if name == _key(None) else PER_RULE) - 1)
	pipe.execute()


def write_rolled_back(queue: list[dict]) -> None:
	write(queue, rolled_back=True)


def read(rule: str | None = None, limit: int = PER_RULE) -> list[dict]:
	"""Newest first; `rule=None` reads the evaluations of all rules. Job progress included."""
	entries = [json.loads(item) for item in frappe.cache.lrange(_key(rule), 0, max(limit, 1) - 1)]
	jobs = [e for e in entries if e.get("job")]
	if jobs:
		found = frappe.cache.mget([frappe.cache.make_key(_progress_key(e["job"])) for e in jobs])
		for entry, raw in zip(jobs, found, strict=True):
			entry["progress"] = json.loads(raw) if raw else None
	return entries


def _progress_key(job: str) -> str:
	return f"rt_studio:trace:job:{job}"


def progress(job: str, **state) -> None:
	"""Say how far a delivery job got (written at once: a job calls it after each commit)."""
	_set_progress(frappe.cache, job, {**state, "time": site_now().isoformat()})


def _set_progress(client, job: str, state: dict) -> None:
	key = frappe.cache.make_key(_progress_key(job))
	client.set(key, json.dumps(state), ex=PROGRESS_SECONDS)


def clear(rule: str | None = None) -> None:
	frappe.cache.delete_value(_key(rule))
