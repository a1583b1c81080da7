"""A broken rule never blocks the user's save: it is recorded on the rule and in the Error Log, once."""

import frappe

from rt_studio.tests.factories import (
	ORDER,
	TESTER,
	RTTestCase,
	make_rule,
	make_users,
	new_order,
	new_request,
)


def error_logs(rule: str) -> int:
	return frappe.db.count("Error Log", {"reference_doctype": "Realtime Rule", "reference_name": rule})


class TestBrokenRules(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def rule(self, **fields):
		return self.enterContext(make_rule([{"audience_type": "User", "user": self.reader}], **fields))

	def assert_broken_rule_is_recorded(self, broken_fields: dict, field: str):
		good = self.rule(subject="fine")
		broken = self.rule(**broken_fields)
		doc = new_order(qty=3).insert()
		for attempt in (1, 2):
			with self.action() as save:
				doc.qty += 1
				doc.save()
			self.assertEqual(save.rules(), {good.name: 1}, f"save {attempt}: the good rule still fires")
			self.assertEqual(
				frappe.db.get_value(ORDER, doc.name, "qty"), 3 + attempt, "the save went through"
			)
			self.assertEqual(error_logs(broken.name), 1, f"save {attempt}: one Error Log per rule and error")
		last_error = frappe.db.get_value("Realtime Rule", broken.name, "last_error")
		self.assertIn(field, last_error)
		self.assertIn("ZeroDivisionError", last_error)
		self.assertTrue(frappe.db.get_value("Realtime Rule", broken.name, "last_error_on"))
		self.assertIsNone(frappe.db.get_value("Realtime Rule", good.name, "last_error"))
		self.assertEqual(error_logs(good.name), 0)

	def test_condition_that_raises(self):
		self.assert_broken_rule_is_recorded({"condition": "1/0"}, "condition")

	def test_template_that_raises(self):
		self.assert_broken_rule_is_recorded({"subject": "{{ doc.qty / 0 }}"}, "subject")

	def test_error_first_met_in_a_rolled_back_transaction_is_recorded_next_time(self):
		broken = self.enterContext(
			make_rule([{"audience_type": "User", "user": self.reader}], condition="1/0", commit=True)
		)
		new_order().insert().save()
		self.assertEqual(error_logs(broken.name), 1)
		frappe.db.rollback()  # the user's request failed later on
		self.assertIsNone(frappe.db.get_value("Realtime Rule", broken.name, "last_error"))
		self.assertEqual(error_logs(broken.name), 1, "Frappe keeps Error Logs through a rollback")
		new_request()
		new_order().insert().save()
		self.assertIn("condition", frappe.db.get_value("Realtime Rule", broken.name, "last_error"))
		self.assertEqual(error_logs(broken.name), 1)

	def test_editing_the_rule_clears_its_error(self):
		broken = self.rule(condition="doc.qty / 0")
		doc = new_order().insert()
		doc.save()
		broken.reload()
		self.assertTrue(broken.last_error)
		broken.condition = "doc.qty > 0"
		broken.save()
		self.assertIsNone(frappe.db.get_value("Realtime Rule", broken.name, "last_error"))
