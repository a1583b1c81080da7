"""The scheduled job that sends the summaries of batched messages (every minute): it claims
the due batches (rt_studio/delivery/batches.py), publishes one summary each like any message,
and releases the claims once the summaries are committed and published.
"""

import frappe

from rt_studio.delivery import outbox, trace
from rt_studio.delivery.batches import DUE_PER_COMMIT
from rt_studio.delivery.context import context_for
from rt_studio.engine.summaries import due_summaries
from rt_studio.save import cache


def deliver_due() -> None:
	"""Deliver the summary of every batch whose window has ended (scheduled every minute), and
	of every batch a failed run claimed more than batches.CLAIM_SECONDS ago."""
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
