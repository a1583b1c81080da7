"""Rate limits on a site: a sliding-window log per counter in a Redis sorted set.

Every recipient of one chunk is checked, and counted, by one Lua script call: atomic, so
concurrent workers cannot both take the last slot, and one round trip however many recipients.
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

#: Checks each key's window and, when `consume` is "1", records one hit in each key that has
#: room. Returns 1 (allowed) or 0 (over the limit) per key, in order.
SCRIPT = """
local now, window, limit, consume, member = tonumber(ARGV[1]), tonumber(ARGV[2]),
	tonumber(ARGV[3]), ARGV[4], ARGV[5]
local allowed = {}
for i, key in ipairs(KEYS) do
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
return allowed
"""


class RedisRateLimiter:
	"""The engine's RateLimiter on Redis, shared by every process of the site."""

	def hit(self, key: str, limit: int, window: int) -> bool:
		return self.hit_many([key], limit, window)[0]

	def peek(self, key: str, limit: int, window: int) -> bool:
		return self.peek_many([key], limit, window)[0]

	def hit_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return self._run(keys, limit, window, consume=True)

	def peek_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return self._run(keys, limit, window, consume=False)

	def _run(self, keys: Sequence[str], limit: int, window: int, consume: bool) -> list[bool]:
		if not keys:
			return []
		redis_keys = [frappe.cache.make_key(KEY_PREFIX + key) for key in keys]
		member = uuid.uuid4().hex
		args = (time.time(), window, limit, "1" if consume else "0", member)
		allowed = [bool(a) for a in frappe.cache.eval(SCRIPT, len(redis_keys), *redis_keys, *args)]
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
