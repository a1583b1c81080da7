"""Large audiences delivered by a background job after the commit, run by a real RQ worker.

The tests named `test_redis_*` commit, run the queued jobs in a burst worker (another process:
arguments pickled and unpickled as in production) and listen on Redis for what was published;
they remove what they committed.
"""

import base64
import pickle
import time
from unittest.mock import patch

import frappe
from frappe.share import add_docshare

import rt_studio.save.handler as handler
from rt_studio.api import mute
from rt_studio.delivery import deferred, trace
from rt_studio.delivery import mutes as site_mutes
from rt_studio.engine.evaluate import Event, Outcome
from rt_studio.engine.ratelimit import rule_key
from rt_studio.tests.counting import QueriesIn
from rt_studio.tests.crowd import forget_cached, make_crowd, sweep_crowds
from rt_studio.tests.factories import (
	BYSTANDER,
	ORDER,
	RULE_PREFIX,
	TESTER,
	WAIT_SECONDS,
	RealtimeListener,
	RTTestCase,
	SiteProcess,
	clear_rate_keys,
	make_rule,
	make_users,
	new_order,
	purge_order,
	run_background_jobs,
)
from rt_studio.tests.test_mutes import as_if_delivered, as_user, drop_mutes

#: Above deferred.LARGE_AUDIENCE, as in the report that found deferred jobs failing.
CROWD = 105
SALES = "Sales User"  # a role Frappe creates on every site; may read Contacts

#: Redis round trips of a delivery job on an RT Test Order, besides Frappe's job machinery (what
#: an empty job costs): once per job, the metas of the DocType and of its child table, whether
#: the custom DocType is virtual (Frappe's, on loading the document), and removing the job's
#: record of its last chunk's numbers (delivery_jobs)...
ROUND_TRIPS_PER_JOB = 4
#: ...and per chunk, cold (nobody's roles cached), for a rule with a rate limit that a recipient
#: muted: the chunk's roles, User Permissions and mutes; writing back the roles and User
#: Permissions it computed; the rate limit with the batches; the recipients' preferences (one
#: MGET); numbering for `missed`; the job's record of those numbers until the commit; publishing;
#: the progress in the trace (the last chunk: the trace).
ROUND_TRIPS_PER_CHUNK = 8


class Unpicklable:
	"""Pickles, but fails to unpickle (as read-only child rows once did in the worker)."""

	def __reduce__(self):
		return (_explode, ())


def _explode():
	raise RuntimeError("this value cannot be unpickled")


class TestDeferredDelivery(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		sweep_crowds()
		cls.crowd = cls.enterClassContext(make_crowd(CROWD, (SALES, TESTER)))
		cls.users = cls.enterClassContext(
			make_users({"reader": {"roles": [TESTER]}, "bystander": {"roles": [BYSTANDER]}})
		)
		cls.addClassCleanup(forget_delivery_jobs)

	def readers_of(self, doc, role: str) -> set[str]:
		"""The role's enabled users Frappe itself lets read `doc` but the actor: the expected audience."""
		from rt_studio.people.site import FrappeDirectory

		users = set(FrappeDirectory().users_with_role(role)) - {frappe.session.user}
		return {u for u in users if frappe.has_permission(doc.doctype, "read", doc, user=u)}

	def last_error(self, rule: str) -> str:
		"""The rule's error once a job (in this bench's worker or the burst one) recorded it."""
		return wait_for(
			lambda: frappe.db.get_value("Realtime Rule", rule, "last_error"), f"an error on {rule}"
		)

	def deliver_in_worker(self, listener, rule: str, count: int) -> list:
		frappe.db.commit()
		log = run_background_jobs("short")
		received = listener.received(rule=rule, count=count)
		return received, log

	def test_redis_a_contact_with_email_rows_reaches_every_reader(self):
		rule = self.enterContext(
			make_rule(
				[{"audience_type": "Role", "role": SALES}],
				event="New",
				document_type="Contact",
				subject="{{ doc.first_name }} {{ doc.email_ids[0].email_id }}",
				commit=True,
			)
		)
		with RealtimeListener() as listener:
			contact = frappe.get_doc(
				{
					"doctype": "Contact",
					"first_name": "Deferred",
					"email_ids": [{"email_id": "deferred@example.com", "is_primary": 1}],
					"phone_nos": [{"phone": "+100", "is_primary_phone": 1}],
				}
			).insert()
			try:
				expected = self.readers_of(contact, SALES)
				received, log = self.deliver_in_worker(listener, rule.name, len(expected))
			finally:
				frappe.delete_doc("Contact", contact.name, force=True, ignore_permissions=True)
				frappe.db.commit()
		self.assertGreaterEqual(len(expected), CROWD)
		self.assertEqual(sorted(s.user for s in received), sorted(expected), log)
		self.assertEqual({s.message["subject"] for s in received}, {"Deferred deferred@example.com"})
		[entry] = [e for e in trace.read(rule.name) if e["fired"]]
		self.assertEqual(entry["recipients"], len(expected))
		self.assertTrue(entry["job"])
		self.assertEqual(entry["progress"]["delivered"], len(expected))
		self.assertTrue(entry["progress"]["done"])

	def test_redis_a_deleted_order_reaches_its_readers_and_those_it_was_shared_with(self):
		reader, bystander = self.users["reader"], self.users["bystander"]
		rule = self.enterContext(
			make_rule(
				[{"audience_type": "Role", "role": TESTER}, {"audience_type": "User", "user": bystander}],
				event="Delete",
				subject="{{ doc.title }} deleted",
				commit=True,
			)
		)
		order = new_order(title="gone", items=[{"user": reader, "qty": 1}]).insert()
		add_docshare(ORDER, order.name, bystander, read=1, flags={"ignore_share_permission": True})
		frappe.db.commit()
		expected = {*self.readers_of(order, TESTER), bystander}
		with RealtimeListener() as listener:
			try:
				frappe.delete_doc(ORDER, order.name)
				received, log = self.deliver_in_worker(listener, rule.name, len(expected))
			finally:
				purge_order(order.name)
				frappe.db.commit()
		self.assertIn(reader, expected)
		self.assertEqual(sorted(s.user for s in received), sorted(expected), log)
		self.assertEqual({s.message["subject"] for s in received}, {"gone deleted"})

	def test_arguments_a_worker_could_not_unpickle_are_refused_and_recorded(self):
		rule = self.enterContext(make_rule([{"audience_type": "Role", "role": TESTER}]))
		compiled = frappe._dict(name=rule.name, version="v1")
		doc = {"doctype": ORDER, "name": "X", "items": [{"qty": Unpicklable()}]}
		event = Event(ORDER, "X", "Save", doc, None, "Administrator")
		with patch.object(frappe, "enqueue") as enqueue:
			deferred.defer(compiled, event, Outcome(rule.name, "Save", deferred=CROWD))
		enqueue.assert_not_called()
		error = frappe.db.get_value("Realtime Rule", rule.name, "last_error")
		self.assertIn("delivery job: the document cannot be handed to the delivery job", error)
		self.assertIn("cannot be unpickled", error)

	def test_redis_a_job_that_cannot_start_in_the_worker_is_recorded_on_its_rule(self):
		rule = self.enterContext(make_rule([{"audience_type": "Role", "role": TESTER}], commit=True))
		job = f"{deferred.JOB_PREFIX}test{frappe.generate_hash(length=6)}:{rule.name}"
		frappe.enqueue(
			deferred.METHOD,
			queue="short",
			job_id=job,
			on_failure=deferred.job_failed,
			rule=rule.name,
			doctype=ORDER,
			docname="X",
			rule_event="Save",
			doc={"doctype": ORDER, "name": "X", "qty": Unpicklable()},
			before=None,
			actor="Administrator",
		)
		frappe.db.commit()
		run_background_jobs("short")
		error = self.last_error(rule.name)
		self.assertIn("the delivery job could not run: DeserializationError", error)
		[entry] = trace.read(rule.name)
		self.assertEqual((entry["fired"], entry["job"]), (False, job))
		self.assertIn("could not run", entry["error"])

	def test_a_failure_callback_in_a_process_with_the_site_but_no_connection_records_it(self):
		# the tests' job runner (and any runner that sets the site up itself) calls RQ's failure
		# callback with frappe.local.site set and no database connection: it was lost there
		rule = self.enterContext(make_rule([{"audience_type": "Role", "role": TESTER}], commit=True))
		job = type("Job", (), {"id": f"{frappe.local.site}::{deferred.JOB_PREFIX}test:{rule.name}"})()
		ours = frappe.local.db
		frappe.local.db = None
		try:
			deferred.job_failed(job, None, ValueError, ValueError("cannot unpickle"), None)
			self.assertIsNone(frappe.local.db, "the connection it opened is closed again")
		finally:
			frappe.local.db = ours
		frappe.db.commit()  # a new snapshot: the callback committed on its own connection
		self.assertIn(
			"the delivery job could not run: ValueError: cannot unpickle",
			frappe.db.get_value("Realtime Rule", rule.name, "last_error"),
		)

	def test_redis_an_error_inside_the_job_is_recorded_on_its_rule(self):
		rule = self.enterContext(
			make_rule(
				[{"audience_type": "Role", "role": TESTER}],
				event="New",
				subject="{{ 1 / (recipient == '') }}",  # per recipient: fails only in the job
				commit=True,
			)
		)
		order = new_order().insert()
		try:
			frappe.db.commit()
			run_background_jobs("short")
			error = self.last_error(rule.name)
		finally:
			purge_order(order.name)
			frappe.db.commit()
		self.assertIn("subject", error)
		self.assertIn("ZeroDivisionError", error)
		fired = [e for e in trace.read(rule.name) if e["error"]]
		self.assertEqual(len(fired), 1)
		self.assertTrue(fired[0]["progress"]["error"])

	def test_redis_the_job_delivers_in_chunks_and_the_trace_shows_progress(self):
		order = new_order().insert()
		rule = self.enterContext(
			make_rule([{"audience_type": "Role", "role": TESTER}], event="New", commit=True)
		)
		event = Event(
			ORDER, order.name, "New", order.as_dict(convert_dates_to_str=False), None, "Administrator"
		)
		# the job's arguments exactly as the worker gets them: through pickle
		arguments = pickle.loads(pickle.dumps(deferred.job_arguments(rule.name, event)))
		reports = []
		progress = trace.progress
		try:
			frappe.db.commit()
			with (
				RealtimeListener() as listener,
				patch.object(deferred, "JOB_CHUNK", 40),
				patch.object(
					trace, "progress", lambda job, **state: (reports.append(state), progress(job, **state))
				),
			):
				deferred.deliver(**arguments)
				frappe.db.commit()  # as Frappe's execute_job does after the method
				expected = self.readers_of(order, TESTER)
				received = listener.received(rule=rule.name, count=len(expected))
		finally:
			purge_order(order.name)
			frappe.db.commit()
		self.assertEqual(sorted(s.user for s in received), sorted(expected))
		chunks = -(-len(expected) // 40)
		self.assertGreaterEqual(chunks, 3)
		# progress after every chunk but the last, which is committed with the final entry
		self.assertEqual([r["decided"] for r in reports], list(range(40, 40 * chunks, 40)))
		self.assertEqual({r["done"] for r in reports}, {False})
		[entry] = trace.read(rule.name)
		self.assertEqual((entry["recipients"], entry["job"]), (len(expected), arguments["job"]))
		self.assertEqual(entry["progress"]["delivered"], len(expected))
		self.assertTrue(entry["progress"]["done"])

	def test_redis_a_job_costs_a_bounded_number_of_round_trips_per_chunk_and_keeps_every_promise(self):
		from rt_studio.delivery.rate_limit import KEY_PREFIX
		from rt_studio.people.site import FrappeDirectory

		muted = self.users["reader"]
		order = new_order().insert()  # before the rule: the job below is the only one
		rule = self.enterContext(
			make_rule(
				[{"audience_type": "Role", "role": TESTER}],
				event="New",
				rate_limit_count=5,
				rate_limit_seconds=60,
				commit=True,
			)
		)
		clear_rate_keys(rule.name)
		as_if_delivered(muted, rule=rule.name)
		as_user(muted, mute, rule=rule.name)
		self.addCleanup(drop_mutes, muted)
		event = Event(
			ORDER, order.name, "New", order.as_dict(convert_dates_to_str=False), None, "Administrator"
		)
		arguments = base64.b64encode(pickle.dumps(deferred.job_arguments(rule.name, event))).decode()
		frappe.db.commit()
		audience = FrappeDirectory().users_with_role(TESTER)
		expected = self.readers_of(order, TESTER) - {muted}
		chunk = 60
		chunks = -(-len(audience) // chunk)
		forget_cached(audience)  # cold: nobody's roles nor User Permissions cached
		frappe.local.cache.pop(site_mutes.LOADED_KEY, None)
		site_mutes._ensure_loaded()  # Redis holds the mutes, as it does but after a restart
		try:
			with RealtimeListener() as listener, SiteProcess() as process:
				empty = process.ask("run_job", method="frappe.ping")
				job = process.ask("run_job", method=deferred.METHOD, arguments=arguments, job_chunk=chunk)
				received = listener.received(rule=rule.name, count=len(expected))
		finally:
			purge_order(order.name)
			frappe.db.commit()
		self.assertGreaterEqual(chunks, 2)
		bound = ROUND_TRIPS_PER_JOB + ROUND_TRIPS_PER_CHUNK * chunks
		self.assertLessEqual(job["redis"] - empty["redis"], bound, (job, empty, chunks))
		# ... with every promise kept: the muted reader gets nothing, every other reader one
		# numbered message, the trace says so, and only what was sent used up the rate limit
		self.assertIn(muted, self.readers_of(order, TESTER))
		self.assertEqual(sorted(s.user for s in received), sorted(expected))
		self.assertTrue(all(isinstance(s.message["seq"], int) for s in received), received[:3])
		[entry] = trace.read(rule.name)
		self.assertEqual((entry["recipients"], entry["muted"]), (len(expected), 1))
		self.assertEqual((entry["progress"]["delivered"], entry["progress"]["done"]), (len(expected), True))
		counted = {
			user: frappe.cache.zcard(frappe.cache.make_key(KEY_PREFIX + rule_key(rule.name, user)))
			for user in audience
		}
		self.assertEqual({user for user, hits in counted.items() if hits}, expected)
		self.assertEqual(set(counted.values()), {0, 1})

	def job_for(self, rule: str, order) -> dict:
		"""The job's arguments for a New of `order`, as the worker gets them: through pickle."""
		event = Event(
			ORDER, order.name, "New", order.as_dict(convert_dates_to_str=False), None, "Administrator"
		)
		return pickle.loads(pickle.dumps(deferred.job_arguments(rule, event)))

	def run_here(self, arguments: dict, rule: str, count: int) -> list:
		"""Run the job in this process, commit as `execute_job` does; what it published."""
		with RealtimeListener() as listener:
			deferred.deliver(**arguments)
			frappe.db.commit()
			return listener.received(rule=rule, count=count)

	def test_redis_a_job_sends_the_rule_as_it_is_when_the_job_runs(self):
		order = new_order().insert()  # before the rule: only the jobs below deliver
		rule = self.enterContext(
			make_rule([{"audience_type": "Role", "role": TESTER}], event="New", commit=True)
		)
		arguments = self.job_for(rule.name, order)
		try:
			rule.subject = "edited: {{ doc.name }}"
			rule.save()
			frappe.db.commit()
			expected = self.readers_of(order, TESTER)
			edited = self.run_here(arguments, rule.name, len(expected))
			rule.enabled = 0
			rule.save()
			frappe.db.commit()
			disabled = self.run_here(arguments, rule.name, 0)
		finally:
			purge_order(order.name)
			frappe.db.commit()
		self.assertEqual(sorted(s.user for s in edited), sorted(expected))
		self.assertEqual({s.message["subject"] for s in edited}, {f"edited: {order.name}"})
		self.assertEqual(disabled, [])

	def test_redis_a_job_honours_mutes_redis_has_lost(self):
		muted = self.users["reader"]
		order = new_order().insert()
		rule = self.enterContext(
			make_rule([{"audience_type": "Role", "role": TESTER}], event="New", commit=True)
		)
		as_if_delivered(muted, rule=rule.name)
		as_user(muted, mute, rule=rule.name)
		self.addCleanup(drop_mutes, muted)
		arguments = self.job_for(rule.name, order)
		for key in frappe.cache.keys(frappe.cache.make_key("rt_studio:mutes*")):
			frappe.cache.delete(key)  # a restart of Redis, or `bench clear-cache`
		frappe.local.cache.pop(site_mutes.LOADED_KEY, None)
		try:
			expected = self.readers_of(order, TESTER) - {muted}
			received = self.run_here(arguments, rule.name, len(expected))
		finally:
			purge_order(order.name)
			frappe.db.commit()
		self.assertIn(muted, self.readers_of(order, TESTER))
		self.assertEqual(sorted(s.user for s in received), sorted(expected))
		[entry] = trace.read(rule.name)
		self.assertEqual(entry["muted"], 1)

	def test_the_save_costs_the_same_for_a_large_audience_as_for_a_small_one(self):
		crowd = self.enterContext(make_rule([{"audience_type": "Role", "role": TESTER}], event="New"))
		counts = {}
		for label, rows in (
			("crowd", crowd.audience),
			("one", [{"audience_type": "User", "user": self.users["reader"]}]),
		):
			crowd.set("audience", rows)
			crowd.save()
			order = new_order()
			with QueriesIn(handler, "run_rules") as queries:
				order.insert()
			counts[label] = queries.count
		self.assertLessEqual(counts["crowd"], counts["one"] + 1, counts)


def forget_delivery_jobs() -> None:
	"""Remove the job rows (delivery_jobs) of the suite's rules."""
	frappe.db.rollback()
	jobs = frappe.get_all(
		"Realtime Delivery Job", filters={"rule": ("like", f"{RULE_PREFIX}%")}, pluck="name"
	)
	if jobs:
		frappe.db.delete("Realtime Delivery Job Chunk", {"parent": ("in", jobs)})
		frappe.db.delete("Realtime Delivery Job", {"name": ("in", jobs)})
		frappe.db.commit()


def wait_for(read, what: str):
	"""`read()` once it is truthy (each try in a fresh transaction), failing after WAIT_SECONDS."""
	deadline = time.monotonic() + WAIT_SECONDS
	while True:
		frappe.db.rollback()
		value = read()
		if value:
			return value
		if time.monotonic() > deadline:
			raise TimeoutError(f"no {what} after {WAIT_SECONDS} s")
		time.sleep(0.2)
