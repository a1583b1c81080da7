"""Backtest on the site: the last days rebuilt from creations, Version records and deleted
documents, evaluated as live firing would, and nothing sent, traced or counted."""

import json
from contextlib import contextmanager
from datetime import timedelta

import frappe

from rt_studio import api
from rt_studio.delivery import trace
from rt_studio.desk import backtest as history
from rt_studio.tests.factories import (
	ORDER,
	ReaderAndOutsiderTestCase,
	make_rule,
	new_order,
	queued,
	unique,
)


@contextmanager
def versions_kept():
	"""Saves keep Version records, as on a live site (Frappe skips them while tests run)."""
	in_test = frappe.flags.in_test
	frappe.flags.in_test = False
	try:
		yield
	finally:
		frappe.flags.in_test = in_test


class TestBacktest(ReaderAndOutsiderTestCase):
	def setUp(self):
		super().setUp()
		#: Every order of this test has this title, and every rule's condition asks for it, so
		#: documents other tests changed in the last days do not count.
		self.title = unique("backtest")

	def rule(self, event="Save", condition=None, **fields):
		"""A disabled rule (a backtest is for before enabling) about this test's orders only."""
		audience = [{"audience_type": "User", "user": u} for u in (self.reader, self.outsider)]
		condition = f"doc.title == '{self.title}'" + (f" and ({condition})" if condition else "")
		return self.enterContext(make_rule(audience, event=event, condition=condition, enabled=0, **fields))

	def order(self, **fields):
		return new_order(title=self.title, **fields).insert()

	def test_value_change_replays_version_records_with_typed_values(self):
		rule = self.rule(
			"Value Change",
			value_changed="due_date",
			to_value="2031-02-07",
			subject="{{ doc.title }} moved from {{ doc_before_save.due_date }}",
		)
		doc = self.order(due_date="2031-01-05", qty=1200)
		with versions_kept():
			doc.due_date = "2031-02-07"  # the Version keeps 05-01-2031 -> 07-02-2031 (site format)
			doc.save()
			doc.qty = 1500
			doc.save()
			doc.due_date = "2031-03-01"
			doc.save()
		report = api.backtest(rule.name, days=1)
		self.assertEqual((report["events"], report["fired"], report["deliveries"]), (3, 1, 1))
		self.assertEqual(report["per_recipient"], [{"recipient": self.reader, "deliveries": 1}])
		self.assertEqual(report["verdicts"], {"deliver": 1, "no read permission": 1})
		[sample] = report["samples"]
		self.assertEqual(sample["subject"], f"{self.title} moved from 2031-01-05")
		reasons = {r["reason"] for r in report["not_fired"]}
		self.assertIn("due_date did not change", reasons)
		self.assertTrue(any(r.startswith("due_date changed to '2031-03-01'") for r in reasons), reasons)
		self.assertTrue(report["complete"])

	def test_new_replays_each_document_as_it_was_created(self):
		rule = self.rule("New", condition="doc.qty < 10", subject="{{ doc.qty }}")
		small = self.order(qty=3)
		with versions_kept():
			small.qty = 50  # later saves are undone: at creation it had qty 3
			small.save()
		self.order(qty=99)
		report = api.backtest(rule.name, days=7)
		self.assertEqual((report["events"], report["fired"]), (2, 1))
		self.assertEqual(report["samples"][0]["subject"], "3")
		self.assertEqual(report["samples"][0]["docname"], small.name)

	def test_submit_cancel_and_save_are_told_apart(self):
		rules = {event: self.rule(event) for event in ("Save", "Submit", "Cancel")}
		doc = self.order()
		with versions_kept():
			doc.qty = 2
			doc.save()
			doc.submit()
			doc.cancel()
		counts = {event: api.backtest(rule.name, days=1)["fired"] for event, rule in rules.items()}
		self.assertEqual(counts, {"Save": 1, "Submit": 1, "Cancel": 1})

	def test_delete_replays_deleted_documents(self):
		rule = self.rule("Delete", subject="gone: {{ doc.title }}")
		doc = self.order()
		frappe.delete_doc(ORDER, doc.name)
		report = api.backtest(rule.name, days=1)
		self.assertEqual(report["fired"], 1)
		self.assertEqual(report["samples"][0]["subject"], f"gone: {self.title}")

	def test_a_time_rule_replays_what_came_due_and_says_how(self):
		today = frappe.utils.getdate()
		rule = self.rule("Days After", date_changed="due_date", days_in_advance=1)
		self.order(due_date=frappe.utils.add_days(today, -2))  # due yesterday at 00:00
		self.order(due_date=frappe.utils.add_days(today, 3))  # not due yet
		report = api.backtest(rule.name, days=7)
		self.assertEqual((report["events"], report["fired"]), (1, 1))
		self.assertEqual(
			report["notes"], ["Days After: replayed from the documents' current due_date and values"]
		)

	def test_method_events_cannot_be_replayed(self):
		rule = self.rule("Method", method="validate")
		self.order()
		report = api.backtest(rule.name, days=7)
		self.assertEqual(report["events"], 0)
		self.assertEqual(
			report["notes"], ["Method events leave no record of which methods ran: nothing to replay"]
		)

	def test_a_backtest_sends_traces_and_counts_nothing(self):
		rule = self.rule("New", rate_limit_count=1, rate_limit_seconds=3600, display="Notification Log")
		for _i in range(3):
			self.order()
		waiting, logs = len(queued()), frappe.db.count("Notification Log")
		trace.clear(rule.name)
		report = api.backtest(rule.name, days=1)
		self.assertEqual(report["verdicts"], {"deliver": 1, "batched": 2, "no read permission": 3})
		self.assertEqual((report["deliveries"], report["summaries"]), (2, 1))
		self.assertEqual(len(queued()), waiting, "nothing queued for publishing")
		self.assertEqual(frappe.db.count("Notification Log"), logs, "no Notification Log")
		self.assertEqual(trace.read(rule.name), [], "no trace")
		self.assertEqual(frappe.cache.keys(frappe.cache.make_key(f"rt_studio:rate:rule:{rule.name}:*")), [])
		self.assertEqual(frappe.get_all("Realtime Rule Due Log", {"rule": rule.name}), [])

	def test_days_are_bounded(self):
		rule = self.rule()
		with self.assertRaises(frappe.ValidationError) as caught:
			api.backtest(rule.name, days=400)
		self.assertIn("Backtest 400 days: choose 1 to 31", str(caught.exception))

	def test_more_changed_documents_than_events_replayed_keeps_the_latest_and_says_so(self):
		"""1,100 orders changed two hours ago, then two changed just now: the two are replayed
		(not an arbitrary 1,001 documents), and the result says where it was cut."""
		rule = self.rule(condition="doc.qty == 5")
		earlier = frappe.utils.now_datetime() - timedelta(hours=2)
		names = [f"rt-bt-{frappe.generate_hash(length=12)}" for _ in range(history.MAX_EVENTS + 100)]
		frappe.db.bulk_insert(
			ORDER,
			["name", "creation", "modified", "owner", "modified_by", "title", "status", "qty"],
			[(n, earlier, earlier, "Administrator", "Administrator", self.title, "Draft", 2) for n in names],
		)
		change = json.dumps({"changed": [["qty", "1", "2"]]})
		frappe.db.bulk_insert(
			"Version",
			["name", "creation", "modified", "owner", "modified_by", "ref_doctype", "docname", "data"],
			[
				(frappe.generate_hash(length=16), at, at, "Administrator", "Administrator", ORDER, n, change)
				for i, n in enumerate(names)
				for at in [earlier + timedelta(seconds=i)]
			],
		)
		newest = [self.order(), self.order()]
		with versions_kept():
			for doc in newest:
				doc.qty = 5
				doc.save()
		report = api.backtest(rule.name, days=1)
		self.assertEqual((report["events"], report["fired"]), (history.MAX_EVENTS, 2))
		self.assertEqual({s["docname"] for s in report["samples"]}, {doc.name for doc in newest})
		cut = report["cut"]
		self.assertEqual((cut["limit"], cut["replayed"]), (history.MAX_EVENTS, history.MAX_EVENTS))
		self.assertGreater(cut["from"], earlier)
		self.assertFalse(report["complete"])
		self.assertIn(f"More than {history.MAX_EVENTS} events in the period", " ".join(report["notes"]))

	def test_a_period_replayed_whole_is_not_cut(self):
		rule = self.rule()
		doc = self.order()
		with versions_kept():
			doc.qty = 2
			doc.save()
		report = api.backtest(rule.name, days=1)
		self.assertEqual((report["fired"], report["cut"], report["complete"]), (1, None, True))
