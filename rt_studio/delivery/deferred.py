"""Large audiences: delivered by a background job after the user's transaction commits.

The save only evaluates the rule's trigger and sees that the audience is large (asking for no
more than LARGE_AUDIENCE + 1 users), so it costs the same for a role of ten thousand users as
for one of ten. The job gets plain data (dicts, lists, strings, numbers, dates): the document
as it was at the event, the one before it, and, for a deleted document, the shares it had,
since its DocShare rows go with it. It then decides, chunk by chunk, who may read the document
and publishes each chunk after committing it, so memory holds one chunk's messages and the
rule's trace shows how far it got.

The job is durable (delivery_jobs.py): its row is inserted with the save, each chunk commits with
the recipients it decided, and a sweep queues it again when a worker died or the queue Redis lost
it; a resumed run leaves out the recipients already committed, so each gets the message once.

A job that cannot run is never silent: arguments that would not reach the worker are refused
before enqueueing, an error inside the job, and a job RQ could not start or had to stop (RQ's
failure callback), are each recorded on the rule (its trace and error, and the Error Log).
"""

import pickle
import traceback
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import frappe
from frappe.model.document import get_doc as load_document

from rt_studio import rule_cache as cache
from rt_studio.delivery import delivery_jobs, outbox, trace
from rt_studio.delivery.context import context_for
from rt_studio.engine.errors import Problem
from rt_studio.engine.evaluate import Event, Outcome, run_in_chunks
from rt_studio.engine.events import DELETE
from rt_studio.engine.verdicts import DELIVER, NO_SUCH_USER
from rt_studio.people.readers import Shares, shares_of
from rt_studio.people.site import known_time_zone, site_time_zone

#: Audiences larger than this are checked and delivered by a background job after the
#: commit, so a rule for a big role never slows the user's save.
LARGE_AUDIENCE = 100

#: Recipients a job decides, publishes and commits at a time: large enough that a chunk costs
#: a few queries and round trips (see rt_studio.people.users.CHUNK), small enough to bound memory.
JOB_CHUNK = 1000

METHOD = "rt_studio.delivery.deferred.deliver"
#: Job ids: JOB_PREFIX + a unique part + ":" + the rule's name (read back by `job_failed`).
JOB_PREFIX = delivery_jobs.JOB_PREFIX


def defer(rule, event: Event, outcome: Outcome) -> None:
	"""Hand a large audience to a worker, once the user's transaction has committed."""
	payload = job_arguments(rule.name, event)
	problem = unsendable(payload)
	if problem:
		failed(outcome, rule.name, f"the document cannot be handed to the delivery job: {problem}")
		outbox.record_error(outcome, rule.version)
		trace.record(outcome, event.doctype, event.docname)
		return
	# the job's row commits (or rolls back) with the save; the RQ job, queued after it, is the kick
	delivery_jobs.insert(payload, payload["job"])
	frappe.enqueue(
		METHOD,
		queue="short",
		enqueue_after_commit=True,
		job_id=payload["job"],
		on_failure=job_failed,
		**payload,
	)
	trace.record(outcome, event.doctype, event.docname, job=payload["job"])


def job_arguments(rule: str, event: Event) -> dict:
	"""What the job gets: plain data, and for a deleted document the shares it had."""
	return {
		"rule": rule,
		"doctype": event.doctype,
		"docname": event.docname,
		"rule_event": event.event,  # `event` is a parameter of frappe.enqueue itself
		"doc": plain(event.doc),
		"before": plain(event.before),
		"actor": event.actor,
		"shares": shares_of(event.doctype, event.docname).as_dict() if event.event == DELETE else None,
		"job": f"{JOB_PREFIX}{uuid.uuid4().hex}:{rule}",
		# for the times of its messages and trace, so the job need not read System Settings (an
		# aware time: `sent_at` names the same instant should the zone change meanwhile)
		"time_zone": site_time_zone(),
	}


def plain(value):
	"""A document snapshot as plain dicts and lists, the only containers a job argument has."""
	if isinstance(value, Mapping):
		return {k: plain(v) for k, v in value.items()}
	if isinstance(value, list | tuple):
		return [plain(v) for v in value]
	return value


def unsendable(payload: dict) -> str | None:
	"""Why the worker could not unpickle these job arguments (or the job's row not keep them), or
	None when it can."""
	try:
		pickle.loads(pickle.dumps(payload))
		delivery_jobs.encode(payload)
	except Exception as e:
		return f"{type(e).__name__}: {e}"
	return None


def failed(outcome: Outcome, rule: str, problem: str) -> Outcome:
	outcome.error = Problem(rule, "delivery job", problem)
	outcome.reason = f"error: {outcome.error}"
	outcome.fired = False
	return outcome


def deliver(
	rule: str,
	doctype: str,
	docname: str,
	rule_event: str,
	doc: dict,
	before: dict | None,
	actor: str,
	shares: dict | None = None,
	job: str | None = None,
	time_zone: str | None = None,
) -> None:
	"""The job: verdicts for the whole audience, chunk by chunk, each published after its commit
	(the last one after the commit Frappe's `execute_job` makes when the method returns).

	Evaluates the document as it was at the event (the snapshot), with the rule as it is now;
	a rule deleted or disabled meanwhile sends nothing. Read access is decided on the document
	as it is now, or on the snapshot (with the shares it had) when it was deleted. Times are in
	the site's time zone at the event (`time_zone`; read from System Settings when not given).

	The job's row (delivery_jobs) is claimed first: a job that is finished, or that another run
	is alive on, ends here; a resumed run leaves out the recipients earlier runs committed.

	These keyword arguments are a contract between versions: a job queued by an older version
	runs here unchanged (with no row yet: it gets one when it starts), and one queued by this
	version carries the same arguments, so an older worker still runs it.
	"""
	with known_time_zone(time_zone):
		run = None
		if job:
			arguments = {"rule": rule, "doctype": doctype, "docname": docname, "rule_event": rule_event}
			arguments.update(doc=doc, before=before, actor=actor, shares=shares, time_zone=time_zone)
			run = delivery_jobs.claim(job, arguments)
			if run is None:
				return
		compiled = cache.committed_rule(rule)
		if compiled is None or not compiled.enabled:
			if run:
				delivery_jobs.finish(
					run, delivery_jobs.DONE, "the rule was deleted or disabled before the job ran"
				)
			return
		try:
			_deliver(compiled, Event(doctype, docname, rule_event, doc, before, actor), shares, job, run)
		except delivery_jobs.Superseded:
			frappe.db.rollback()  # another run claimed the job: it sends this chunk
		except Exception as e:
			frappe.db.rollback()
			problem = f"failed: {traceback.format_exc(limit=3)}"
			outcome = failed(Outcome(rule, rule_event), rule, problem)
			record_failure(outcome, compiled.version, doctype, docname, job)
			if run:
				# a deadlock or a lost connection passes: the sweep runs the job on from there
				again = delivery_jobs.passing(e)
				delivery_jobs.finish(run, delivery_jobs.QUEUED if again else delivery_jobs.FAILED, problem)


def _deliver(rule, event: Event, shares: dict | None, job: str | None, run=None) -> None:
	source, deleted = _document(event)
	ctx = context_for(source, Shares.from_dict(shares) if deleted and shares else None, rule)
	tally = Tally.resumed(run.tally if run else None)
	parts = run_in_chunks(rule, event, ctx, JOB_CHUNK, done=run.done if run else ())
	part = next(parts)
	for following in parts:
		# a chunk before the last: sent and committed now (with the job's progress), so the trace
		# shows how far it got and a run after a dead worker leaves these recipients out
		_send(part, tally, ctx, run)
		_committing(run, part, tally, last=False)
		frappe.db.commit()
		if job:
			trace.progress(job, **tally.progress(done=False))
		part = following
	if part.error:
		frappe.db.rollback()
		record_failure(part, rule.version, event.doctype, event.docname, job, tally)
		if run:
			delivery_jobs.finish(run, delivery_jobs.FAILED, str(part.error))
		return
	_send(part, tally, ctx, run)
	delivered, decided = tally.verdicts[DELIVER], sum(tally.verdicts.values())
	part.fired = delivered > 0
	part.reason = f"{delivered} of {decided} recipients" if decided else part.reason
	tally.final = tally.progress(done=True)
	trace.record(part, event.doctype, event.docname, job=job, tally=tally)
	_committing(run, part, tally, last=True)
	frappe.db.commit()


def _committing(run, part: Outcome, tally: "Tally", last: bool) -> None:
	"""The chunk's recipients and the job's progress, in the chunk's transaction (none without a row)."""
	if run is not None:
		decided, delivered = sum(tally.verdicts.values()), tally.verdicts[DELIVER]
		delivery_jobs.chunk_committing(
			run, part.recipients, tally.saved(), decided, delivered, last, outbox.pending
		)


@dataclass
class Tally:
	"""What a job decided so far, over all its chunks."""

	verdicts: Counter = field(default_factory=Counter)
	#: Values that named no user (as many as a trace entry shows).
	unknown: list[str] = field(default_factory=list)
	#: The job's progress when it ended (done, or stopped by an error), for the trace.
	final: dict | None = None

	@classmethod
	def resumed(cls, saved: dict | None) -> "Tally":
		"""The tally earlier runs of the job committed (`saved`), or a new one."""
		saved = saved or {}
		return cls(Counter(saved.get("verdicts") or {}), list(saved.get("unknown") or []))

	def saved(self) -> dict:
		return {"verdicts": dict(self.verdicts), "unknown": self.unknown}

	def add(self, part: Outcome) -> None:
		self.verdicts.update(r.verdict for r in part.recipients)
		room = trace.UNKNOWN_USERS_SHOWN - len(self.unknown)
		if room > 0:
			self.unknown += [r.user for r in part.recipients if r.verdict == NO_SUCH_USER][:room]

	def progress(self, done: bool, **more) -> dict:
		decided = sum(self.verdicts.values())
		return {"decided": decided, "delivered": self.verdicts[DELIVER], "done": done, **more}


def _document(event: Event):
	"""The document to decide read access on, and whether it was deleted (then its snapshot).

	Loaded as `frappe.get_doc` loads it, without its extra Redis round trip to refresh a stale
	copy in Frappe's document cache: the job only reads the document.
	"""
	if event.event != DELETE:
		try:
			return load_document(event.doctype, event.docname), False
		except frappe.DoesNotExistError:
			frappe.clear_last_message()
	return frappe.get_doc(plain(event.doc)), True


def _send(part: Outcome, tally: Tally, ctx, run=None) -> None:
	if run is not None:
		delivery_jobs.note_numbers(run)  # before the inbox's write is armed: it then runs after it
	outbox.publish(part)
	tally.add(part)
	ctx.directory.forget([r.user for r in part.recipients if r.user])


def record_failure(outcome: Outcome, version: str, doctype: str, docname: str, job, tally=None) -> None:
	"""A job that stopped: the error on the rule and in the trace, committed at once."""
	tally = tally or Tally()
	outbox.record_error(outcome, version)
	tally.final = tally.progress(done=True, error=True)
	trace.record(outcome, doctype, docname, job=job, tally=tally)
	frappe.db.commit()


def job_failed(job, connection, exc_type, exc_value, tb) -> None:
	"""RQ's failure callback: a delivery job that could not start (its arguments did not
	unpickle) or that RQ stopped (a timeout, a killed worker) is recorded on its rule."""
	from frappe.utils.background_jobs import truncate_failed_registry

	site, _, job_key = job.id.partition("::")
	rule = job_key[len(JOB_PREFIX) :].partition(":")[2] if job_key.startswith(JOB_PREFIX) else ""
	# Frappe's work horse has no site here (its execute_job never ran, or destroyed it); a
	# process that set the site up without a connection (a custom runner) gets one too
	started_here = not getattr(frappe.local, "site", None)
	if started_here:
		frappe.init(site=site)
	connected_here = getattr(frappe.local, "db", None) is None
	if connected_here:
		frappe.connect()
	try:
		record_gave_up(rule, job_key, f"the delivery job could not run: {exc_type.__name__}: {exc_value}")
		truncate_failed_registry(job, connection, exc_type, exc_value, tb)
	finally:
		if started_here:
			frappe.destroy()
		elif connected_here:
			frappe.db.close()
			frappe.local.db = None


def record_gave_up(rule: str, job: str, problem: str) -> None:
	"""A job that could not run (or was given up after its attempts), recorded on its rule; committed."""
	compiled = cache.committed_rule(rule)
	if compiled is None:
		frappe.db.commit()
		return
	record_failure(failed(Outcome(rule, compiled.event), rule, problem), compiled.version, "", "", job)


def recover(older_than: float = delivery_jobs.GRACE_SECONDS) -> dict:
	"""The sweep (scheduled every minute): queue again each delivery job whose RQ job is gone (failed
	with a killed work horse, lost with the queue Redis, or started by a worker that stopped
	committing chunks), or give it up after MAX_ATTEMPTS runs; remove finished jobs a week old.
	Returns the names {"requeued": [...], "failed": [...]}."""
	done = {"requeued": [], "failed": []}
	for row in delivery_jobs.stranded(older_than):
		if row.attempts >= delivery_jobs.MAX_ATTEMPTS:
			problem = f"the delivery job stopped after {row.attempts} runs (each time its worker died or was stopped)"
			delivery_jobs.given_up(row, problem)
			record_gave_up(row.rule, row.rq_job, problem)  # commits
			done["failed"].append(row.name)
			continue
		rq_job = f"{JOB_PREFIX}{row.name}.{frappe.generate_hash(length=6)}:{row.rule}"
		delivery_jobs.requeued(row, rq_job)
		arguments = delivery_jobs.decode(row.arguments)
		frappe.enqueue(METHOD, queue="short", job_id=rq_job, on_failure=job_failed, **arguments)
		done["requeued"].append(row.name)
	delivery_jobs.remove_finished()
	frappe.db.commit()
	return done
