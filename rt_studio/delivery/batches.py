"""Batches of messages over a rule's rate limit, kept in Redis and delivered when due.

The engine decides what is batched (`engine/batching.py`); this module keeps the batches
where every web and background worker shares them, and delivers the summaries. Per batch:
a hash `{count}` and a sorted set of the documents in first-seen order; one site-wide
sorted set indexes the batches by the moment their window ends. Collecting a chunk of
recipients is one Lua call, so two workers never open two batches for one recipient; whose
batch is collecting is asked in the rate limiter's call (`admit`), so a chunk's limit costs
one round trip.

Summaries go out from `summaries.deliver_due`. When a commit opens a batch due within TIMER_HORIZON,
a timer job is enqueued after that commit (`arm_timer`): it runs `deliver_due` when the window
ends, then arms itself for the next batch due within the horizon. Frappe v15's worker does not run
RQ's scheduler (`start_worker` calls `Worker.work` without `with_scheduler`), so RQ's `enqueue_at`
would never fire on a stock bench: the timer is a job that waits in a worker, but only while that
worker has nothing else to do. It looks at the worker's queues every TIMER_POLL seconds; as soon
as a job waits there it queues itself again right behind that one job (`enqueue_timer`), so the
worker runs it and then the timer again. Another timer waiting (another site's, or this site's
next one) counts only when it is due earlier: timers due later would otherwise trade places with
it, a job each time, and the earliest due holds the workers that nothing else needs. A delivery
queued meanwhile waits at most TIMER_POLL behind it, and another app's backlog keeps its worker (one extra short job of the timer after
each of its jobs, while a summary is pending); the summary is then late by at most the job in
front of it. At most one timer is armed per site (a Redis mark holds its due time; an earlier
batch arms an earlier one), and only while batches are coming due. Frappe's scheduler still runs
`deliver_due` every minute (the scheduler must be enabled on the site): the safety net when a
timer is lost (a worker killed, Redis flushed), and it arms the timer for batches whose window is
longer than the horizon.
A run takes the due batches as RQ's StartedJobRegistry takes jobs: one Lua call moves each
out of the due index into a claim (its keys renamed, the claim time in a second sorted set),
so of two runs at once only one gets a batch, and a new message opens a new batch. The claim
is deleted only after the transaction that published the summary has committed and handed
its messages to Redis. A run that fails (an exception and its rollback, a killed worker, Redis
or the database unreachable) leaves its claims; CLAIM_SECONDS after claiming, a later run
takes them over and delivers them.

So a summary is delivered at least once, not exactly once. Twice when a run committed but
died (or lost Redis) before deleting its claims, or, if a run outlived CLAIM_SECONDS, when
both runs deliver it. It is lost only when it keeps failing until its claim expires
(STALE_SECONDS), when Redis loses its data, or as any realtime message is: pub/sub keeps
nothing for a desk that is offline, which catches up through `missed` (the summary is logged
before the commit). A summary delivered by a later run may arrive after newer messages of its
rule. A summary that fails every time takes the other batches of its run's transaction down
with it on every retry, delaying them CLAIM_SECONDS each time, until its claim expires.
Claims cost per DUE_PER_COMMIT batches the round trip that takes them (as deleting them at
once did) and one more, after the commit, that deletes them.
"""

import json
import time
import uuid
from collections.abc import Sequence

import frappe
from frappe.utils.background_jobs import get_queue

from rt_studio import transaction
from rt_studio.delivery.rate_limit import RedisRateLimiter
from rt_studio.engine.batching import MAX_DOCNAMES, Batch, admit_in_turn
from rt_studio.engine.interfaces import RateLimiter
from rt_studio.engine.ratelimit import rule_key
from rt_studio.engine.summaries import due_summaries

DUE_KEY = "rt_studio:batch_due"
#: The claimed batches' ids, scored by when they were claimed.
CLAIMED_KEY = "rt_studio:batch_claimed"
#: Batches delivered per transaction by `deliver_due`.
DUE_PER_COMMIT = 200
#: A batch still not delivered this long after its window ended is dropped from Redis:
#: only a site whose scheduler has been off for a week gets there.
STALE_SECONDS = 7 * 24 * 3600
#: A claim this old belongs to a run that ended without delivering: twice the 300 seconds RQ
#: lets a job of the default queue run (where Frappe's scheduler puts `deliver_due`) before
#: stopping it, so a run still alive is never taken over under Frappe's default timeouts.
CLAIM_SECONDS = 600
#: A batch due within this many seconds gets a timer job when it opens; later ones get theirs
#: from the per-minute run, which comes at least this often (Frappe's scheduler ticks each minute).
TIMER_HORIZON = 60
#: The timer's mark outlives its due time by this much: a timer lost with its worker stops
#: blocking new ones soon after (the per-minute run delivers its batches meanwhile).
TIMER_GRACE = 10
#: The longest one timer job waits before queueing itself again (at the back of short).
TIMER_SLICE = 5
#: How often a waiting timer looks whether a job waits in its worker's queues (one Redis round
#: trip): the longest a job queued meanwhile waits behind it.
TIMER_POLL = 0.1
TIMER_KEY = "rt_studio:batch_timer"
TIMER_METHOD = "rt_studio.delivery.summaries.deliver_when_due"
#: Timer job ids: TIMER_PREFIX + the due time in milliseconds, and `:N` for its Nth requeue
#: (job_runner.py runs ids naming the app).
TIMER_PREFIX = "rt-studio-summary-timer:"

COLLECT = """
local due_key, now, window, docname, max_docs, prefix, keep = KEYS[1], tonumber(ARGV[1]),
	tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local opened = 0
for i = 7, #ARGV do
	local member = ARGV[i]
	local key, docs = prefix .. member, prefix .. member .. ':docs'
	opened = opened + redis.call('ZADD', due_key, 'NX', now + window, member)
	redis.call('HINCRBY', key, 'count', 1)
	if docname ~= '' and not redis.call('ZSCORE', docs, docname) then
		local n = redis.call('ZCARD', docs)
		if n < max_docs then redis.call('ZADD', docs, n, docname) end
	end
	redis.call('EXPIRE', key, window + keep)
	redis.call('EXPIRE', docs, window + keep)
end
return opened
"""

#: Marks a timer armed for ARGV[1] (a due time) unless one is armed for that time or earlier;
#: 1 when this call armed it.
ARM = """
local armed = redis.call('GET', KEYS[1])
if armed and tonumber(armed) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""

#: Claims up to ARGV[2] batches: first those whose claim is older than ARGV[4] (a run that
#: failed took them; this run takes them over), then the due ones, each moved out of the due
#: index into `<prefix>claim:<id>` (+ `:docs`) with its member and due time, and its id scored
#: with the claim time in KEYS[2]. Returns {id, member, count, due, docnames} per batch.
TAKE_DUE = """
local due_key, claimed_key = KEYS[1], KEYS[2]
local now, limit, prefix, stale_before, token, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3],
	tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', claimed_key, '-inf', stale_before, 'LIMIT', 0, limit)) do
	local claim = prefix .. 'claim:' .. id
	local fields = redis.call('HMGET', claim, 'member', 'count', 'due')
	if fields[1] then
		redis.call('ZADD', claimed_key, now, id)
		table.insert(out, {id, fields[1], fields[2], fields[3], redis.call('ZRANGE', claim .. ':docs', 0, -1)})
	else
		redis.call('ZREM', claimed_key, id)
	end
end
if #out >= limit then return out end
for i, member in ipairs(redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'LIMIT', 0, limit - #out)) do
	local key, docs = prefix .. member, prefix .. member .. ':docs'
	local due = redis.call('ZSCORE', due_key, member)
	redis.call('ZREM', due_key, member)
	if tonumber(redis.call('HGET', key, 'count') or '0') > 0 then
		local id = token .. ':' .. i
		local claim = prefix .. 'claim:' .. id
		redis.call('RENAME', key, claim)
		redis.call('HSET', claim, 'member', member, 'due', due)
		redis.call('EXPIRE', claim, keep)
		local names = {}
		if redis.call('EXISTS', docs) == 1 then
			redis.call('RENAME', docs, claim .. ':docs')
			redis.call('EXPIRE', claim .. ':docs', keep)
			names = redis.call('ZRANGE', claim .. ':docs', 0, -1)
		end
		redis.call('ZADD', claimed_key, now, id)
		table.insert(out, {id, member, redis.call('HGET', claim, 'count'), due, names})
	else
		redis.call('DEL', key, docs)
	end
end
return out
"""


#: Moves job ARGV[1] (a timer due at ARGV[4] ms), just queued at the back of list KEYS[1], right
#: behind the first of the list's first ARGV[3] jobs that is not a timer (its id does not contain
#: ARGV[2], the timers' prefix) or is a timer due earlier; to the back when there is none.
STEP_ASIDE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
local due = tonumber(ARGV[4])
local waiting = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
for _, id in ipairs(waiting) do
	local _, stop = string.find(id, ARGV[2], 1, true)
	if not stop or (tonumber(string.match(id, '^%d+', stop + 1)) or due) < due then
		return redis.call('LINSERT', KEYS[1], 'AFTER', id, ARGV[1])
	end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 0
"""

#: How many jobs at the front of a queue a waiting timer looks at for one it should let go first.
TIMER_PEEK = 20


def goes_first(job_id: str | bytes, due: float) -> bool:
	"""Whether a waiting timer due at `due` lets the queued job `job_id` (any site's) go first:
	any job but a timer, and a timer due earlier (STEP_ASIDE's test, in Python). Timers due later
	or at the same time wait for a worker like it: letting them go first would only have them
	trade places, a job each time."""
	job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
	_, found, rest = job_id.partition(TIMER_PREFIX)
	if not found:
		return True
	digits = rest.partition(":")[0]
	return digits.isdigit() and int(digits) < _due_ms(due)


def _member(rule: str, user: str) -> str:
	return json.dumps([rule, user], separators=(",", ":"))


class RedisBatches:
	"""The engine's `Batches`, shared by every process of the site."""

	def __init__(self):
		self.due_key = frappe.cache.make_key(DUE_KEY)
		self.claimed_key = frappe.cache.make_key(CLAIMED_KEY)
		self.prefix = frappe.cache.make_key("rt_studio:batch:")
		#: Ids of the batches `take_due` claimed and `release_on_commit` has not yet been asked for.
		self.claims: list[str] = []

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
		opened = [args[0] + args[1] for args, count in zip(collects, pipe.execute(), strict=True) if count]
		if opened:
			arm_timer(min(opened))

	def next_due(self) -> float | None:
		"""When the earliest batch is due (None when none is collecting)."""
		[first] = frappe.cache.zrange(self.due_key, 0, 0, withscores=True) or [(None, None)]
		return first[1]

	def take_due(self, limit: int) -> list[Batch]:
		"""Claim up to `limit` batches, those a failed run left first, then the due ones (oldest
		due first). They stay in Redis until `release_on_commit`'s transaction commits."""
		args = (time.time(), limit, self.prefix, time.time() - CLAIM_SECONDS, uuid.uuid4().hex, STALE_SECONDS)
		taken = frappe.cache.eval(TAKE_DUE, 2, self.due_key, self.claimed_key, *args)
		batches = []
		for claim, member, count, due, docnames in taken:
			rule, user = json.loads(member)
			names = [name.decode() for name in docnames]
			batches.append(Batch(rule, user, int(count), names, float(due)))
			self.claims.append(claim.decode())
		return batches

	def release_on_commit(self) -> None:
		"""Delete the batches claimed so far once this transaction commits, after the messages
		`delivery.publish` queued before this call are published; a rollback leaves them claimed."""
		claims, self.claims = self.claims, []
		transaction.queued("rt_studio_batch_claims", self.release, transaction.ignore).extend(claims)

	def release(self, claims: list[str]) -> None:
		"""Delete claimed batches now, in one round trip."""
		if not claims:
			return
		keys = [f"{self.prefix.decode()}claim:{claim}" for claim in claims]
		pipe = frappe.cache.pipeline()
		pipe.delete(*keys, *(f"{key}:docs" for key in keys))
		pipe.zrem(self.claimed_key, *claims)
		pipe.execute()


def arm_timer(due: float | None = None) -> None:
	"""Enqueue the job that delivers the summaries due at `due` (by default the earliest batch's),
	when that is within TIMER_HORIZON and no timer is armed for then or earlier."""
	due = RedisBatches().next_due() if due is None else due
	if due is None or due > time.time() + TIMER_HORIZON:
		return
	expires = max(int(due - time.time()), 0) + TIMER_GRACE
	if not frappe.cache.eval(ARM, 1, frappe.cache.make_key(TIMER_KEY), due, expires):
		return
	enqueue_timer(due)


def enqueue_timer(due: float, hop: int = 0, queue: str = "short", step_aside: bool = False) -> None:
	"""Queue the timer job for `due` at the back of `queue`, or with `step_aside` right behind the
	first job waiting there that `goes_first` (any job but a timer, or a timer due earlier, of this
	or another site): the worker runs that job, then the timer. Timers due later never go first:
	with two workers, two timers would otherwise queue themselves behind one another in turn
	until their due times."""
	job_id = f"{TIMER_PREFIX}{_due_ms(due)}" + (f":{hop}" if hop else "")
	job = frappe.enqueue(TIMER_METHOD, queue=queue, job_id=job_id, due=due, hop=hop)
	if step_aside:
		job.connection.eval(
			STEP_ASIDE, 1, get_queue(queue).key, job.id, TIMER_PREFIX, TIMER_PEEK, _due_ms(due)
		)


def _due_ms(due: float) -> int:
	"""A timer's due time as its job id carries it."""
	return int(due * 1000)


def disarm_timer(due: float) -> None:
	"""Drop the timer's mark if it is still the one armed for `due` (its job is running)."""
	key = frappe.cache.make_key(TIMER_KEY)
	if (armed := frappe.cache.get(key)) is not None and float(armed) == float(due):
		frappe.cache.delete(key)
