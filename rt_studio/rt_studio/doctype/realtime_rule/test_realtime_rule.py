# Copyright (c) 2026, RT Studio contributors
# See license.txt

"""Rule validation and the cache on a real site (bench run-tests)."""

import frappe

from rt_studio import rule_cache as cache
from rt_studio.tests.factories import ORDER, RTTestCase, make_rule

# Rules link to these; the test runner must not create Frappe's own test records for them.
test_ignore = ["DocType", "Role", "User", "Realtime Channel"]


class TestRealtimeRule(RTTestCase):
	def assert_refused(self, field: str, **fields):
		with self.assertRaises(frappe.ValidationError) as raised:
			with make_rule(**fields):
				pass
		self.assertIn(field, str(raised.exception))

	def test_mistakes_are_refused_naming_the_field(self):
		cases = {
			"Document Type": {"document_type": "No Such DocType"},
			"event": {"event": "Submit", "document_type": "Note"},
			"value_changed": {"event": "Value Change", "value_changed": "colour"},
			"fields": {"fields": "title, colour"},
			"audience row 1: user_field": {
				"audience": [{"audience_type": "User Field", "user_field": "colour"}]
			},
			"audience row 2: role": {"audience": [{"audience_type": "Owner"}, {"audience_type": "Role"}]},
			"condition": {"condition": "doc.qty >"},
			"subject": {"subject": "{{ doc.title "},
		}
		for field, fields in cases.items():
			with self.subTest(field):
				self.assert_refused(field, **fields)

	def test_condition_with_a_misspelt_name_is_refused(self):
		self.assert_refused("condition", condition="dco.qty > 1")

	def test_child_table_path_must_name_a_table(self):
		self.assert_refused(
			"audience row 1: user_field",
			audience=[{"audience_type": "User Field", "user_field": "title.user"}],
		)
		self.assert_refused(
			"audience row 1: user_field",
			audience=[{"audience_type": "User Field", "user_field": "items.colour"}],
		)

	def test_rt_studio_own_doctypes_and_child_tables_cannot_trigger(self):
		self.assert_refused("document_type", document_type="Error Log", event="New")
		self.assert_refused("document_type", document_type="RT Test Order Item", event="New")

	def test_valid_rule_is_matched_at_once(self):
		rule = self.enterContext(
			make_rule(
				[{"audience_type": "User Field", "user_field": "items.user"}],
				event="Value Change",
				value_changed="status",
				condition="doc.qty > 1 and doc_before_save",
				fields="title, qty",
			)
		)
		index = cache.get_index()
		self.assertIn(rule.name, index.rules)
		self.assertEqual([r.name for r in index.match(ORDER, ("Value Change",))], [rule.name])
