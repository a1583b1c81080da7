"""Strict, friendly input on a site: validate, the form's live check and import answer every
bad file or field with problem lines, never a traceback or a server error; escaping and
Frappe's own socket events stay out of reach."""

import json

import frappe
from markupsafe import escape

from rt_studio import api
from rt_studio.tests.factories import (
	ORDER,
	RULE_PREFIX,
	TESTER,
	RTTestCase,
	make_channel,
	make_rule,
	make_users,
	unique,
)


def rule(**fields) -> dict:
	name = fields.pop("rule_name", None) or unique(RULE_PREFIX + "file")
	return {
		"doctype": "Realtime Rule",
		"rule_name": name,
		"document_type": ORDER,
		"event": "Save",
		"audience": [{"audience_type": "Owner"}],
		"subject": "{{ doc.name }}",
		**fields,
	}


class TestRuleFiles(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def problems(self, documents) -> list[str]:
		"""validate_rules' answer as `RULE: field: problem` lines (it must not raise)."""
		answer = api.validate_rules(documents if isinstance(documents, str) else json.dumps(documents))
		return [
			f"{p['rule']}: {p['field']}: {p['problem']}" if p["field"] else f"{p['rule']}: {p['problem']}"
			for p in answer["problems"]
		]

	def test_every_bad_value_is_a_problem_line(self):
		twice = unique(RULE_PREFIX + "twice")
		documents = [
			rule(rule_name="m", message=7),
			rule(rule_name="inf", rate_limit_count=float("inf")),
			rule(rule_name="half", rate_limit_count=1.5),
			rule(rule_name="flag", enabled=[]),
			rule(rule_name="list", message=["a"]),
			rule(rule_name="names", condition="frappe.session.user == 'x'"),
			rule(rule_name="hostile", condition="sum(range(10**12)) > 0"),
			rule(rule_name="raw", message="{{ doc.title|safe }}"),
			rule(rule_name="hijack", event_name="msgprint"),
			rule(rule_name=twice),
			rule(rule_name=twice),
			{**rule(rule_name="typo"), "doctype": "Realtime rule"},
			{"doctype": "Realtime Channel", "channel_name": "c", "members": "someone@example.com"},
			{"doctype": "Realtime Channel", "channel_name": "r", "publish_roles": "Sales User"},
		]
		lines = self.problems(documents)
		expected = [
			"m: message: must be text, not a number",
			"inf: rate_limit_count: inf is not a whole number",
			"half: rate_limit_count: 1.5 is not a whole number",
			"flag: enabled: [] is not 0 or 1",
			"list: message: must be text, not a list",
			"names: condition: frappe.session is not available",
			"hostile: condition: stopped on an empty RT Test Order: range() of 1,000,000,000,000 numbers",
			"raw: message: |safe is not allowed",
			"hijack: event_name: 'msgprint' is one of Frappe's own socket events",
			f"{twice}: name: a second Realtime Rule of this name",
			"item 12: doctype: 'Realtime rule' is not a DocType rt-studio reads: did you mean Realtime Rule?",
			"c: members: must be a list of member rows, not text",
			"r: publish_roles: must be a list of publish role rows, not text",
		]
		self.assertEqual(len(lines), len(expected), "\n".join(lines))
		for start in expected:
			matching = [line for line in lines if line.startswith(start)]
			self.assertEqual(len(matching), 1, f"{start!r} in:\n" + "\n".join(lines))

	def test_unreadable_files_are_clear_errors(self):
		for data, text in (
			("[" * 100_000 + "]" * 100_000, "nested too deeply"),
			("{not json", "Not valid JSON"),
			("5", "Expected a list"),
			("[]", "contains no Realtime Rule"),
		):
			with self.subTest(text), self.assertRaises(frappe.ValidationError) as raised:
				api.validate_rules(data)
			self.assertIn(text, str(raised.exception))
		with_bom = "\ufeff" + json.dumps([rule()])
		self.assertEqual(api.validate_rules(with_bom)["problems"], [])

	def test_import_writes_nothing_when_one_document_is_bad(self):
		good = rule()
		with self.assertRaises(frappe.ValidationError) as raised:
			api.import_rules(json.dumps([good, rule(rule_name="bad", rate_limit_count=float("inf"))]))
		self.assertIn("rate_limit_count", str(raised.exception))
		self.assertFalse(frappe.db.exists("Realtime Rule", good["rule_name"]))

	def test_the_live_check_answers_junk_with_problems(self):
		for data, start in (
			(
				{"rule_name": "x", "audience": "Owner", "document_type": ORDER, "event": "Save"},
				"audience: must be a list",
			),
			({**rule(), "message": {"a": 1}}, "message: must be text"),
			(
				{
					**rule(),
					"message": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
				},
				"message: stopped",
			),
		):
			with self.subTest(start):
				problems = api.check_rule(json.dumps(data))
				self.assertTrue(problems)
				self.assertTrue(
					f"{problems[0]['field']}: {problems[0]['problem']}".startswith(start), problems
				)
		with self.assertRaises(frappe.ValidationError):
			api.check_rule("[1, 2")

	def test_saving_a_rule_that_switches_escaping_off_or_uses_a_frappe_event_is_refused(self):
		for fields, text in (
			({"message": "{{ doc.title|safe }}"}, "|safe is not allowed"),
			({"message": "{% autoescape false %}{{ doc.title }}{% endautoescape %}"}, "autoescape"),
			({"event_name": "list_update"}, "own socket events"),
		):
			with self.subTest(text), self.assertRaises(frappe.ValidationError) as raised:
				frappe.get_doc(rule(**fields)).insert()
			self.assertIn(text, str(raised.exception))
		with self.assertRaises(frappe.ValidationError) as raised:
			frappe.get_doc(
				{"doctype": "Realtime Channel", "channel_name": unique("rt-test-c"), "event_name": "msgprint"}
			).insert()
		self.assertIn("own socket events", str(raised.exception))

	def test_a_channel_post_cannot_use_a_frappe_event(self):
		channel = self.enterContext(make_channel([{"member_type": "User", "user": self.reader}]))
		with self.assertRaises(frappe.ValidationError) as raised:
			api.publish(channel.name, "hello", event="msgprint")
		self.assertIn("own socket events", str(raised.exception))

	def test_a_document_value_never_reaches_the_desk_unescaped(self):
		sent = self.enterContext(
			make_rule([{"audience_type": "User", "user": self.reader}], message="<b>{{ doc.title }}</b>")
		)
		doc = frappe.get_doc(
			{"doctype": ORDER, "title": "<img src=x onerror=alert(1)>", "status": "Draft", "qty": 1}
		).insert()
		with self.action() as save:
			doc.save()
		[message] = [s.message for s in save.sent if s.rule == sent.name]
		self.assertIn("<img", doc.title)  # Frappe keeps the tag (it only strips the handler)
		self.assertEqual(message["message"], f"<b>{escape(doc.title)}</b>")
		self.assertNotIn("<img", message["message"])
