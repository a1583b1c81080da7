"""Rate limits on a site: a sliding-window log per counter in a Redis sorted set.

Every recipient of one chunk is checked, and counted, by one Lua script call: atomic, so
concurrent workers cannot both take the last slot, and one round trip however many recipients
(the same call also skips the recipients whose batch is collecting, see `batches.py`).
A delivery is counted when it is decided, inside the user's transaction; if that transaction
rolls back, nothing was sent, and the counts it took are given back (removed from their logs)
after the rollback. So a save that fails never uses up a recipient's budget.
"""

import time
import uuid
from collections.abc import Sequence

import frappe

from rt_studio import transaction

#: Where the counters live, before Frappe's site prefix (kept by `bench clear-cache`, see hooks).
KEY_PREFIX = "rt_studio:rate:"

#: Checks each counter's window and, when `consume` is "1", records one hit in each counter that
#: has room. Returns 1 (allowed) or 0 (over the limit) per counter, in order. With `skipping`
#: "1", the last key is a sorted set and ARGV[7..] hold one member per counter: a counter whose
#: member is in that set is neither checked nor counted and answers -1 (see `RedisBatches.admit`).
SCRIPT = """
local now, window, limit, consume, member, skipping = tonumber(ARGV[1]), tonumber(ARGV[2]),
	tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6] == '1'
local counters = skipping and #KEYS - 1 or #KEYS
local allowed = {}
for i = 1, counters do
	local key = KEYS[i]
	if skipping and redis.call('ZSCORE', KEYS[#KEYS], ARGV[6 + i]) then
		allowed[i] = -1
	else
		redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
		if redis.call('ZCARD', key) >= limit then
			allowed[i] = 0
		else
			if consume == '1' then
				redis.call('ZADD', key, now, member .. ':' .. i)
				redis.call('EXPIRE', key, math.ceil(window) + 1)
			end
			allowed[i] = 1
		end
	end
end
return allowed
"""


class RedisRateLimiter:
	"""The engine's RateLimiter on Redis, shared by every process of the site."""

	def hit(self, key: str, limit: int, window: int) -> bool:
		return self.hit_many([key], limit, window)[0]

	def peek(self, key: str, limit: int, window: int) -> bool:
		return self.peek_many([key], limit, window)[0]

	def hit_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return self.check_many(keys, limit, window, consume=True)

	def peek_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return self.check_many(keys, limit, window, consume=False)

	def check_many(
		self,
		keys: Sequence[str],
		limit: int,
		window: int,
		consume: bool,
		unless_in: tuple[bytes, Sequence[str]] | None = None,
	) -> list[bool | None]:
		"""`hit_many` (`consume`) or `peek_many`, in one script call. With `unless_in` (a sorted
		set's Redis key, and one member per key), a key whose member is in that set is skipped
		in the same call: neither checked nor counted, answered None."""
		if not keys:
			return []
		redis_keys = [frappe.cache.make_key(KEY_PREFIX + key) for key in keys]
		member = uuid.uuid4().hex
		skip_set, members = unless_in or (None, ())
		flags = ("1" if consume else "0", member, "1" if skip_set else "0")
		script_keys = [*redis_keys, skip_set] if skip_set else redis_keys
		args = (time.time(), window, limit, *flags, *members)
		answers = frappe.cache.eval(SCRIPT, len(script_keys), *script_keys, *args)
		allowed = [None if a == -1 else bool(a) for a in answers]
		if consume:
			_held_until_commit().extend(
				(key, f"{member}:{i}")
				for i, (key, ok) in enumerate(zip(redis_keys, allowed, strict=True), 1)
				if ok
			)
		return allowed


def _held_until_commit() -> list[tuple[bytes, str]]:
	"""The hits this transaction recorded: kept at its commit, given back at its rollback."""
	return transaction.queued("rt_studio_rate_hits", transaction.ignore, _give_back)


def _give_back(held: list[tuple[bytes, str]]) -> None:
	if held:
		pipe = frappe.cache.pipeline()
		for key, member in held:
			pipe.zrem(key, member)
		pipe.execute()


class UnlimitedRateLimiter:
	"""For test-fire: an explicit test is never rate limited and uses up nothing."""

	def hit(self, key: str, limit: int, window: int) -> bool:
		return True

	peek = hit

	def hit_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return [True] * len(keys)

	peek_many = hit_many
