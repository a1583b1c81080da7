"""The recipient's language on a real site: one rule sends "New ToDo" to a user whose Language is
English (the site's) and Frappe's translation, from a Translation record, to a user whose Language is
German; Preview shows each recipient the text they would get.

These tests commit (the inbox is written just before a commit) and remove what they committed.
"""

import frappe

from rt_studio.api import preview
from rt_studio.tests.factories import RealtimeListener, make_order
from rt_studio.tests.test_inbox import InboxTestCase

GERMAN = "Neue Aufgabe (RT-Test)"


class TestRecipientLanguage(InboxTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		translation = frappe.get_doc(
			{"doctype": "Translation", "language": "de", "source_text": "New ToDo", "translated_text": GERMAN}
		).insert(ignore_permissions=True)
		frappe.db.commit()
		cls.addClassCleanup(cls.remove, "Translation", translation.name)
		cls.set_language(cls.reader, "de")
		cls.addClassCleanup(cls.set_language, cls.reader, None)

	@staticmethod
	def remove(doctype, name):
		frappe.db.rollback()
		frappe.delete_doc(doctype, name, ignore_permissions=True, force=True)
		frappe.db.commit()

	@staticmethod
	def set_language(user, language):
		frappe.db.rollback()
		doc = frappe.get_doc("User", user)
		doc.language = language
		doc.save(ignore_permissions=True)
		frappe.db.commit()

	def test_one_rule_sends_each_recipient_their_language(self):
		self.assertNotEqual(frappe.get_system_settings("language"), "de")
		rule = self.rule(subject='{{ _("New ToDo") }}: {{ doc.name }}')
		order = self.enterContext(make_order(commit=True))
		with RealtimeListener() as listener:
			self.deliver(order)
			sent = {s.user: s.message["subject"] for s in listener.received(rule=rule.name, count=2)}
		self.assertEqual(
			sent, {self.reader: f"{GERMAN}: {order.name}", self.other: f"New ToDo: {order.name}"}
		)
		# the inbox keeps what each one got
		kept = dict(
			frappe.get_all(
				"Realtime Inbox Item", filters={"rule": rule.name}, fields=["user", "subject"], as_list=True
			)
		)
		self.assertEqual(kept, sent)

	def test_preview_shows_the_text_in_each_recipients_language(self):
		rule = self.rule(subject='{{ _("New ToDo") }}')
		order = self.enterContext(make_order(commit=True))
		result = preview(rule.name, order.name)
		texts = {r["user"]: r["subject"] for r in result["recipients"]}
		self.assertEqual(texts, {self.reader: GERMAN, self.other: "New ToDo"})
