"""The jobs that send the summaries of batched messages: the timer job at a batch's due time and
the scheduled job every minute (rt_studio/delivery/batches.py says when each runs). Both claim the
due batches, publish one summary each like any message, and release the claims once the summaries
are committed and published; a batch is claimed by one run only, so the two never both send it.
"""

import time

import frappe

from rt_studio import rule_cache as cache
from rt_studio.delivery import outbox, trace
from rt_studio.delivery.batches import DUE_PER_COMMIT, TIMER_SLICE, arm_timer, disarm_timer, enqueue_timer
from rt_studio.delivery.context import context_for
from rt_studio.engine.summaries import due_summaries


def deliver_due() -> None:
	"""Deliver the summary of every batch whose window has ended (scheduled every minute), and
	of every batch a failed run claimed more than batches.CLAIM_SECONDS ago; then arm the timer for
	the next batch due within batches.TIMER_HORIZON."""
	_deliver_due()
	arm_timer()


def deliver_when_due(due: float, hop: int = 0) -> None:
	"""The timer job: wait for `due` (a batch's window end, at most TIMER_HORIZON away), deliver
	what is due, and arm the timer for the next batch. It sleeps at most batches.TIMER_SLICE at a
	time and then queues itself again behind the jobs that came meanwhile, so a bench with one
	worker runs them with at most that delay."""
	wait = due - time.time()
	if wait > TIMER_SLICE:
		time.sleep(TIMER_SLICE)
		enqueue_timer(due, hop + 1)
		return
	time.sleep(max(wait, 0) + DUE_MARGIN)
	disarm_timer(due)
	deliver_due()


#: The timer wakes this long after the due time: the due index is scored with the clock of the
#: process that collected the batch, so a few milliseconds of drift between two hosts' clocks do
#: not make the run find it not yet due.
DUE_MARGIN = 0.05


def _deliver_due() -> None:
	rules = cache.get_index().rules
	while True:
		ctx = context_for(None)
		if not (outcomes := due_summaries(ctx, rules, DUE_PER_COMMIT)):
			return
		for outcome in outcomes:
			outbox.publish(outcome)
			doctype = rules[outcome.rule].document_type if outcome.rule in rules else ""
			trace.record(outcome, doctype, "")
		ctx.batches.release_on_commit()
		frappe.db.commit()
