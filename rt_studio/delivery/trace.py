"""The last evaluations of each rule, kept in Redis so an admin can see why a rule did not fire.

Entries are queued in memory during the transaction and written in one pipeline after it
commits (or after it rolls back, marked as such): the save path never waits on Redis.
A large audience's delivery job shows its progress on the entry that deferred it: the job
writes how far it got to a key of its own after each chunk, and `read` adds it to the entry.
"""

import json
import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import frappe

from rt_studio import transaction
from rt_studio.engine.verdicts import BATCHED, DELIVER, MUTED, NO_SUCH_USER
from rt_studio.people.site import site_now, site_time_zone

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
	elif outcome.recipients:
		verdicts = Counter(r.verdict for r in outcome.recipients)
		unknown = [r.user for r in outcome.recipients if r.verdict == NO_SUCH_USER]
		progress = None
	else:  # most entries: a condition that did not hold
		verdicts, unknown, progress = {}, [], None
	unknown = unknown[:UNKNOWN_USERS_SHOWN]
	entry = {
		# the clock only: written in the site's time zone by `write` (most entries are of rules
		# whose condition did not hold, on every save: the zone's lookup is paid once, there)
		"time": time.time(),
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
		entry["progress"] = {**progress, "time": site_now().isoformat()}
	transaction.queued("rt_studio_trace", write, write_rolled_back).append(entry)


#: KEYS: the global list, then each rule's list; ARGV: the two sizes, then per entry the index of its
#: rule's key (in KEYS) and its JSON. Each list gets its entries in one LPUSH, oldest first (so the
#: newest ends up at the head), and one LTRIM.
WRITE = """
local all_size, rule_size = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_key = {}
for i = 3, #ARGV, 2 do
	local k = tonumber(ARGV[i])
	per_key[k] = per_key[k] or {}
	table.insert(per_key[k], ARGV[i + 1])
	per_key[1] = per_key[1] or {}
	table.insert(per_key[1], ARGV[i + 1])
end
for k, values in pairs(per_key) do
	for start = 1, #values, 1000 do
		redis.call('LPUSH', KEYS[k], unpack(values, start, math.min(start + 999, #values)))
	end
	redis.call('LTRIM', KEYS[k], 0, (k == 1 and all_size or rule_size) - 1)
end
return 1
"""


def write(queue: list[dict], rolled_back: bool = False) -> None:
	"""The queued entries in one script call (a transaction's evaluations, a few or a job's
	thousand): one command to pack and send, however many rules they name."""
	if not queue:
		return
	keys = [frappe.cache.make_key(_key(None))]
	index: dict[str, int] = {}
	args: list = [ALL_RULES, PER_RULE]
	pipe = frappe.cache.pipeline(transaction=False)
	zone = ZoneInfo(site_time_zone())
	for entry in queue:
		# ISO 8601 in the site's zone, with its offset (the queue is this call's: the transaction ended)
		entry["time"] = datetime.fromtimestamp(entry["time"], zone).isoformat()
		if rolled_back:
			entry = {**entry, "fired": False, "reason": f"rolled back, nothing sent ({entry['reason']})"}
		rule = entry["rule"]
		if rule not in index:
			keys.append(frappe.cache.make_key(_key(rule)))
			index[rule] = len(keys)
		args += [index[rule], json.dumps(entry, default=str)]
		if entry.get("job") and entry.get("progress") and not rolled_back:
			_set_progress(pipe, entry["job"], entry["progress"])
	pipe.eval(WRITE, len(keys), *keys, *args)
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
