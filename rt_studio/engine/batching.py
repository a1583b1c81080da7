"""Batching instead of dropping: what exceeds a rule's rate limit becomes one summary.

When a recipient has had a rule's `rate_limit_count` messages within its window, the
messages that follow are collected (how many, and which documents they were about) and
delivered as one summary when the window ends: "27 more ToDo changes". While a batch is
collecting, every new message of that rule for that recipient joins it, so nothing newer
overtakes the summary and the limit still holds: every delivery counted before the batch
opened has left the window by the time it is due, and the summary takes one slot of the next
window. Nothing is dropped.

This module decides; `interfaces.Batches` keeps the batches (in memory here, in Redis on a
site) and `summaries.py` turns due batches into deliveries.
"""

import time
from collections.abc import Sequence

from markupsafe import escape

from rt_studio.engine.interfaces import MAX_DOCNAMES, Batch, Batches, RateLimiter
from rt_studio.engine.ratelimit import rule_key
from rt_studio.engine.verdicts import BATCHED, DELIVER, Recipient, chunks

#: Documents the summary's text lists before "…" (all of `docnames` stay in the message).
LISTED_IN_TEXT = 10


def apply_rate_limit(
	recipients: list[Recipient],
	rule,
	docname: str,
	limiter: RateLimiter,
	batches: Batches,
	consume: bool,
) -> None:
	"""Batch deliverable users over the rule's limit or with a batch still collecting.

	With `consume` (live firing) the others use up their slots and the batched ones join
	their batches; without it (preview) the same verdicts are given and nothing is recorded.
	"""
	limit, window = rule.rate_limit_count, rule.rate_limit_seconds
	if not limit:
		return
	users = [rec for rec in recipients if rec.user and rec.verdict == DELIVER]
	for chunk in chunks(users):
		held = batches.admit(rule.name, [rec.user for rec in chunk], limiter, limit, window, consume)
		batched = [rec for rec in chunk if rec.user in held]
		for rec in batched:
			rec.verdict = BATCHED
		if consume and batched:
			batches.collect(rule.name, [rec.user for rec in batched], docname, window)


def admit_in_turn(
	batches: Batches,
	rule: str,
	users: Sequence[str],
	limiter: RateLimiter,
	limit: int,
	window: int,
	consume: bool,
) -> set[str]:
	"""`Batches.admit` asked as two questions: whose batch is collecting, then the limiter for
	the others (a collecting batch takes every new message, so those use up no slot)."""
	collecting = batches.collecting(rule, users)
	free = [user for user in users if user not in collecting]
	keys = [rule_key(rule, user) for user in free]
	allowed = (limiter.hit_many if consume else limiter.peek_many)(keys, limit, window) if keys else []
	return collecting | {user for user, ok in zip(free, allowed, strict=True) if not ok}


def summary_subject(doctype: str, count: int) -> str:
	"""'27 more ToDo changes' (escaped: a DocType name is shown as HTML)."""
	return f"{count} more {escape(doctype)} change{'' if count == 1 else 's'}"


def summary_text(docnames: Sequence[str]) -> str:
	"""The documents of a summary as escaped text: the first few, then an ellipsis."""
	listed = ", ".join(str(escape(name)) for name in docnames[:LISTED_IN_TEXT])
	return listed + (", …" if len(docnames) > LISTED_IN_TEXT else "")


class InMemoryBatches:
	"""Batches held in a dict, for the CLI and the tests (the site keeps them in Redis)."""

	def __init__(self, clock=time.time):
		self._clock = clock
		self._open: dict[tuple[str, str], Batch] = {}

	def collecting(self, rule: str, users: Sequence[str]) -> set[str]:
		return {user for user in users if (rule, user) in self._open}

	def admit(
		self, rule: str, users: Sequence[str], limiter: RateLimiter, limit: int, window: int, consume: bool
	) -> set[str]:
		return admit_in_turn(self, rule, users, limiter, limit, window, consume)

	def collect(self, rule: str, users: Sequence[str], docname: str, window: int) -> None:
		for user in users:
			batch = self._open.get((rule, user))
			if batch is None:
				batch = self._open[(rule, user)] = Batch(rule, user, due=self._clock() + window)
			batch.add(docname)

	def take_due(self, limit: int) -> list[Batch]:
		now = self._clock()
		due = sorted((b for b in self._open.values() if b.due <= now), key=lambda b: b.due)[:limit]
		for batch in due:
			del self._open[(batch.rule, batch.user)]
		return due
