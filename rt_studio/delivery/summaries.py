"""The jobs that send the summaries of batched messages: the timer job at a batch's due time and
the scheduled job every minute (rt_studio/delivery/batches.py says when each runs). Both claim the
due batches, publish one summary each like any message, and release the claims once the summaries
are committed and published; a batch is claimed by one run only, so the two never both send it.
"""

import time

import frappe
from frappe.utils.background_jobs import generate_qname, get_queue_list, get_redis_conn
from rq import get_current_job

from rt_studio import rule_cache as cache
from rt_studio.delivery import outbox, trace
from rt_studio.delivery.batches import (
	DUE_PER_COMMIT,
	TIMER_PEEK,
	TIMER_POLL,
	TIMER_SLICE,
	arm_timer,
	disarm_timer,
	enqueue_timer,
	goes_first,
)
from rt_studio.delivery.context import context_for
from rt_studio.engine.summaries import due_summaries


def deliver_due() -> None:
	"""Deliver the summary of every batch whose window has ended (scheduled every minute), and
	of every batch a failed run claimed more than batches.CLAIM_SECONDS ago; then arm the timer for
	the next batch due within batches.TIMER_HORIZON."""
	_deliver_due()
	arm_timer()


def deliver_when_due(due: float, hop: int = 0) -> None:
	"""The timer job: at `due` (a batch's window end, at most TIMER_HORIZON away) deliver what is
	due and arm the timer for the next batch. It waits only while no other job waits in its
	worker's queues (looking every batches.TIMER_POLL seconds) and at most batches.TIMER_SLICE;
	then it queues itself again: right behind the first job waiting, or at the back of short."""
	waiting = _wait_while_idle(due)
	if waiting is None:
		disarm_timer(due)
		deliver_due()
	else:
		enqueue_timer(due, hop + 1, queue=waiting or "short", step_aside=bool(waiting))


#: The timer wakes this long after the due time: the due index is scored with the clock of the
#: process that collected the batch, so a few milliseconds of drift between two hosts' clocks do
#: not make the run find it not yet due.
DUE_MARGIN = 0.05


def _wait_while_idle(due: float) -> str | None:
	"""Wait until `due` (and DUE_MARGIN) unless a job waits first that `batches.goes_first` (any
	job but a timer, or a timer due earlier): then the type of the first of the worker's queues it
	waits in; "" when TIMER_SLICE passed first; None once the due time has come."""
	until = due + DUE_MARGIN
	queues = _worker_queues()
	conn = get_redis_conn()
	stop = time.time() + TIMER_SLICE
	while (now := time.time()) < until:
		pipe = conn.pipeline()
		for _type, key in queues:
			pipe.lrange(key, 0, TIMER_PEEK - 1)
		for (queue_type, _key), waiting in zip(queues, pipe.execute(), strict=True):
			if any(goes_first(job_id, due) for job_id in waiting):
				return queue_type
		if now >= stop:
			return ""
		time.sleep(min(TIMER_POLL, until - now))
	return None


def _worker_queues() -> list[tuple[str, str]]:
	"""(type, Redis key) of the bench's queues the worker running this job listens to, in the order
	it takes jobs from them (all of Frappe's when not run by a worker)."""
	job = get_current_job()
	names = job and job.worker_name and get_redis_conn().hget(f"rq:worker:{job.worker_name}", "queues")
	names = names.decode().split(",") if names else get_queue_list(build_queue_name=True)
	prefix = generate_qname("")
	return [(name[len(prefix) :], f"rq:queue:{name}") for name in names if name.startswith(prefix)]


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
