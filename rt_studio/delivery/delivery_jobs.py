"""A large audience's delivery job, durable: each recipient gets the message once, whatever happens
to the worker or to the queue Redis.

The save that defers an audience inserts a Realtime Delivery Job row with the job's arguments in
its own transaction, so the row exists exactly when the save committed; the RQ job queued after the
commit is only the kick. A run claims the row (`claim`: SELECT ... FOR UPDATE, then a token of its
own that every chunk checks), and each chunk's inbox rows, the recipients it decided and the job's
progress commit together (`chunk_committing`): a run that dies loses at most the chunk it was
deciding, and the next run leaves out every recipient already committed. The sweep
(`deferred.recover`, every minute) queues the job again when its RQ job is gone: failed (a killed
work horse), lost with the queue Redis, or started with no chunk committed for STALE_SECONDS (the
whole worker died). It takes each row with FOR UPDATE SKIP LOCKED, so two sweeps never queue one
job twice, and a run that finds another run alive on the row, or the row locked, leaves it (the
sweep queues it again if it stays unfinished); a run that lost its claim meanwhile rolls its chunk
back instead of committing it.

The replay log (delivery_log, Redis) numbers a chunk's messages just before its commit and the
publish comes after it; on the dev bench a 5,000-recipient job spends 36% and 7% of its time in
these two windows. A run killed after the numbering and before the COMMIT would leave numbered
messages that were never sent: just before the COMMIT the run notes their (user, seq) in the cache
Redis, and the next run takes them out of the replay log (`_unlog_uncommitted`) before it numbers
and sends them anew. A run killed after the COMMIT and before the publish leaves the chunk's
messages numbered and kept but not sent live, and the next run does not send them again: a
connected desk shows no alert; its next socket reconnect asks `missed` from below the gap and shows
them then, and the inbox drop-down lists them when it next loads (a page reload).

Cost on the save: one INSERT of the row (the arguments as JSON). Per chunk: one UPDATE, one INSERT
(the chunk's recipients as one JSON value) and one Redis SET (its numbers).
"""

import base64
import json
import pickle
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import frappe
from frappe.utils import add_to_date

from rt_studio import transaction
from rt_studio.delivery import delivery_log
from rt_studio.engine.verdicts import DELIVER
from rt_studio.people.site import site_now

DOCTYPE = "Realtime Delivery Job"
CHUNK_DOCTYPE = "Realtime Delivery Job Chunk"
QUEUED, RUNNING, DONE, FAILED = "Queued", "Running", "Done", "Failed"
#: RQ's states of a job a worker will still take or is running.
WAITING = ("queued", "deferred", "scheduled")

#: A run that committed no chunk for this long is taken as dead (a chunk of JOB_CHUNK recipients
#: takes a second or two; a rule's evaluation budget bounds it).
STALE_SECONDS = 60
#: The sweep leaves alone jobs changed more recently than this: a job just saved is being queued.
GRACE_SECONDS = 20
#: How long the numbers of a chunk being committed are kept, for the run after a dead one.
NUMBERED_SECONDS = 24 * 3600
_NUMBERED = "rt_studio_job_numbered"
#: Runs a job may claim; then it is marked Failed and the error recorded on the rule.
MAX_ATTEMPTS = 5
#: Unfinished jobs one sweep looks at, oldest first; finished ones it removes once this old.
SWEEP_LIMIT = 100
KEEP_FINISHED_DAYS = 7

#: RQ job keys of delivery jobs: JOB_PREFIX + a unique part (the row's name, and after a sweep
#: "." and a random part) + ":" + the rule's name (read back by `deferred.job_failed`).
JOB_PREFIX = "rt-studio-delivery:"

_TAG = "__rt_type__"


class Superseded(Exception):
	"""Another run claimed the job while this one was deciding a chunk: this chunk is not committed."""


@dataclass
class Run:
	"""This run's claim on a job: its token, and what earlier runs committed."""

	name: str
	runner: str
	#: Users (and document rooms) whose verdict an earlier run committed.
	done: set[str]
	chunks_done: int
	#: {"verdicts": {verdict: n}, "unknown": [...]} as the last committed chunk left it.
	tally: dict


def record_name(job: str) -> str:
	"""The row of an RQ job key `<JOB_PREFIX><unique>[.<retry>]:<rule>`: its unique part."""
	unique = job[len(JOB_PREFIX) :].partition(":")[0] if job.startswith(JOB_PREFIX) else job
	return unique.partition(".")[0][:140]


def insert(arguments: dict, rq_job: str, status: str = QUEUED, runner: str | None = None) -> str:
	"""Record the job in the current transaction (the save's): it commits or rolls back with it."""
	now = _now()
	name = record_name(arguments["job"])
	values = {
		"name": name,
		"creation": now,
		"modified": now,
		"owner": frappe.session.user or "Administrator",
		"modified_by": frappe.session.user or "Administrator",
		"docstatus": 0,
		"idx": 0,
		"rule": arguments["rule"],
		"rule_event": arguments.get("rule_event"),
		"reference_doctype": arguments.get("doctype"),
		"reference_name": arguments.get("docname"),
		"status": status,
		"attempts": 1 if runner else 0,
		"heartbeat": now if runner else None,
		"rq_job": rq_job,
		"runner": runner,
		"runner_job": rq_job if runner else None,
		"chunks_done": 0,
		"decided": 0,
		"delivered": 0,
		"arguments": encode(arguments),
	}
	columns = ", ".join(f"`{column}`" for column in values)
	frappe.db.sql(
		f"insert into `tab{DOCTYPE}` ({columns}) values ({', '.join(['%s'] * len(values))})",
		list(values.values()),
	)
	return name


def claim(job: str, arguments: dict) -> Run | None:
	"""Claim the job for this run, committed in a transaction of its own; None when it is finished,
	another run is alive on it, or its row is locked (another run claiming it or committing a chunk,
	or a sweep queuing it again: the sweep queues it again if it is left unfinished). A job queued
	by an older version (no row) gets its row now."""
	name = record_name(job)
	mine = current_rq_job()
	runner = uuid.uuid4().hex
	row = _locked(name)
	if row is None:
		if frappe.db.exists(DOCTYPE, name, cache=False):
			frappe.db.rollback()
			return None
		try:
			insert({**arguments, "job": job}, mine or job, status=RUNNING, runner=runner)
		except Exception as e:
			frappe.db.rollback()
			if frappe.db.is_duplicate_entry(e):  # another run of it inserted the row first
				return None
			raise
		frappe.db.commit()
		return Run(name, runner, set(), 0, {})
	if row.status in (DONE, FAILED) or (row.runner_job != mine and _running_elsewhere(row)):
		frappe.db.rollback()
		return None
	now = _now()
	frappe.db.sql(
		f"""update `tab{DOCTYPE}` set status=%s, runner=%s, runner_job=%s, heartbeat=%s, modified=%s,
		attempts=attempts + 1 where name=%s""",
		(RUNNING, runner, mine, now, now, name),
	)
	frappe.db.commit()
	if row.attempts:  # an earlier run may have died with numbers of a chunk it never committed
		_unlog_uncommitted(name, row.chunks_done or 0)
	done = set()
	for (recipients,) in frappe.db.sql(
		f"select recipients from `tab{CHUNK_DOCTYPE}` where parent=%s and parenttype=%s", (name, DOCTYPE)
	):
		done.update(json.loads(recipients or "[]"))
	return Run(name, runner, done, row.chunks_done or 0, json.loads(row.tally or "{}"))


def _now():
	"""Now as Frappe stores datetimes (the site's zone, naive), without a Redis read in a job that
	knows its zone (`known_time_zone`)."""
	return site_now().replace(tzinfo=None)


def _locked(name: str):
	"""The job's row, locked for this transaction (a locking read: the latest committed state); None
	when there is none or another transaction holds it."""
	rows = frappe.db.sql(
		f"""select name, status, runner, runner_job, rq_job, heartbeat, modified, attempts, chunks_done,
		tally from `tab{DOCTYPE}` where name=%s for update skip locked""",
		name,
		as_dict=True,
	)
	return rows[0] if rows else None


def _running_elsewhere(row) -> bool:
	"""Whether the run that claimed the job is alive: its RQ job runs and it committed recently."""
	fresh = row.heartbeat and row.heartbeat > add_to_date(_now(), seconds=-STALE_SECONDS)
	return bool(row.status == RUNNING and fresh and rq_status(row.runner_job) == "started")


def chunk_committing(
	run: Run, recipients: list, tally: dict, decided: int, delivered: int, last: bool, outbox: Callable
) -> None:
	"""Record a chunk in its own transaction, just before its commit: the recipients it decided
	(or, for the last one, that the job is done) and the progress. Raises Superseded, to roll
	the chunk back, when another run claimed the job meanwhile. `outbox()`: this transaction's
	(socket event, message, room) to publish after the commit (`outbox.pending`)."""
	now = _now()
	frappe.db.sql(
		f"""update `tab{DOCTYPE}` set status=%s, heartbeat=%s, modified=%s, chunks_done=chunks_done + 1,
		decided=%s, delivered=%s, tally=%s where name=%s and runner=%s""",
		(DONE if last else RUNNING, now, now, decided, delivered, json.dumps(tally), run.name, run.runner),
	)
	if frappe.db._cursor.rowcount != 1:
		raise Superseded(run.name)
	run.chunks_done += 1
	transaction.state(_NUMBERED, dict, before_commit=_remember_numbered).update(
		job=run.name, chunk=run.chunks_done, outbox=outbox
	)
	if last:
		frappe.db.sql(
			f"delete from `tab{CHUNK_DOCTYPE}` where parent=%s and parenttype=%s", (run.name, DOCTYPE)
		)
		transaction.after_commit(lambda: frappe.cache.delete(_numbered_key(run.name)))
		return
	keys = [r.user or r.room for r in recipients]
	frappe.db.sql(
		f"""insert into `tab{CHUNK_DOCTYPE}` (name, parent, parenttype, parentfield, idx, chunk,
		delivered, recipients, creation, modified, owner, modified_by, docstatus)
		values (%s, %s, %s, 'chunks', %s, %s, %s, %s, %s, %s, 'Administrator', 'Administrator', 0)""",
		(
			uuid.uuid4().hex[:20],
			run.name,
			DOCTYPE,
			run.chunks_done,
			run.chunks_done,
			sum(1 for r in recipients if r.verdict == DELIVER),
			json.dumps(keys, ensure_ascii=False),
			now,
			now,
		),
	)


def note_numbers(run: Run) -> None:
	"""Before a chunk's messages are queued: arm the note of their numbers (`_remember_numbered`)
	right after the replay log's numbering and before anything else of the commit (the inbox's
	write takes a tenth of a second: a note after it would leave a process killed meanwhile with
	numbers nobody takes back). Frappe runs `before_commit` steps in the order they were armed."""
	delivery_log._queue()
	transaction.state(_NUMBERED, dict, before_commit=_remember_numbered)


def _numbered_key(name: str) -> bytes:
	return frappe.cache.make_key(f"rt_studio:delivery_job:{name}:numbered")


def _remember_numbered(state: dict) -> None:
	"""Right after the replay log numbered the chunk's messages, before the rest of the commit: the
	(user, seq) of each, so that if the process dies before the COMMIT the next run takes them out
	of the log again (`_unlog_uncommitted`): they were never sent, and the next run numbers them anew."""
	if "job" not in state:  # the chunk was not recorded (chunk_committing): nothing to note
		return
	numbered = [
		(room[len("user:") :], message["seq"])
		for _event, message, room in state["outbox"]()
		if room.startswith("user:") and message.get("seq") is not None
	]
	data = json.dumps({"chunk": state["chunk"], "numbered": numbered}, ensure_ascii=False)
	frappe.cache.set(_numbered_key(state["job"]), data, ex=NUMBERED_SECONDS)


def _unlog_uncommitted(name: str, committed: int) -> None:
	"""A run starting after a run that died: the messages the dead run numbered for a chunk it never
	committed leave the users' replay logs (else a desk reconnecting later would get them again
	from `missed`, beside the copies this run sends)."""
	data = frappe.cache.get(_numbered_key(name))
	left = json.loads(data) if data else None
	if left and left["chunk"] > committed:
		delivery_log.unlog([(user, {"seq": seq}) for user, seq in left["numbered"]])


def finish(run: Run, status: str, error: str | None = None) -> None:
	"""End this run without another chunk (the rule was disabled, or an error stopped it), committed:
	the job is Done, Failed, or Queued for the sweep to run it again."""
	frappe.db.sql(
		f"update `tab{DOCTYPE}` set status=%s, error=%s, modified=%s where name=%s and runner=%s",
		(status, error, _now(), run.name, run.runner),
	)
	frappe.db.commit()


def passing(error: Exception) -> bool:
	"""Whether the error that stopped a run says nothing about the rule, only about the moment
	(a deadlock, a lock wait, a lost connection to MariaDB or Redis, a site being updated): the job
	is left Queued for the sweep, which runs it on from its last chunk (up to MAX_ATTEMPTS runs)."""
	import pymysql

	return (
		transaction.aborts_transaction(error)
		or transaction.lost_redis(error)
		or isinstance(error, frappe.InReadOnlyMode | pymysql.OperationalError)
	)


# --- the sweep -------------------------------------------------------------------------------


def stranded(older_than: float = GRACE_SECONDS):
	"""Each unfinished job, changed at least `older_than` seconds ago, that no worker has or will
	take (see `_alive`), oldest first, locked (FOR UPDATE SKIP LOCKED: a row another sweep or run
	holds is passed over) in a transaction of its own that the caller ends (`requeued`, or `given_up`
	and a commit)."""
	names = frappe.db.sql(
		f"""select name from `tab{DOCTYPE}` where status in (%s, %s) and modified <= %s
		order by modified limit {SWEEP_LIMIT}""",
		(QUEUED, RUNNING, add_to_date(_now(), seconds=-older_than)),
		pluck=True,
	)
	for name in names:
		frappe.db.rollback()
		rows = frappe.db.sql(
			f"""select name, status, runner, runner_job, rq_job, heartbeat, modified, attempts, rule,
			arguments from `tab{DOCTYPE}` where name=%s and status in (%s, %s) for update skip locked""",
			(name, QUEUED, RUNNING),
			as_dict=True,
		)
		if rows and not _alive(rows[0]):
			yield rows[0]
	frappe.db.rollback()


def requeued(row, rq_job: str) -> None:
	"""The job is queued again as `rq_job`: committed before the kick is queued, so the run it
	starts finds the row naming it."""
	frappe.db.sql(
		f"update `tab{DOCTYPE}` set rq_job=%s, modified=%s where name=%s", (rq_job, _now(), row.name)
	)
	frappe.db.commit()


def given_up(row, error: str) -> None:
	"""The job will not be queued again (in the caller's transaction)."""
	frappe.db.sql(
		f"update `tab{DOCTYPE}` set status=%s, error=%s, modified=%s where name=%s",
		(FAILED, error, _now(), row.name),
	)


def _alive(row) -> bool:
	"""Whether a worker has the job or will take it."""
	status = rq_status(row.rq_job)
	if status in WAITING:
		return True
	if row.status == QUEUED:
		# started but not claimed yet: claiming takes milliseconds, unless the worker died first
		recent = row.modified > add_to_date(_now(), seconds=-STALE_SECONDS)
		return status == "started" and recent
	return _running_elsewhere(row)


def remove_finished() -> None:
	"""Finished jobs older than KEEP_FINISHED_DAYS, a bounded batch per sweep (indexed on status)."""
	cutoff = add_to_date(_now(), days=-KEEP_FINISHED_DAYS)
	old = frappe.db.sql(
		f"""select name from `tab{DOCTYPE}` where status in (%s, %s) and modified < %s limit 500""",
		(DONE, FAILED, cutoff),
		pluck=True,
	)
	if old:
		frappe.db.delete(CHUNK_DOCTYPE, {"parent": ("in", old), "parenttype": DOCTYPE})
		frappe.db.delete(DOCTYPE, {"name": ("in", old)})


def rq_status(rq_job: str | None) -> str | None:
	"""RQ's status of the job (queued, started, failed, finished, ...), None when the queue has no
	such job (it never got there, expired, or was lost with Redis)."""
	from frappe.utils.background_jobs import get_job_status

	if not rq_job:
		return None
	status = get_job_status(rq_job)
	return str(status.value if hasattr(status, "value") else status) if status else None


def current_rq_job() -> str | None:
	"""The key of the RQ job this process runs (without the site's prefix), None outside a job."""
	from rq import get_current_job

	job = get_current_job()
	return job.id.partition("::")[2] or job.id if job else None


# --- arguments as JSON -------------------------------------------------------------------------


def encode(arguments: dict) -> str:
	"""The job's arguments as JSON, dates, times and decimals tagged so `decode` gives them back as
	they were (a condition compares dates); anything else JSON cannot hold, pickled."""
	return json.dumps(arguments, default=_tagged, separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> dict:
	return json.loads(text, object_hook=_untagged)


def _tagged(value):
	if isinstance(value, datetime):
		return {_TAG: "datetime", "v": value.isoformat()}
	if isinstance(value, date):
		return {_TAG: "date", "v": value.isoformat()}
	if isinstance(value, time):
		return {_TAG: "time", "v": value.isoformat()}
	if isinstance(value, timedelta):
		return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
	if isinstance(value, Decimal):
		return {_TAG: "decimal", "v": str(value)}
	return {_TAG: "pickle", "v": base64.b64encode(pickle.dumps(value)).decode()}


_UNTAG = {
	"datetime": datetime.fromisoformat,
	"date": date.fromisoformat,
	"time": time.fromisoformat,
	"timedelta": lambda v: timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
	"decimal": Decimal,
	"pickle": lambda v: pickle.loads(base64.b64decode(v)),
}


def _untagged(value: dict):
	kind = value.get(_TAG)
	return _UNTAG[kind](value["v"]) if kind in _UNTAG and len(value) == 2 else value
