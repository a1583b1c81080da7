"""Batches of messages over a rule's rate limit, kept in Redis and delivered when due.

The engine decides what is batched (`engine/batching.py`); this module keeps the batches
where every web and background worker shares them, and delivers the summaries. Per batch:
a hash `{count}` and a sorted set of the documents in first-seen order; one site-wide
sorted set indexes the batches by the moment their window ends. Collecting a chunk of
recipients and taking the due batches are one Lua call each, so two workers never open two
batches for one recipient nor both deliver one; whose batch is collecting is asked in the rate
limiter's call (`admit`), so a chunk's limit costs one round trip.

Summaries go out from `deliver_due`, which Frappe's scheduler runs every minute: a summary
arrives within a minute after its window ends (the scheduler must be enabled on the site).
"""

import json
import time
from collections.abc import Sequence

import frappe

from rt_studio import transaction
from rt_studio.engine.batching import MAX_DOCNAMES, Batch, admit_in_turn
from rt_studio.engine.interfaces import RateLimiter
from rt_studio.engine.ratelimit import rule_key
from rt_studio.engine.summaries import due_summaries
from rt_studio.rate_limit import RedisRateLimiter

DUE_KEY = "rt_studio:batch_due"
#: Batches delivered per transaction by `deliver_due`.
DUE_PER_COMMIT = 200
#: A batch still not delivered this long after its window ended is dropped from Redis:
#: only a site whose scheduler has been off for a week gets there.
STALE_SECONDS = 7 * 24 * 3600

COLLECT = """
local due_key, now, window, docname, max_docs, prefix, keep = KEYS[1], tonumber(ARGV[1]),
	tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
for i = 7, #ARGV do
	local member = ARGV[i]
	local key, docs = prefix .. member, prefix .. member .. ':docs'
	redis.call('ZADD', due_key, 'NX', now + window, member)
	redis.call('HINCRBY', key, 'count', 1)
	if docname ~= '' and not redis.call('ZSCORE', docs, docname) then
		local n = redis.call('ZCARD', docs)
		if n < max_docs then redis.call('ZADD', docs, n, docname) end
	end
	redis.call('EXPIRE', key, window + keep)
	redis.call('EXPIRE', docs, window + keep)
end
return 1
"""

TAKE_DUE = """
local due_key, now, limit, prefix = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'LIMIT', 0, limit)) do
	local key, docs = prefix .. member, prefix .. member .. ':docs'
	local score = redis.call('ZSCORE', due_key, member)
	table.insert(out, {member, redis.call('HGET', key, 'count') or '0', score, redis.call('ZRANGE', docs, 0, -1)})
	redis.call('DEL', key, docs)
	redis.call('ZREM', due_key, member)
end
return out
"""


def _member(rule: str, user: str) -> str:
	return json.dumps([rule, user], separators=(",", ":"))


class RedisBatches:
	"""The engine's `Batches`, shared by every process of the site."""

	def __init__(self):
		self.due_key = frappe.cache.make_key(DUE_KEY)
		self.prefix = frappe.cache.make_key("rt_studio:batch:")

	def collecting(self, rule: str, users: Sequence[str]) -> set[str]:
		if not users:
			return set()
		scores = frappe.cache.zmscore(self.due_key, [_member(rule, user) for user in users])
		return {user for user, score in zip(users, scores, strict=True) if score is not None}

	def admit(
		self, rule: str, users: Sequence[str], limiter: RateLimiter, limit: int, window: int, consume: bool
	) -> set[str]:
		"""Whose batch is collecting and who is over the limit, in the rate limiter's one script
		call (the batches' index is a sorted set of `_member`s)."""
		if not isinstance(limiter, RedisRateLimiter):
			return admit_in_turn(self, rule, users, limiter, limit, window, consume)
		keys = [rule_key(rule, user) for user in users]
		collecting = (self.due_key, [_member(rule, user) for user in users])
		allowed = limiter.check_many(keys, limit, window, consume, unless_in=collecting)
		return {user for user, ok in zip(users, allowed, strict=True) if not ok}

	def collect(self, rule: str, users: Sequence[str], docname: str, window: int) -> None:
		"""Join the batches when the transaction commits: a save that rolls back sent nothing,
		so it adds nothing to a summary either."""
		args = (time.time(), window, docname or "", MAX_DOCNAMES, self.prefix, STALE_SECONDS)
		members = [_member(rule, user) for user in users]
		transaction.queued("rt_studio_batch_collects", self._collect_all, transaction.ignore).append(
			(*args, *members)
		)

	def _collect_all(self, collects: list[tuple]) -> None:
		pipe = frappe.cache.pipeline()
		for args in collects:
			pipe.eval(COLLECT, 1, self.due_key, *args)
		pipe.execute()

	def take_due(self, limit: int) -> list[Batch]:
		taken = frappe.cache.eval(TAKE_DUE, 1, self.due_key, time.time(), limit, self.prefix)
		batches = []
		for member, count, due, docnames in taken:
			rule, user = json.loads(member)
			names = [name.decode() for name in docnames]
			batches.append(Batch(rule, user, int(count), names, float(due)))
		return [batch for batch in batches if batch.count]


def deliver_due() -> None:
	"""Deliver the summary of every batch whose window has ended (scheduled every minute)."""
	from rt_studio import cache, trace
	from rt_studio.delivery import publish
	from rt_studio.handler import context_for

	rules = cache.get_index().rules
	while outcomes := due_summaries(context_for(None), rules, DUE_PER_COMMIT):
		for outcome in outcomes:
			publish(outcome)
			doctype = rules[outcome.rule].document_type if outcome.rule in rules else ""
			trace.record(outcome, doctype, "")
		frappe.db.commit()
