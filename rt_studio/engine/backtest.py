"""Backtest: what a rule would have sent over past events, without sending anything.

The site reconstructs the events of the last days from the document history (creations,
Version records, deleted documents, the dates time rules count from) and hands them here in
time order, each with the context for its document. Each is evaluated exactly as live firing
evaluates it (`evaluate.run`: trigger, audience, read permission, mutes, texts, budget), with
the rate limit replayed on a clock that follows the events, in memory only: what exceeds it is
batched, and each batch counts as one summary delivered when its window ends (as the site's
scheduled job would deliver it). Nothing is published, traced, counted on the site or written. The report counts what would
have been delivered per day and per recipient and keeps a few rendered samples.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from rt_studio.engine.batching import InMemoryBatches
from rt_studio.engine.evaluate import Context, Event, Mode, run
from rt_studio.engine.ratelimit import InMemoryRateLimiter
from rt_studio.engine.verdicts import DELIVER

#: Rendered messages a report shows: enough to read the texts, few enough to read them all.
SAMPLES = 5
#: Recipients a report lists by name (the count of all of them is given too).
TOP_RECIPIENTS = 20
#: Distinct reasons for not firing a report lists, most frequent first.
TOP_REASONS = 10
#: Batches taken at a time (there is one per rule and recipient at most).
MAX_SUMMARIES = 100_000


class _EventClock:
	"""The time of the event being replayed, as the rate limiter's clock (seconds)."""

	def __init__(self):
		self.seconds = 0.0

	def __call__(self) -> float:
		return self.seconds


def replay(rule, history: Iterable[tuple[datetime, Event, Context]]) -> dict:
	"""Evaluate `rule` for each (time, event, context) of `history`, oldest first; the report."""
	clock = _EventClock()
	limiter, batches = InMemoryRateLimiter(clock), InMemoryBatches(clock)
	report = _Report()
	for at, event, ctx in history:
		clock.seconds = at.timestamp()
		report.add_summaries(batches.take_due(MAX_SUMMARIES))
		ctx.limiter, ctx.batches, ctx.now = limiter, batches, (lambda at=at: at)
		report.add(at, event, run(rule, event, ctx, Mode()))
	clock.seconds = float("inf")  # the windows still open end too: their summaries would follow
	report.add_summaries(batches.take_due(MAX_SUMMARIES))
	return report.as_dict()


class _Report:
	def __init__(self):
		self.events = 0
		self.fired = 0
		self.summaries = 0
		self.per_day: dict[str, Counter] = {}
		self.per_recipient = Counter()
		self.verdicts = Counter()
		self.not_fired = Counter()
		self.errors: list[str] = []
		self.samples: list[dict] = []

	def add(self, at: datetime, event: Event, outcome) -> None:
		self.events += 1
		day = self.per_day.setdefault(at.date().isoformat(), Counter())
		day["events"] += 1
		self.verdicts.update(rec.verdict for rec in outcome.recipients)
		if outcome.error is not None:
			if str(outcome.error) not in self.errors:
				self.errors.append(str(outcome.error))
			return
		if not outcome.fired:
			self.not_fired[outcome.reason] += 1
			return
		self.fired += 1
		day["fired"] += 1
		day["deliveries"] += len(outcome.deliveries)
		self.per_recipient.update(d.user or d.room for d in outcome.deliveries)
		if len(self.samples) < SAMPLES and outcome.deliveries:
			self.samples.append(_sample(at, event, outcome))

	def add_summaries(self, batches) -> None:
		"""Each batch is one summary message to its recipient, when its window ends."""
		for batch in batches:
			self.summaries += 1
			self.per_recipient[batch.user] += 1
			if batch.due != float("inf"):
				day = datetime.fromtimestamp(batch.due).date().isoformat()
				self.per_day.setdefault(day, Counter())["deliveries"] += 1

	def as_dict(self) -> dict:
		return {
			"events": self.events,
			"fired": self.fired,
			"deliveries": sum(self.per_recipient.values()),
			"summaries": self.summaries,
			"per_day": [
				{"date": day, "events": c["events"], "fired": c["fired"], "deliveries": c["deliveries"]}
				for day, c in sorted(self.per_day.items())
			],
			"recipients": len(self.per_recipient),
			"per_recipient": [
				{"recipient": name, "deliveries": count}
				for name, count in self.per_recipient.most_common(TOP_RECIPIENTS)
			],
			"verdicts": dict(self.verdicts),
			"not_fired": [{"reason": r, "count": n} for r, n in self.not_fired.most_common(TOP_REASONS)],
			"errors": self.errors[:TOP_REASONS],
			"samples": self.samples,
		}


def _sample(at: datetime, event: Event, outcome) -> dict:
	first = outcome.deliveries[0].message
	return {
		"time": at.isoformat(sep=" ", timespec="seconds"),
		"docname": event.docname,
		"event": event.event,
		"actor": event.actor,
		"recipients": sum(1 for rec in outcome.recipients if rec.verdict == DELIVER),
		"recipient": outcome.deliveries[0].user or outcome.deliveries[0].room,
		"subject": first.get("subject"),
		"message": first.get("message"),
	}
