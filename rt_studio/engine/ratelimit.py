"""Sliding-window rate limiting, in memory (the site uses Redis with the same semantics)."""

import time
from collections import deque
from collections.abc import Sequence


class InMemoryRateLimiter:
	"""At most `limit` hits per key within any `window` seconds.

	A sliding log rather than fixed buckets: fixed buckets let 2 x limit through around a
	bucket boundary, which is exactly the burst a rate limit exists to stop.
	"""

	def __init__(self, clock=time.monotonic):
		self._clock = clock
		self._hits: dict[str, deque] = {}

	def _live(self, key: str, window: int) -> deque:
		hits = self._hits.setdefault(key, deque())
		horizon = self._clock() - window
		while hits and hits[0] <= horizon:
			hits.popleft()
		return hits

	def hit(self, key: str, limit: int, window: int) -> bool:
		hits = self._live(key, window)
		if len(hits) >= limit:
			return False
		hits.append(self._clock())
		return True

	def peek(self, key: str, limit: int, window: int) -> bool:
		return len(self._live(key, window)) < limit

	def hit_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return [self.hit(key, limit, window) for key in keys]

	def peek_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return [self.peek(key, limit, window) for key in keys]


def rule_key(rule: str, recipient: str) -> str:
	return f"rule:{rule}:{recipient}"


def channel_key(channel: str, publisher: str) -> str:
	return f"channel:{channel}:{publisher}"
