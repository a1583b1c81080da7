"""What goes over the wire, and when: after the commit only, one publish per delivery.

The tests named `test_redis_*` commit and listen on Redis's `events` channel to see what
was really published; they remove what they committed.
"""

import frappe
from markupsafe import escape

from rt_studio.tests.factories import (
	ORDER,
	TESTER,
	WIRE_KEYS,
	RealtimeListener,
	RTTestCase,
	make_rule,
	make_users,
	new_order,
	purge_order,
	run_background_jobs,
)

#: A title with characters a template must escape (Frappe itself only sanitizes < and >).
TITLE = 'Tom & "Jerry"'


class TestDelivery(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def to_reader(self, **fields):
		return self.enterContext(make_rule([{"audience_type": "User", "user": self.reader}], **fields))

	def test_message_has_the_wire_keys(self):
		rule = self.to_reader(
			event="New",
			subject="Order {{ doc.title }}",
			message="<b>{{ doc.title }}</b> for {{ doc.qty }}",
			fields="title, qty",
			display="Sticky",
			indicator="green",
			alert_seconds=9,
			event_name="my_orders",
		)
		with self.action() as insert:
			doc = new_order(title=TITLE, qty=3).insert()
		[sent] = insert.sent
		self.assertEqual((sent.event, sent.room), ("my_orders", f"user:{self.reader}"))
		self.assertEqual(set(sent.message), WIRE_KEYS)
		message = sent.message
		self.assertEqual(message["rule"], rule.name)
		self.assertIsNone(message["channel"])
		self.assertEqual(message["subject"], f"Order {escape(TITLE)}")
		self.assertEqual(message["message"], f"<b>{escape(TITLE)}</b> for 3")
		self.assertNotIn('"', message["message"])
		self.assertEqual(
			(message["display"], message["indicator"], message["alert_seconds"]), ("Sticky", "green", 9)
		)
		self.assertEqual((message["doctype"], message["docname"], message["event"]), (ORDER, doc.name, "New"))
		self.assertEqual(message["fields"], {"title": TITLE, "qty": 3})
		self.assertEqual(message["actor"], "Administrator")
		self.assertTrue(frappe.utils.get_datetime(message["sent_at"]))

	def test_deliveries_wait_for_the_commit(self):
		self.to_reader(event="New")
		with RealtimeListener() as listener:
			with self.action() as insert:
				new_order().insert()
			self.assertEqual(len(insert.sent), 1, "queued for after the commit")
			self.assertTrue(all(s.message["rule"] for s in insert.sent))
			self.assertEqual(listener.received(quiet=0.3), [], "nothing is published before the commit")

	def test_notification_log_display_creates_a_notification_log(self):
		self.to_reader(event="New", display="Notification Log", subject="New order {{ doc.title }}")
		with self.action() as insert:
			doc = new_order(title="Bikes").insert()
		self.assertEqual(insert.users(), [self.reader])
		frappe.db.before_commit.run()  # the rows are written as the commit begins (test_bell.py)
		logs = frappe.get_all(
			"Notification Log",
			filters={"document_type": ORDER, "document_name": doc.name},
			fields=["for_user", "subject", "type"],
		)
		self.assertEqual(len(logs), 1)
		self.assertEqual((logs[0].for_user, logs[0].subject), (self.reader, "New order Bikes"))

	def test_other_displays_create_no_notification_log(self):
		self.to_reader(event="New", display="Alert")
		doc = new_order().insert()
		self.assertFalse(frappe.db.exists("Notification Log", {"document_name": doc.name}))

	def test_document_viewers_go_to_the_doc_room(self):
		self.enterContext(make_rule([{"audience_type": "Document Viewers"}], event="Save"))
		doc = new_order().insert()
		with self.action() as save:
			doc.qty = 2
			doc.save()
		[sent] = save.sent
		self.assertEqual(sent.room, f"doc:{ORDER}/{doc.name}")
		self.assertIsNone(sent.user)

	def test_redis_commit_publishes_once_to_the_user_room(self):
		rule = self.to_reader(event="New", commit=True)
		with RealtimeListener() as listener:
			doc = new_order().insert()
			try:
				frappe.db.commit()
				received = listener.received(rule=rule.name)
			finally:
				purge_order(doc.name)
				frappe.db.commit()
		self.assertEqual(len(received), 1)
		self.assertEqual((received[0].room, received[0].event), (f"user:{self.reader}", "rt_studio"))
		self.assertEqual(received[0].message["docname"], doc.name)
		self.assertEqual(set(received[0].message), WIRE_KEYS)

	def test_redis_ten_rules_firing_on_one_save_cost_the_round_trips_of_one(self):
		"""The save path's fixed costs are paid once per save, not per rule: the rules index, the
		user's record, the mutes with the preferences, the numbering, the inbox INSERT, the
		publish and the trace. Ten rules that each deliver cost what one costs."""
		from contextlib import ExitStack

		from rt_studio.delivery.inbox import DOCTYPE as INBOX
		from rt_studio.tests.counting import RoundTrips
		from rt_studio.tests.factories import new_request

		def save_cost(rules: int) -> tuple[int, int, int]:
			with ExitStack() as stack:
				for i in range(rules):
					stack.enter_context(
						make_rule(
							[{"audience_type": "User", "user": self.reader}],
							event="Save",
							subject=f"{i}: {{{{ doc.title }}}} ({{{{ doc.qty }}}})",
							commit=True,
						)
					)
				doc = new_order().insert()
				frappe.db.commit()
				counts = RoundTrips()
				counts.install()
				try:
					for qty in (2, 3):  # the first save after the rules changed rebuilds the index
						new_request()
						frappe.get_hooks()  # what every request has read before it saves a document
						doc.reload()
						doc.qty = qty
						with counts.counting():
							doc.save()
							frappe.db.commit()
					kept = frappe.db.count(INBOX, {"reference_name": doc.name, "user": self.reader})
				finally:
					counts.remove()
					frappe.db.rollback()
					frappe.db.delete(INBOX, {"reference_name": doc.name})
					purge_order(doc.name)
					frappe.db.commit()
			return counts.queries, counts.redis, kept

		none, one, ten = save_cost(0), save_cost(1), save_cost(10)
		self.assertEqual((one[2], ten[2]), (2, 20))  # each rule delivered on each save
		self.assertEqual(ten[:2], one[:2])
		# over a save without rules: the recipient's record and the inbox INSERT; a round trip each
		# for the recipient's roles with the mutes and preferences, the numbering, the publish and
		# the trace
		self.assertEqual((ten[0] - none[0], ten[1] - none[1]), (2, 4))

	def test_redis_rollback_publishes_nothing(self):
		rule = self.to_reader(event="New", commit=True)
		with RealtimeListener() as listener:
			new_order().insert()
			frappe.db.rollback()
			frappe.db.commit()
			self.assertEqual(listener.received(rule=rule.name), [])

	def test_redis_rollback_earlier_in_the_request_does_not_swallow_later_work(self):
		rule = self.to_reader(event="New", commit=True)
		with RealtimeListener() as listener:
			first = new_order(title="rolled back").insert()
			frappe.db.rollback()
			second = new_order(title="kept").insert()
			try:
				frappe.db.commit()
				received = listener.received(rule=rule.name)
			finally:
				purge_order(second.name)
				frappe.db.commit()
		self.assertEqual([s.message["docname"] for s in received], [second.name])
		self.assertNotEqual(first.name, second.name)

	def test_redis_a_large_audience_is_delivered_by_a_job_in_a_real_worker(self):
		from unittest.mock import patch

		import rt_studio.save.handler as handler

		rule = self.to_reader(event="New", subject="Order {{ doc.title }}", commit=True)
		with RealtimeListener() as listener:
			with patch.object(handler, "LARGE_AUDIENCE", 0), self.action() as insert:
				doc = new_order(title="big", items=[{"user": self.reader, "qty": 2}]).insert()
			# the save queued nothing itself: a job, enqueued for after the commit, delivers
			self.assertEqual(insert.sent, [])
			try:
				frappe.db.commit()
				log = run_background_jobs("short")
				received = listener.received(rule=rule.name, count=1)
			finally:
				purge_order(doc.name)
				frappe.db.commit()
		self.assertEqual(
			[(s.room, s.message["subject"], s.message["docname"]) for s in received],
			[(f"user:{self.reader}", "Order big", doc.name)],
			log,
		)
