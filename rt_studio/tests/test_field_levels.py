"""Field-level permissions hold in the text too: a permlevel-1 field in a rule's subject or
message reaches only recipients whose roles may read that level."""

import frappe

from rt_studio import api
from rt_studio.tests.factories import (
	BYSTANDER,
	ORDER,
	SECRET_READER,
	TESTER,
	RTTestCase,
	make_rule,
	make_users,
	new_order,
)


class TestFieldLevelsInTexts(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(
			make_users(
				{
					"reader": {"roles": [TESTER]},
					"secret": {"roles": [TESTER, SECRET_READER]},
					"shared": {"roles": [BYSTANDER]},
				}
			)
		)

	def setUp(self):
		super().setUp()
		self.doc = new_order(title="Bikes", secret="unit price 4.20").insert()
		frappe.share.add(ORDER, self.doc.name, self.users["shared"], read=1)
		self.rule = self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": email} for email in self.users.values()],
				subject="{{ doc.secret }}",
				message="{{ doc.title }}: {{ doc.secret }} {{ doc }}",
			)
		)

	def label(self, email: str) -> str:
		return {value: key for key, value in self.users.items()}[email]

	def test_each_recipient_reads_only_the_levels_its_roles_may_read(self):
		with self.action() as save:
			self.doc.qty += 1
			self.doc.save()
		sent = {self.label(s.user): s.message for s in save.sent if s.rule == self.rule.name}
		self.assertEqual(set(sent), {"reader", "secret", "shared"})
		self.assertEqual(sent["secret"]["subject"], "unit price 4.20")
		self.assertTrue(sent["secret"]["message"].startswith("Bikes: unit price 4.20 "))
		for label in ("reader", "shared"):
			self.assertEqual(sent[label]["subject"], "")
			self.assertTrue(sent[label]["message"].startswith("Bikes:  "))
			self.assertNotIn("unit price", sent[label]["message"])
			self.assertNotIn("secret", sent[label]["message"])  # not even the field's name in {{ doc }}

	def test_preview_shows_what_each_recipient_would_read(self):
		recipients = api.preview(self.rule.name, self.doc.name)["recipients"]
		subjects = {self.label(r["user"]): r["subject"] for r in recipients}
		self.assertEqual(subjects, {"reader": "", "secret": "unit price 4.20", "shared": ""})
