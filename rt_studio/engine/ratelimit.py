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


def key_part(name: str) -> str:
	"""A rule, channel or user name as one part of a counter's key.

	":" separates the parts, so it is escaped inside them (and "%", the escape itself):
	rule `a:b` to user `c` and rule `a` to user `b:c` never share a counter.
	"""
	return name.replace("%", "%25").replace(":", "%3A")


def rule_key(rule: str, recipient: str) -> str:
	return f"rule:{key_part(rule)}:{key_part(recipient)}"


def channel_key(channel: str, publisher: str) -> str:
	return f"channel:{key_part(channel)}:{key_part(publisher)}"
