"""Frappe's Notifications become disabled Realtime Rules: one of each event, and what is not carried."""

import frappe

from rt_studio import api
from rt_studio.engine.rules import parse_rule
from rt_studio.tests.factories import (
	ORDER,
	RULE_PREFIX,
	TESTER,
	RTTestCase,
	make_users,
	new_order,
	unique,
)


class TestConvertNotification(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def notification(self, event="New", recipients=None, **fields):
		"""A disabled Notification on RT Test Order (rolled back with the test)."""
		name = unique(f"{RULE_PREFIX}notification")  # the rule takes its name: swept like test rules
		return frappe.get_doc(
			{
				"doctype": "Notification",
				"name": name,
				"subject": "{{ doc.title }} needs you",
				"document_type": ORDER,
				"event": event,
				"channel": "System Notification",
				"enabled": 0,
				"message": "<p>{{ doc.title }}: {{ doc.qty }}</p>",
				"recipients": recipients
				if recipients is not None
				else [{"receiver_by_document_field": "owner_user"}],
				**fields,
			}
		).insert()

	def convert(self, notification) -> tuple:
		result = api.convert_notification(notification.name)
		return frappe.get_doc("Realtime Rule", result["rule"]), result["not_carried"]

	def test_one_notification_of_each_event(self):
		kinds = {
			"New": {},
			"Save": {},
			"Submit": {},
			"Cancel": {},
			"Days Before": {"date_changed": "due_date", "days_in_advance": 2},
			"Days After": {"date_changed": "starts_at", "days_in_advance": 1},
			"Value Change": {"value_changed": "status"},
			"Method": {"method": "validate"},
		}
		for event, fields in kinds.items():
			with self.subTest(event=event):
				rule, _not_carried = self.convert(self.notification(event, **fields))
				self.assertEqual((rule.event, rule.enabled, rule.document_type), (event, 0, ORDER))
				for field, value in fields.items():
					self.assertEqual(rule.get(field), value)
				self.assertEqual(
					[(row.audience_type, row.user_field) for row in rule.audience],
					[("User Field", "owner_user")],
				)
				self.assertEqual(
					(rule.subject, rule.message),
					("{{ doc.title }} needs you", "<p>{{ doc.title }}: {{ doc.qty }}</p>"),
				)
				self.assertEqual(parse_rule(rule.as_dict())[1], [])

	def test_recipients_become_audience_rows(self):
		notification = self.notification(
			condition="doc.qty > 2",
			send_to_all_assignees=1,
			recipients=[
				{"receiver_by_document_field": "owner"},
				{"receiver_by_document_field": "user,items"},
				{"receiver_by_role": TESTER, "condition": "doc.status == 'Open'"},
				{"receiver_by_document_field": "title", "cc": "boss@example.com"},
			],
		)
		rule, not_carried = self.convert(notification)
		self.assertEqual(
			[(r.audience_type, r.user_field, r.role, r.condition) for r in rule.audience],
			[
				("Owner", None, None, None),
				("User Field", "items.user", None, None),
				("Role", None, TESTER, "doc.status == 'Open'"),
				("User Field", "title", None, None),
				("Assignees", None, None, None),
			],
		)
		self.assertEqual(
			(rule.condition, rule.display, rule.exclude_actor), ("doc.qty > 2", "Notification Log", 0)
		)
		self.assertIn("Recipient 4: CC and BCC: realtime messages go to users, not to addresses", not_carried)
		self.assertIn(
			"Recipient 4: title holds email addresses: only addresses that are users of this site get the message",
			not_carried,
		)

	def test_what_belongs_to_email_is_listed(self):
		notification = self.notification(
			"Save",
			channel="Email",
			attach_print=1,
			set_property_after_alert="remarks",
			property_value="notified",
			message_type="Markdown",
		)
		rule, not_carried = self.convert(notification)
		self.assertEqual(rule.display, "Alert")
		for text in (
			"Attach Print: realtime messages carry no attachments",
			"Set Property After Alert: a rule never changes the document",
			"Channel Email: the rule shows a message in the desk instead",
			"Message Type Markdown: the rule's message is HTML, Markdown is shown as written",
		):
			self.assertIn(text, not_carried)
		self.assertTrue(
			any(t.startswith("Save: a Notification's Save also fires on insert") for t in not_carried)
		)

	def test_a_condition_the_sandbox_refuses_is_dropped_and_said(self):
		# Notification accepts it; a rule's budget refuses building two million characters
		notification = self.notification(condition="('x' * 2000000).startswith('x')")
		rule, not_carried = self.convert(notification)
		self.assertFalse(rule.condition)
		self.assertTrue(any(t.startswith("Condition, not carried:") for t in not_carried), not_carried)

	def test_the_converted_rule_sends_what_the_notification_would(self):
		rule, _not_carried = self.convert(self.notification(condition="doc.qty > 2"))
		rule.enabled = 1
		rule.save()
		with self.action() as small:
			new_order(qty=1, owner_user=self.reader).insert()
		self.assertEqual(small.rules(), {})
		with self.action() as big:
			new_order(title="Crates", qty=5, owner_user=self.reader).insert()
		self.assertEqual(big.users(rule.name), [self.reader])
		self.assertEqual(big.sent[0].message["subject"], "Crates needs you")

	def test_a_second_conversion_gets_its_own_name(self):
		notification = self.notification()
		first, _ = self.convert(notification)
		second, _ = self.convert(notification)
		self.assertEqual(second.name, f"{first.name} (2)")

	def test_a_custom_event_is_refused(self):
		notification = self.notification("New")
		notification.db_set("event", "Custom")
		with self.assertRaises(frappe.ValidationError) as caught:
			api.convert_notification(notification.name)
		self.assertIn("which a Realtime Rule does not have", str(caught.exception))
