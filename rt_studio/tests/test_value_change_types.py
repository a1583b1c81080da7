"""Value Change on a site: From and To Value compare as the field's type, "(empty)" means
no value, and a value the field cannot hold is refused when the rule is saved."""

import frappe

from rt_studio.tests.factories import ORDER, TESTER, RTTestCase, make_rule, make_users, new_order


class TestTypedValueChange(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def watch(self, field: str, document_type: str = ORDER, **fields):
		return self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": self.reader}],
				event="Value Change",
				value_changed=field,
				document_type=document_type,
				**fields,
			)
		)

	def test_an_int_matches_however_the_number_is_written(self):
		rule = self.watch("qty", from_value="1.0", to_value="2.00")
		doc = new_order(qty=1).insert()
		with self.action() as save:
			doc.qty = 2
			doc.save()
		self.assertEqual(save.rules(), {rule.name: 1})

	def test_a_child_row_field_saves_and_compares_as_its_type(self):
		rule = self.watch("items.qty", to_value="3.0")
		doc = new_order().insert()
		with self.action() as save:
			doc.append("items", {"user": self.reader, "qty": 3})
			doc.save()
		self.assertEqual(save.rules(), {rule.name: 1})
		with self.assertRaises(frappe.ValidationError):
			self.watch("items.qty", to_value="three")

	def test_a_date_matches_as_a_date_and_empty_means_cleared(self):
		set_to = self.watch("date", document_type="ToDo", to_value="2024-05-31")
		cleared = self.watch("date", document_type="ToDo", from_value="2024-05-31", to_value="(empty)")
		todo = frappe.get_doc(
			{"doctype": "ToDo", "description": "typed", "allocated_to": self.reader}
		).insert()
		with self.action() as first:
			todo.date = "2024-05-31"
			todo.save()
		self.assertEqual(first.rules(), {set_to.name: 1})
		with self.action() as second:
			todo.date = None
			todo.save()
		self.assertEqual(second.rules(), {cleared.name: 1})

	def test_a_value_the_field_cannot_hold_is_refused_on_save(self):
		for field, fields, text in (
			("qty", {"to_value": "two"}, "'two' is not a number"),
			(
				"date",
				{"from_value": "31-05-2024", "document_type": "ToDo"},
				"is not a date: write it as 2024-05-31",
			),
		):
			with self.subTest(field), self.assertRaises(frappe.ValidationError) as raised:
				self.watch(field, **fields)
			self.assertIn(text, str(raised.exception).replace("&#x27;", "'").replace("&apos;", "'"))
