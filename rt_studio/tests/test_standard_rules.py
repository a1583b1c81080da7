"""Rules an app ships, as Frappe's Notification: exported in developer mode, imported on migrate,
and on a site only enabled or disabled.

The files are written into RT Studio's own module folder (the app under test) and removed
again; a second app shipping a rule works the same way, through the same module folders.
"""

import json
import os

import frappe
from frappe.modules import scrub

from rt_studio.files import standard_rules
from rt_studio.tests.factories import (
	ORDER,
	RULE_PREFIX,
	TESTER,
	RTTestCase,
	developer_mode,
	make_rule,
	make_users,
	new_order,
	remove_shipped_rule,
	shipped_rule_folder,
	unique,
)

MODULE = "RT Studio"


class TestStandardRules(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def ship(self, name: str, modified: str, **fields) -> str:
		"""Write a rule file as an app ships it; removed after the test."""
		folder = shipped_rule_folder(name)
		os.makedirs(folder, exist_ok=True)
		self.addCleanup(remove_shipped_rule, folder)
		rule = {
			"doctype": "Realtime Rule",
			"name": name,
			"rule_name": name,
			"is_standard": 1,
			"module": MODULE,
			"enabled": 1,
			"document_type": ORDER,
			"event": "New",
			"audience": [{"audience_type": "User", "user": self.reader}],
			"subject": "shipped {{ doc.title }}",
			"modified": modified,
			**fields,
		}
		with open(os.path.join(folder, f"{scrub(name)}.json"), "w") as f:
			json.dump(rule, f)
		self.addCleanup(self.remove_rule, name)
		return name

	def remove_rule(self, name: str) -> None:
		frappe.db.rollback()
		with developer_mode():
			if frappe.db.exists("Realtime Rule", name):
				frappe.delete_doc("Realtime Rule", name, force=True)

	def sends(self, rule: str) -> list[str]:
		with self.action() as insert:
			new_order(title="Bikes").insert()
		return [s.message["subject"] for s in insert.sent if s.rule == rule]

	def test_developer_mode_writes_a_standard_rule_into_its_module_folder(self):
		name = unique(RULE_PREFIX + "export")
		self.addCleanup(remove_shipped_rule, shipped_rule_folder(name))
		with developer_mode():
			rule = self.enterContext(make_rule(rule_name=name, is_standard=1, module=MODULE))
		self.addCleanup(self.remove_rule, name)
		path = os.path.join(shipped_rule_folder(name), f"{scrub(name)}.json")
		self.assertTrue(os.path.isfile(path), path)
		with open(path) as f:
			shipped = json.load(f)
		self.assertEqual(
			(shipped["name"], shipped["module"], shipped["event"], shipped["subject"]),
			(rule.name, MODULE, "Save", "{{ doc.name }}"),
		)
		self.assertEqual([row["audience_type"] for row in shipped["audience"]], ["Owner"])
		self.assertNotIn("last_error", shipped)
		self.assertEqual(standard_rules.rule_files("rt_studio"), [path])

	def test_no_file_outside_developer_mode_and_no_new_standard_rule(self):
		name = unique(RULE_PREFIX + "no-export")
		with self.assertRaises(frappe.ValidationError) as refused:
			self.enterContext(make_rule(rule_name=name, is_standard=1, module=MODULE))
		self.assertIn("developer mode", str(refused.exception))
		self.assertFalse(os.path.exists(shipped_rule_folder(name)))

	def test_migrate_imports_a_shipped_rule_that_then_fires(self):
		name = self.ship(unique(RULE_PREFIX + "shipped"), "2026-01-01 10:00:00")
		self.assertEqual(standard_rules.sync(["rt_studio"]), [name])
		self.assertEqual(self.sends(name), ["shipped Bikes"])
		self.assertEqual(standard_rules.sync(["rt_studio"]), [], "an unchanged file is not imported again")

	def test_outside_developer_mode_a_standard_rule_is_only_enabled_or_disabled(self):
		name = self.ship(unique(RULE_PREFIX + "shipped"), "2026-01-01 10:00:00")
		standard_rules.sync(["rt_studio"])
		rule = frappe.get_doc("Realtime Rule", name)
		rule.subject = "changed on the site"
		rule.append("audience", {"audience_type": "Owner"})
		with self.assertRaises(frappe.ValidationError) as refused:
			rule.save()
		self.assertIn(name, str(refused.exception))
		self.assertIn("audience, subject", str(refused.exception))
		with self.assertRaises(frappe.ValidationError):
			frappe.delete_doc("Realtime Rule", name)

		rule = frappe.get_doc("Realtime Rule", name)
		rule.enabled = 0
		rule.save()
		self.assertEqual(self.sends(name), [])
		rule.enabled = 1
		rule.save()
		self.assertEqual(self.sends(name), ["shipped Bikes"])

	def test_an_update_of_the_app_replaces_the_rule_and_keeps_it_disabled(self):
		name = self.ship(unique(RULE_PREFIX + "shipped"), "2026-01-01 10:00:00")
		standard_rules.sync(["rt_studio"])
		frappe.db.set_value("Realtime Rule", name, "enabled", 0)  # as the form's save would
		later = str(frappe.utils.add_to_date(frappe.utils.now_datetime(), minutes=1))
		self.ship(name, later, subject="updated {{ doc.title }}")
		self.assertEqual(standard_rules.sync(["rt_studio"]), [name])
		rule = frappe.get_doc("Realtime Rule", name)
		self.assertEqual((rule.subject, rule.enabled), ("updated {{ doc.title }}", 0))
		rule.enabled = 1
		rule.save()
		self.assertEqual(self.sends(name), ["updated Bikes"])
