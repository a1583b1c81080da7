"""Each rule event fires on the right Frappe action, exactly once per user action."""

from contextlib import ExitStack

import frappe

from rt_studio.engine.events import DOCUMENT_EVENTS
from rt_studio.tests.factories import ORDER, TESTER, RTTestCase, make_rule, make_users, new_order


class TestRuleEvents(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def rule_per_event(self, **fields) -> dict[str, str]:
		"""One rule for every event label, all sending to the reader: {label: rule name}."""
		stack = self.enterContext(ExitStack())
		names = {}
		for label in DOCUMENT_EVENTS:
			extra = {"value_changed": "status"} if label == "Value Change" else {}
			rule = stack.enter_context(
				make_rule([{"audience_type": "User", "user": self.reader}], event=label, **extra, **fields)
			)
			names[label] = rule.name
		return names

	def test_insert_fires_new_once_and_not_save(self):
		rules = self.rule_per_event()
		with self.action() as insert:
			doc = new_order().insert()
		self.assertEqual(insert.rules(), {rules["New"]: 1})
		message = insert.sent[0].message
		self.assertEqual((message["event"], message["docname"]), ("New", doc.name))
		self.assertEqual(insert.sent[0].user, self.reader)

	def test_save_fires_save_and_value_change_once_each(self):
		rules = self.rule_per_event()
		with self.action():
			doc = new_order().insert()
		with self.action() as save:
			doc.status = "Open"
			doc.save()
		self.assertEqual(save.rules(), {rules["Save"]: 1, rules["Value Change"]: 1})
		with self.action() as save_without_change:
			doc.qty = 7
			doc.save()
		self.assertEqual(save_without_change.rules(), {rules["Save"]: 1})

	def test_submit_fires_submit_once_and_not_save(self):
		rules = self.rule_per_event()
		with self.action():
			doc = new_order().insert()
		with self.action() as submit:
			doc.submit()
		self.assertEqual(submit.rules(), {rules["Submit"]: 1})
		self.assertEqual(submit.sent[0].message["event"], "Submit")

	def test_submit_that_changes_the_watched_field_is_also_a_value_change(self):
		rules = self.rule_per_event()
		with self.action():
			doc = new_order().insert()
		with self.action() as submit:
			doc.status = "Approved"
			doc.submit()
		self.assertEqual(submit.rules(), {rules["Submit"]: 1, rules["Value Change"]: 1})

	def test_insert_as_submitted_fires_new_and_submit(self):
		rules = self.rule_per_event()
		with self.action() as insert:
			new_order(docstatus=1).insert()
		self.assertEqual(insert.rules(), {rules["New"]: 1, rules["Submit"]: 1})

	def test_update_after_submit(self):
		rules = self.rule_per_event()
		with self.action():
			doc = new_order().insert()
			doc.submit()
		with self.action() as update:
			doc.remarks = "delivered to the back door"
			doc.save()
		self.assertEqual(update.rules(), {rules["Update After Submit"]: 1})

	def test_cancel(self):
		rules = self.rule_per_event()
		with self.action():
			doc = new_order().insert()
			doc.submit()
		with self.action() as cancel:
			doc.cancel()
		self.assertEqual(cancel.rules(), {rules["Cancel"]: 1})

	def test_delete(self):
		rules = self.rule_per_event()
		with self.action():
			doc = new_order().insert()
		with self.action() as delete:
			frappe.delete_doc(ORDER, doc.name)
		self.assertEqual(delete.rules(), {rules["Delete"]: 1})
		self.assertEqual(delete.sent[0].message["docname"], doc.name)

	def test_value_change_from_and_to(self):
		audience = [{"audience_type": "User", "user": self.reader}]
		watch = {"event": "Value Change", "value_changed": "status"}
		any_change = self.enterContext(make_rule(audience, **watch)).name
		approved = self.enterContext(
			make_rule(audience, from_value="Open", to_value="Approved", **watch)
		).name
		with self.action():
			doc = new_order().insert()
		fired = []
		for status in ("Open", "Approved", "Closed"):
			with self.action() as save:
				doc.status = status
				doc.save()
			fired.append(save.rules())
		self.assertEqual(fired, [{any_change: 1}, {any_change: 1, approved: 1}, {any_change: 1}])

	def test_value_change_through_db_set(self):
		rules = self.rule_per_event()
		with self.action():
			name = new_order().insert().name
		with self.action() as db_set:
			frappe.get_doc(ORDER, name).db_set("status", "Open")
		self.assertEqual(db_set.rules(), {rules["Value Change"]: 1})
		self.assertEqual(db_set.sent[0].message["event"], "Value Change")
		with self.action() as same_value:
			frappe.get_doc(ORDER, name).db_set("status", "Open")
		self.assertEqual(same_value.rules(), {})

	def test_rules_of_other_doctypes_do_not_fire(self):
		self.enterContext(make_rule(event="New", document_type="Note"))
		rules = self.rule_per_event()
		with self.action() as insert:
			new_order().insert()
		self.assertEqual(set(insert.rules()), {rules["New"]})

	def test_a_rule_that_did_not_fire_fires_at_a_second_save_in_the_same_transaction(self):
		approved = self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": self.reader}],
				event="Save",
				condition="doc.status == 'Approved'",
			)
		)
		changed = self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": self.reader}],
				event="Value Change",
				value_changed="status",
				to_value="Closed",
			)
		)
		with self.action():
			doc = new_order().insert()
		# one request (one transaction) saves three times, as a script or an API client may
		with self.action() as request:
			for status in ("Open", "Approved", "Closed", "Approved"):
				doc.status = status
				doc.save()
		# each rule fires once, at the save where it first held, and not again in the transaction
		self.assertEqual(request.rules(), {approved.name: 1, changed.name: 1})
		self.assertEqual([s.rule for s in request.sent], [approved.name, changed.name])
