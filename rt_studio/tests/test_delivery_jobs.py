"""Large-audience delivery jobs survive a killed worker and a lost queue: each recipient gets the
message once (rt_studio/delivery/delivery_jobs.py).

The tests commit a save, keep the job's RQ kick from running (they hold the job's row locked while
the kick is queued: a run that finds the row locked leaves it, as it would for a sweep in progress),
then run, kill and recover the job in real processes and count what reached each user: inbox rows in
MariaDB and messages published on Redis `events`. They remove what they committed.
"""

import base64
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from unittest.mock import patch

import frappe
from frappe.utils import add_to_date, now_datetime
from frappe.utils.background_jobs import create_job_id, get_job, get_job_status, get_queue, get_redis_conn
from rq.job import Job, JobStatus

from rt_studio import rule_cache as cache
from rt_studio.deferred import job_failed as old_job_failed
from rt_studio.delivery import deferred, delivery_jobs, delivery_log, outbox
from rt_studio.engine.evaluate import Event
from rt_studio.tests.crowd import make_crowd, sweep_crowds
from rt_studio.tests.factories import (
	ORDER,
	TESTER,
	WAIT_SECONDS,
	RealtimeListener,
	RTTestCase,
	SiteProcess,
	make_rule,
	new_order,
	purge_order,
	run_background_jobs,
)

JOBS = f"tab{delivery_jobs.DOCTYPE}"
INBOX = "tabRealtime Inbox Item"
#: Above deferred.LARGE_AUDIENCE: the audience of every test but the killed one.
CROWD = 150
#: The killed delivery's audience: five chunks of deferred.JOB_CHUNK.
LARGE_CROWD = 5000


class TestDeliveryJobs(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		sweep_crowds()
		cls.crowd = cls.enterClassContext(make_crowd(CROWD, (TESTER,)))

	def crowd_rule(self):
		return self.enterContext(
			make_rule([{"audience_type": "Role", "role": TESTER}], event="New", commit=True)
		)

	def order_before_its_rule(self):
		"""A new order saved before its rule (so only the runs a test makes deliver), both committed;
		the rule, the order and the New event a job delivers."""
		order = new_order().insert()
		rule = self.crowd_rule()
		self.addCleanup(remove_delivery, rule.name, order.name)
		doc = order.as_dict(convert_dates_to_str=False)
		return rule, order, Event(ORDER, order.name, "New", doc, None, "Administrator")

	def saved_with_its_kick_lost(self, rule: str) -> dict:
		"""A new order saved and committed, its delivery job's RQ kick lost (as after a restart of
		the queue Redis): {"job", "docname"}."""
		with holding_the_kick(rule, lambda: new_order().insert().name) as held:
			self.addCleanup(remove_delivery, rule, held["docname"])
		return held

	def test_a_save_that_rolls_back_leaves_no_job_and_one_that_commits_leaves_its_arguments(self):
		rule = self.crowd_rule()
		order = new_order(due_date=date(2026, 12, 24)).insert()
		self.assertEqual(len(jobs_of(rule.name)), 1)  # inserted with the save, in its transaction
		frappe.db.rollback()
		self.assertEqual(jobs_of(rule.name), [])
		self.assertIsNone(frappe.db.exists(ORDER, order.name))

		with holding_the_kick(
			rule.name, lambda: new_order(due_date=date(2026, 12, 24)).insert().name
		) as held:
			self.addCleanup(remove_delivery, rule.name, held["docname"])
			stored = frappe.db.get_value(delivery_jobs.DOCTYPE, held["job"], "arguments")
		# what the sweep queues again is what the save queued: dates stay dates
		self.assertEqual(delivery_jobs.decode(stored), held["kwargs"])
		self.assertEqual(held["kwargs"]["doc"]["due_date"], date(2026, 12, 24))
		self.assertEqual(jobs_of(rule.name), [(held["job"], delivery_jobs.QUEUED)])

	def test_redis_a_job_lost_with_the_queue_is_delivered_once_by_the_sweep(self):
		rule = self.crowd_rule()
		with RealtimeListener() as listener:
			held = self.saved_with_its_kick_lost(rule.name)
			job, docname = held["job"], held["docname"]
			first, second = deferred.recover(older_than=0), deferred.recover(older_than=0)
			log = run_background_jobs("short")
			published = published_per_user(listener, rule.name, len(self.crowd))
		self.assertEqual((first["requeued"], second["requeued"]), ([job], []), "two sweeps, one kick")
		self.assert_once_each(self.crowd, rule.name, docname, published, log)
		self.assertEqual(jobs_of(rule.name), [(job, delivery_jobs.DONE)])
		self.assertEqual(deferred.recover(older_than=0)["requeued"], [])

	def test_redis_a_job_whose_whole_worker_died_is_queued_again_once_it_stops_committing(self):
		rule = self.crowd_rule()
		with RealtimeListener() as listener:
			held = self.saved_with_its_kick_lost(rule.name)
			job = held["job"]
			# a run claimed it in a worker that died with it: RQ still says that run's job started
			dead_run = f"{delivery_jobs.JOB_PREFIX}{job}.dead:{rule.name}"
			started = Job.create("frappe.ping", connection=get_redis_conn(), id=create_job_id(dead_run))
			started.set_status(JobStatus.STARTED, pipeline=None)
			started.save()
			self.addCleanup(started.delete)
			sweeps = []
			for seconds in (delivery_jobs.STALE_SECONDS - 10, delivery_jobs.STALE_SECONDS + 1):
				claimed_by(job, dead_run, seconds_ago=seconds)
				sweeps.append(deferred.recover(older_than=0)["requeued"])
			log = run_background_jobs("short")
			published = published_per_user(listener, rule.name, len(self.crowd))
		self.assertEqual(sweeps, [[], [job]])  # left alone while it might still commit
		self.assert_once_each(self.crowd, rule.name, held["docname"], published, log)
		self.assertEqual(jobs_of(rule.name), [(job, delivery_jobs.DONE)])

	def test_redis_a_run_killed_while_a_chunk_commits_leaves_no_second_copy_for_replay(self):
		rule, order, event = self.order_before_its_rule()
		arguments = deferred.job_arguments(rule.name, event)
		job = delivery_jobs.record_name(arguments["job"])
		with RealtimeListener() as listener:
			died = dying_job(arguments, chunk=1)  # numbered for replay, then killed before the COMMIT
			released(job)
			stopped = jobs_of(rule.name)
			deferred.deliver(**arguments)  # the next run (the sweep's, run here)
			published = published_per_user(listener, rule.name, len(self.crowd))
		self.assertEqual((died, stopped), (-signal.SIGKILL, [(job, delivery_jobs.RUNNING)]))
		audience = frappe.get_all("Realtime Inbox Item", filters={"rule": rule.name}, pluck="user")
		self.assertLessEqual(set(self.crowd), set(audience))
		replayed = Counter(
			user for user in audience for m in delivery_log.read(user, 0) if m.get("rule") == rule.name
		)
		self.assertEqual(set(replayed.values()), {1})  # what `missed` gives a desk after a reconnect
		self.assert_once_each(audience, rule.name, order.name, published, "")

	def test_redis_a_run_stopped_by_a_deadlock_is_run_on_by_the_sweep_from_its_last_chunk(self):
		rule, order, event = self.order_before_its_rule()
		arguments = pickle.loads(pickle.dumps(deferred.job_arguments(rule.name, event)))
		publish, calls = outbox.publish, []

		def deadlocks_in_the_second_chunk(part):
			calls.append(part)
			if len(calls) == 2:
				raise frappe.QueryDeadlockError("Deadlock found when trying to get lock")
			publish(part)

		with RealtimeListener() as listener:
			with (
				patch.object(deferred, "JOB_CHUNK", 40),
				patch.object(outbox, "publish", deadlocks_in_the_second_chunk),
			):
				deferred.deliver(**arguments)
			job = delivery_jobs.record_name(arguments["job"])
			stopped = jobs_of(rule.name)
			requeued = deferred.recover(older_than=0)["requeued"]
			log = run_background_jobs("short")
			published = published_per_user(listener, rule.name, len(self.crowd))
		self.assertEqual((stopped, requeued), ([(job, delivery_jobs.QUEUED)], [job]))
		self.assert_once_each(self.crowd, rule.name, order.name, published, log)
		self.assertEqual(jobs_of(rule.name), [(job, delivery_jobs.DONE)])

	def test_a_job_whose_runs_all_died_is_given_up_after_five_and_recorded_on_its_rule(self):
		rule = self.crowd_rule()
		job = self.saved_with_its_kick_lost(rule.name)["job"]
		claimed_by(job, None, seconds_ago=0, attempts=delivery_jobs.MAX_ATTEMPTS)
		self.assertEqual(deferred.recover(older_than=0), {"requeued": [], "failed": [job]})
		self.assertEqual(jobs_of(rule.name), [(job, delivery_jobs.FAILED)])
		error = frappe.db.get_value("Realtime Rule", rule.name, "last_error")
		self.assertIn(f"the delivery job stopped after {delivery_jobs.MAX_ATTEMPTS} runs", error)

	def test_redis_a_worker_killed_mid_delivery_is_resumed_by_the_sweep_and_each_recipient_gets_it_once(self):
		crowd = self.enterContext(make_crowd(LARGE_CROWD, (TESTER,)))
		rule = self.crowd_rule()
		with RealtimeListener() as listener:
			with holding_the_kick(rule.name, lambda: new_order().insert().name) as held:
				self.addCleanup(remove_delivery, rule.name, held["docname"])
				arguments = frappe.db.get_value(delivery_jobs.DOCTYPE, held["job"], "arguments")
			job, docname = held["job"], held["docname"]
			killed_after = run_and_kill(listener, rule.name, arguments)
			released(job)
			self.assertEqual(jobs_of(rule.name), [(job, delivery_jobs.RUNNING)])
			self.assertEqual(deferred.recover(older_than=0)["requeued"], [job])
			log = run_background_jobs("short")
			published = published_per_user(listener, rule.name, len(crowd) + len(self.crowd))
		self.assertGreaterEqual(len(killed_after), deferred.JOB_CHUNK)
		self.assertLess(len(killed_after), LARGE_CROWD)
		self.assert_once_each(crowd + self.crowd, rule.name, docname, published + killed_after, log)
		[(attempts, status)] = frappe.db.sql(f"select attempts, status from `{JOBS}` where name=%s", job)
		self.assertEqual((attempts, status), (2, delivery_jobs.DONE))

	def test_redis_a_run_that_lost_its_claim_commits_nothing_and_the_run_that_took_it_sends_everything(self):
		rule, order, event = self.order_before_its_rule()
		arguments = pickle.loads(pickle.dumps(deferred.job_arguments(rule.name, event)))
		job = arguments.pop("job")
		first = delivery_jobs.claim(job, arguments)
		second = delivery_jobs.claim(job, arguments)  # the first is no RQ job that runs: taken over
		compiled = cache.committed_rule(rule.name)
		with RealtimeListener() as listener, patch.object(deferred, "JOB_CHUNK", 40):
			with self.assertRaises(delivery_jobs.Superseded):
				deferred._deliver(compiled, event, None, job, first)
			frappe.db.rollback()
			deferred._deliver(compiled, event, None, job, second)
			published = published_per_user(listener, rule.name, len(self.crowd))
			deferred.deliver(**arguments, job=job)  # a third run of a finished job sends nothing
			again = published_per_user(listener, rule.name, 0)
		self.assert_once_each(self.crowd, rule.name, order.name, published, "")
		self.assertEqual(again, Counter())

	def test_redis_messages_committed_but_not_published_when_the_run_died_come_through_missed_only(self):
		rule, order, event = self.order_before_its_rule()
		arguments = pickle.loads(pickle.dumps(deferred.job_arguments(rule.name, event)))
		job = arguments.pop("job")
		emit = outbox.emit

		def dies_after_the_first_commit(messages):
			outbox.emit = emit  # the next run publishes as usual
			raise Killed  # the first chunk is committed (inbox, numbers, progress), never published

		with RealtimeListener() as listener, patch.object(deferred, "JOB_CHUNK", 40):
			outbox.emit = dies_after_the_first_commit
			try:
				with self.assertRaises(Killed):
					deferred.deliver(**arguments, job=job)
			finally:
				outbox.emit = emit
			frappe.db.rollback()
			deferred.deliver(**arguments, job=job)  # the resumed run
			published = published_per_user(listener, rule.name, len(self.crowd) - 40)
		audience = frappe.get_all("Realtime Inbox Item", filters={"rule": rule.name}, pluck="user")
		self.assertLessEqual(set(self.crowd), set(audience))
		unpublished = set(audience) - set(published)
		self.assertEqual(len(unpublished), 40)  # the first chunk: kept, numbered, not sent live
		self.assertEqual(max(published.values()), 1)  # ... nor sent by the resumed run
		for user in audience:
			replayed = [m for m in delivery_log.read(user, 0) if m.get("rule") == rule.name]
			self.assertEqual(len(replayed), 1, user)  # what `missed` gives a desk after a reconnect
		self.assert_once_each(audience, rule.name, order.name, published + Counter(unpublished), "")

	def test_redis_a_job_queued_by_an_older_version_still_runs_and_gets_its_row(self):
		rule, order, event = self.order_before_its_rule()
		arguments = deferred.job_arguments(rule.name, event)
		# the keyword arguments an older version queued, with no job row
		old = {key: arguments[key] for key in ("rule", "doctype", "docname", "rule_event", "doc", "before")}
		with RealtimeListener() as listener:
			frappe.enqueue(
				"rt_studio.deferred.deliver",
				queue="short",
				job_id=arguments["job"],
				on_failure=old_job_failed,
				actor="Administrator",
				job=arguments["job"],
				**old,
			)
			frappe.db.commit()
			log = run_background_jobs("short")
			published = published_per_user(listener, rule.name, len(self.crowd))
		self.assert_once_each(self.crowd, rule.name, order.name, published, log)
		self.assertEqual(
			jobs_of(rule.name), [(delivery_jobs.record_name(arguments["job"]), delivery_jobs.DONE)]
		)

	def test_arguments_keep_their_types_through_the_row(self):
		arguments = {
			"doc": {
				"day": date(2026, 1, 2),
				"at": datetime(2026, 1, 2, 3, 4, 5, 6),
				"amount": Decimal("1.10"),
			},
			"before": {"spent": timedelta(hours=25, microseconds=7), "tags": {"a"}, "rows": [{"qty": 1.5}]},
		}
		self.assertEqual(delivery_jobs.decode(delivery_jobs.encode(arguments)), arguments)

	def assert_once_each(self, users, rule: str, docname: str, published: Counter, log: str) -> None:
		"""Each of `users` has exactly one inbox row of the rule's message and got it published once."""
		rows = dict(
			frappe.db.sql(
				f"select user, count(*) from `{INBOX}` where rule=%s and reference_name=%s group by user",
				(rule, docname),
			)
		)
		tally = {
			"inbox": Counter(min(rows.get(user, 0), 2) for user in users),
			"published": Counter(min(published.get(user, 0), 2) for user in users),
		}
		self.assertEqual(tally, {"inbox": {1: len(users)}, "published": {1: len(users)}}, log[-2000:])
		self.assertEqual(max(published.values()), 1)


class Killed(BaseException):
	"""The process running the job ends here (not an error the job could catch and record)."""


def claimed_by(job: str, rq_job: str | None, seconds_ago: float, attempts: int = 1) -> None:
	"""As if a run in the RQ job `rq_job` claimed the job and last committed `seconds_ago`."""
	when = add_to_date(now_datetime(), seconds=-seconds_ago)
	frappe.db.sql(
		f"""update `{JOBS}` set status=%s, runner='gone', runner_job=%s, rq_job=%s, heartbeat=%s,
		modified=%s, attempts=%s where name=%s""",
		(delivery_jobs.RUNNING, rq_job, rq_job, when, when, attempts, job),
	)
	frappe.db.commit()


def jobs_of(rule: str) -> list[tuple[str, str]]:
	return [tuple(row) for row in frappe.db.sql(f"select name, status from `{JOBS}` where rule=%s", rule)]


@contextmanager
def holding_the_kick(rule: str, save):
	"""Commit `save()` (which returns the document's name) with its job's row locked by this
	connection from the commit on, so the job's RQ kick cannot run it: taken off the queue, or run
	by the bench's worker and left (its row was locked). Yields {"job", "docname", "kwargs": the
	kick's arguments as RQ held them}; the row is released on leaving."""
	held = {}
	# added before the save queues its kick: after-commit callbacks run in order
	frappe.db.after_commit.add(
		lambda: frappe.db.sql(f"select name from `{JOBS}` where name=%s for update", held["job"])
	)
	held["docname"] = docname = save()
	[(held["job"],)] = frappe.db.sql(
		f"select name from `{JOBS}` where rule=%s and reference_name=%s", (rule, docname)
	)
	frappe.db.commit()
	kick = frappe.db.get_value(delivery_jobs.DOCTYPE, held["job"], "rq_job")
	held["kwargs"] = get_job(kick).kwargs["kwargs"]
	if get_queue("short").remove(create_job_id(kick)):
		get_job(kick).delete()  # lost, as with the queue Redis
	else:  # a worker took it first: its run finds the row locked and ends
		deadline = time.monotonic() + WAIT_SECONDS
		while get_job_status(kick) in ("queued", "started"):
			if time.monotonic() > deadline:
				raise TimeoutError(f"the kick {kick} still runs after {WAIT_SECONDS} s")
			time.sleep(0.1)
	try:
		yield held
	finally:
		frappe.db.rollback()


def run_and_kill(listener: RealtimeListener, rule: str, arguments: str) -> Counter:
	"""Run the job in another process as a work horse does, kill -9 it once its first chunk is
	published; the messages published until then, per user."""
	kwargs = base64.b64encode(pickle.dumps(delivery_jobs.decode(arguments))).decode()
	with SiteProcess() as process:
		process.send("run_job", method=deferred.METHOD, arguments=kwargs)
		first = listener.received(rule=rule, count=deferred.JOB_CHUNK, quiet=0)
		os.kill(process.proc.pid, signal.SIGKILL)
		process.proc.wait(timeout=WAIT_SECONDS)
		if len(first) < deferred.JOB_CHUNK:
			raise TimeoutError(f"no chunk published after {WAIT_SECONDS} s: {process.stderr_tail()}")
	return Counter(sent.user for sent in first)


def dying_job(arguments: dict, chunk: int) -> int:
	"""Run the job in another process that kills itself while committing `chunk` (see
	rt_studio/tests/dying_job.py); its exit status."""
	kwargs = base64.b64encode(pickle.dumps(arguments)).decode()
	sites_path = os.path.abspath(frappe.local.sites_path)
	command = [sys.executable, "-m", "rt_studio.tests.dying_job", frappe.local.site, kwargs, str(chunk)]
	return subprocess.run(command, cwd=sites_path, capture_output=True, timeout=WAIT_SECONDS).returncode


def released(job: str) -> None:
	"""Wait until MariaDB has rolled back what the killed process left open on the job's row (the
	sweep passes over a locked row until the next minute)."""
	deadline = time.monotonic() + WAIT_SECONDS
	while not frappe.db.sql(f"select name from `{JOBS}` where name=%s for update skip locked", job):
		if time.monotonic() > deadline:
			raise TimeoutError(f"the job {job} is still locked after {WAIT_SECONDS} s")
		frappe.db.rollback()
		time.sleep(0.1)
	frappe.db.rollback()


def published_per_user(listener: RealtimeListener, rule: str, count: int) -> Counter:
	return Counter(sent.user for sent in listener.received(rule=rule, count=count, quiet=1))


def remove_delivery(rule: str, docname: str) -> None:
	frappe.db.rollback()
	frappe.db.sql(f"delete from `{INBOX}` where rule=%s", rule)
	for (job,) in frappe.db.sql(f"select name from `{JOBS}` where rule=%s", rule):
		frappe.db.sql(f"delete from `tab{delivery_jobs.CHUNK_DOCTYPE}` where parent=%s", job)
	frappe.db.sql(f"delete from `{JOBS}` where rule=%s", rule)
	purge_order(docname)
	frappe.db.commit()
