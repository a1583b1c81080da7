"""Rules that cannot hurt the site: the hostile corpus saved on a real site.

Every rule of hostile_rules.json (the pytest suite runs the same file through the CLI and the
engine) is first saved as a System Manager would save it: refused within a second, with a
message naming the limit, unless only the document's data makes it explode. Then it is put
on the site as if it had been saved before these checks existed (validation bypassed) and a
ToDo is saved beside a good rule: the save ends within a second, the process grows by less
than 200 MB over the whole corpus, the rule's error names the limit, and the good rule still
delivers.
"""

import json
import resource
import time
from pathlib import Path

import frappe

from rt_studio.engine.budget import SITE_CONFIG_KEY
from rt_studio.tests.factories import RULE_PREFIX, TESTER, RTTestCase, make_rule, make_users

CORPUS = json.loads((Path(__file__).parent / "hostile_rules.json").read_text(encoding="utf-8"))
HOSTILE = CORPUS[1:]
#: Rules whose size comes from the document: saving them (a dry run on an empty ToDo) is fine.
DEPENDS_ON_DATA = {
	rule["rule_name"]
	for rule in HOSTILE
	if "description" in rule["rule_name"] and "printed" not in rule["rule_name"]
}
SECONDS = 1.0
MEGABYTES = 200
#: Words one of which every report of a stopped rule contains: it names the limit.
LIMIT_WORDS = ("MAX_", "budget of", "nest too deeply", "adds numbers only")


def peak_mb() -> float:
	return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def names_a_limit(text: str) -> bool:
	return any(word in text for word in LIMIT_WORDS)


class TestHostileRules(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def hostile(self, data: dict) -> dict:
		"""The corpus rule, sending to the reader: its templates run, as they would for a real audience."""
		return {
			**data,
			"rule_name": RULE_PREFIX + data["rule_name"].replace(":", " -"),
			"audience": [{"audience_type": "User", "user": self.reader}],
		}

	def todo(self):
		"""A ToDo the reader may read (allocated to it), whose description drives the data-sized rules."""
		return frappe.get_doc(
			{"doctype": "ToDo", "description": "1000000000000", "allocated_to": self.reader}
		).insert()

	def test_saving_a_hostile_rule_is_refused_within_a_second(self):
		for data in HOSTILE:
			with self.subTest(rule=data["rule_name"]):
				doc = frappe.get_doc(self.hostile(data))
				start = time.perf_counter()
				try:
					doc.insert()
				except frappe.ValidationError as e:
					refused = str(e)
				else:
					refused = None
				self.assertLess(time.perf_counter() - start, SECONDS)
				if data["rule_name"] in DEPENDS_ON_DATA:
					self.assertIsNone(refused, "nothing in the rule itself is wrong")
					frappe.delete_doc("Realtime Rule", doc.name, force=True)
					continue
				self.assertIsNotNone(refused, "the rule was saved")
				self.assertTrue(names_a_limit(refused) or "limit" in refused, refused)

	def test_a_save_meeting_a_hostile_rule_ends_in_a_second_and_the_good_rule_delivers(self):
		good = self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": self.reader}],
				document_type="ToDo",
				subject="ToDo {{ doc.name }}",
				message="{{ doc.description }}",
			)
		)
		start_mb, slowest = peak_mb(), (0.0, "")
		for data in HOSTILE:
			with self.subTest(rule=data["rule_name"]):
				rule = frappe.get_doc(self.hostile(data))
				rule.flags.ignore_validate = True  # as if saved before the budget existed
				rule.insert()
				todo = self.todo()
				with self.action() as save:
					start = time.perf_counter()
					todo.description = "1000000000000"
					todo.save()
					seconds = time.perf_counter() - start
				slowest = max(slowest, (seconds, data["rule_name"]))
				self.assertLess(seconds, SECONDS)
				self.assertEqual(save.rules(), {good.name: 1}, "only the good rule sends")
				self.assertEqual(save.users(good.name), [self.reader])
				error = frappe.db.get_value("Realtime Rule", rule.name, "last_error")
				if error is None:  # refused when compiled: the rule is not in the index at all
					self.assertEqual(rule.name, RULE_PREFIX + "Hostile condition 06 - 1 GB f-string width")
				else:
					self.assertTrue(names_a_limit(error) or "limit" in error, error)
				frappe.delete_doc("Realtime Rule", rule.name, force=True)
		grown = peak_mb() - start_mb
		self.assertLess(grown, MEGABYTES, f"grew {grown:.0f} MB; slowest save {slowest}")
		print(
			f"\n   {len(HOSTILE)} hostile rules, one save each: slowest {slowest[0] * 1000:.0f} ms"
			f" ({slowest[1]}), peak memory grew {grown:.1f} MB"
		)

	def test_the_budget_comes_from_site_config(self):
		self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": self.reader}],
				document_type="ToDo",
				rule_name=RULE_PREFIX + "twenty thousand turns",
				message="{% for i in range(20000) %}{% endfor %}done",
			)
		)
		todo = self.todo()
		frappe.local.conf[SITE_CONFIG_KEY] = 0.001
		try:
			with self.action() as tight:
				todo.save()
		finally:
			frappe.local.conf.pop(SITE_CONFIG_KEY, None)
		self.assertEqual(tight.rules(), {})
		error = frappe.db.get_value("Realtime Rule", RULE_PREFIX + "twenty thousand turns", "last_error")
		self.assertIn("budget of 0.001 ms for one event (site config rt_studio_rule_budget_ms)", error)
		with self.action() as default:
			todo.save()
		self.assertEqual(default.users(), [self.reader])
