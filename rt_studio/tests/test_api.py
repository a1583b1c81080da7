"""The System Manager's API: preview, test-fire, export/import and traces."""

import importlib
import json
from contextlib import contextmanager
from unittest.mock import patch

import frappe

from rt_studio import api
from rt_studio.delivery.deferred import LARGE_AUDIENCE
from rt_studio.desk import authoring as api_module
from rt_studio.tests.crowd import make_crowd
from rt_studio.tests.factories import (
	BYSTANDER,
	ORDER,
	RULE_PREFIX,
	TESTER,
	RTTestCase,
	make_channel,
	make_order,
	make_rule,
	make_users,
	new_order,
	queued,
	unique,
)

#: The module (the engine package exports a function of the same name)
evaluate_module = importlib.import_module("rt_studio.engine.evaluate")


@contextmanager
def production_permissions():
	"""`frappe.only_for` lets everything through while tests run; check as production does."""
	in_test = frappe.local.flags.in_test
	frappe.local.flags.in_test = False
	try:
		yield
	finally:
		frappe.local.flags.in_test = in_test


def notification_logs() -> int:
	return frappe.db.count("Notification Log", {"document_type": ORDER})


def rate_counters(rule: str) -> int:
	return len(frappe.cache.keys(frappe.cache.make_key(f"rt_studio:rate:rule:{rule}:*")))


class TestAPI(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(
			make_users({"reader": {"roles": [TESTER]}, "noperm": {"roles": [BYSTANDER]}})
		)
		cls.reader, cls.noperm = cls.users["reader"], cls.users["noperm"]

	def rule(self, **fields):
		audience = [{"audience_type": "User", "user": u} for u in (self.reader, self.noperm)]
		return self.enterContext(make_rule(audience, **fields))

	def test_preview_has_no_side_effects(self):
		rule = self.rule(
			condition="doc.qty > 1",
			subject="{{ doc.title }} for {{ recipient }}",
			display="Notification Log",
			rate_limit_count=1,
			rate_limit_seconds=60,
		)
		doc = new_order(title="Bikes", qty=2).insert()
		logs, waiting = notification_logs(), len(queued())
		for _i in range(2):
			result = api.preview(rule.name, doc.name)
			self.assertTrue(result["condition"])
			verdicts = {r["user"]: (r["verdict"], r["subject"]) for r in result["recipients"]}
			self.assertEqual(
				verdicts,
				{
					self.reader: ("deliver", f"Bikes for {self.reader}"),
					self.noperm: ("no read permission", f"Bikes for {self.noperm}"),
				},
			)
		self.assertEqual(len(queued()), waiting, "nothing queued for publishing")
		self.assertEqual(notification_logs(), logs, "no Notification Log")
		self.assertEqual(rate_counters(rule.name), 0, "no rate-limit counter used")
		traced = [e for e in getattr(frappe.local, "rt_studio_trace", None) or [] if e["rule"] == rule.name]
		self.assertEqual(traced, [], "no trace")
		frappe.db.rollback()  # writes whatever trace was queued
		self.assertEqual(api.trace(rule.name), [])

	def test_preview_explains_a_false_condition(self):
		rule = self.rule(condition="doc.qty > 100")
		doc = new_order(qty=2).insert()
		result = api.preview(rule.name, doc.name)
		self.assertFalse(result["condition"])
		self.assertFalse(result["fired"])
		self.assertEqual(result["reason"], "condition is false")

	def test_test_fire_to_me_ignores_the_condition(self):
		rule = self.rule(condition="doc.qty > 100")
		doc = new_order(qty=2).insert()
		result = api.test_fire(rule.name, doc.name, to="me")
		self.assertEqual(result["sent"], 1)
		self.assertEqual([s.user for s in queued(rule.name)], ["Administrator"])

	def test_test_fire_to_the_audience_keeps_permissions_and_spares_rate_limits(self):
		rule = self.rule(condition="doc.qty > 100", rate_limit_count=1, rate_limit_seconds=60)
		doc = new_order(qty=2).insert()
		for _i in range(2):
			result = api.test_fire(rule.name, doc.name, to="audience")
			self.assertEqual(result["sent"], 1)
		self.assertEqual([s.user for s in queued(rule.name)], [self.reader, self.reader])
		self.assertEqual(rate_counters(rule.name), 0)

	def test_the_server_sends_a_large_test_fire_to_the_background(self):
		"""No client flag: more than LARGE_AUDIENCE users go to a job, as a live save's would."""
		doc = new_order(qty=2).insert()
		small = self.rule()
		self.assertEqual(api.test_fire(small.name, doc.name, to="audience")["sent"], 1)
		with make_crowd(LARGE_AUDIENCE + 1, (TESTER,), commit=False):
			large = self.enterContext(make_rule([{"audience_type": "Role", "role": TESTER}]))
			with patch.object(frappe, "enqueue") as enqueue:
				result = api.test_fire(large.name, doc.name, to="audience", background=0)
		self.assertTrue(result["queued"])
		self.assertGreater(result["recipients"], LARGE_AUDIENCE)
		self.assertEqual(queued(large.name), [])
		self.assertEqual(enqueue.call_args.args, ("rt_studio.desk.authoring.test_fire_job",))
		self.assertEqual(enqueue.call_args.kwargs["rule"], large.name)

	def test_preview_of_a_large_audience_counts_all_and_renders_a_sample(self):
		doc = new_order(qty=2).insert()
		with make_crowd(api_module.PREVIEW_SAMPLE + 70, (TESTER,), commit=False) as crowd:
			rule = self.enterContext(
				make_rule(
					[{"audience_type": "Role", "role": TESTER}], subject="{{ doc.title }} for {{ recipient }}"
				)
			)
			with patch.object(evaluate_module, "_render", wraps=evaluate_module._render) as render:
				result = api.preview(rule.name, doc.name)
			size = api.audience_size(rule.name, doc.name)
		self.assertGreaterEqual(result["total"], len(crowd))
		self.assertEqual(sum(result["counts"].values()), result["total"])
		self.assertEqual(len(result["recipients"]), api_module.PREVIEW_SAMPLE)
		self.assertTrue(all(r["verdict"] == "deliver" and r["subject"] for r in result["recipients"]))
		self.assertEqual(render.call_count, api_module.PREVIEW_SAMPLE, "texts for the sample only")
		self.assertEqual((size["total"], size["deliver"]), (result["total"], result["counts"]["deliver"]))

	def test_export_import_round_trip(self):
		channel = self.enterContext(make_channel([{"member_type": "User", "user": self.reader}]))
		first = self.enterContext(
			make_rule(
				[{"audience_type": "Channel", "channel": channel.name}, {"audience_type": "Owner"}],
				event="Value Change",
				value_changed="status",
				from_value="Open",
				to_value="Approved",
				condition="doc.qty > 1",
				message="<b>{{ doc.title }}</b>",
				fields="title, qty",
				display="Sticky",
				indicator="green",
				rate_limit_count=3,
				rate_limit_seconds=30,
			)
		)
		second = self.rule(event="New", exclude_actor=0)
		names = [first.name, second.name]

		exported = api.export_rules(json.dumps(names))
		rules = [d for d in exported if d["doctype"] == "Realtime Rule"]
		channels = [d["name"] for d in exported if d["doctype"] == "Realtime Channel"]
		self.assertEqual(sorted(d["rule_name"] for d in rules), sorted(names))
		# the channels the rules name travel with them, so the file imports on another site
		self.assertEqual(channels, [channel.name])
		for name in names:
			frappe.delete_doc("Realtime Rule", name)
		frappe.delete_doc("Realtime Channel", channel.name)
		imported = api.import_rules(json.dumps(exported))
		self.assertEqual(sorted(imported["imported"]), sorted(names + channels))

		def comparable(docs):
			return [{k: v for k, v in d.items() if k != "modified"} for d in docs]

		self.assertEqual(comparable(api.export_rules(names)), comparable(exported))

	def test_import_is_all_or_nothing(self):
		template = api.export_rules([self.rule(event="New").name])[0]
		good = [dict(template, name=n, rule_name=n) for n in (unique(RULE_PREFIX), unique(RULE_PREFIX))]
		bad_name = unique(RULE_PREFIX + "bad")
		bad = dict(template, name=bad_name, rule_name=bad_name, event="Value Change", value_changed="colour")
		with self.assertRaises(frappe.ValidationError) as raised:
			api.import_rules(json.dumps([good[0], bad, good[1]]))
		self.assertIn(bad_name, str(raised.exception))
		self.assertIn("value_changed", str(raised.exception))
		for doc in good:
			self.assertFalse(frappe.db.exists("Realtime Rule", doc["rule_name"]))
		self.assertFalse(frappe.db.exists("Realtime Rule", bad_name))

	def test_only_system_managers(self):
		rule = self.rule()
		doc = new_order().insert()
		calls = {
			"preview": lambda: api.preview(rule.name, doc.name),
			"test_fire": lambda: api.test_fire(rule.name, doc.name),
			"export_rules": lambda: api.export_rules(),
			"import_rules": lambda: api.import_rules(json.dumps(exported)),
			"trace": lambda: api.trace(rule.name),
		}
		exported = api.export_rules([rule.name])
		with self.set_user(self.reader), production_permissions():
			for name, call in calls.items():
				with self.subTest(name), self.assertRaises(frappe.PermissionError):
					call()


class TestTrace(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def test_trace_shows_fired_not_fired_and_errors(self):
		audience = [{"audience_type": "User", "user": self.reader}]
		rule = self.enterContext(make_rule(audience, condition="doc.qty > 1", commit=True))
		broken = self.enterContext(make_rule(audience, subject="{{ doc.qty / 0 }}", commit=True))
		doc = self.enterContext(make_order(commit=True, qty=1))
		for qty in (1, 5):
			doc.qty = qty
			doc.save()
			frappe.db.commit()
		newest, oldest = api.trace(rule.name)
		self.assertEqual(
			(newest["fired"], newest["reason"], newest["recipients"]), (True, "1 of 1 recipients", 1)
		)
		self.assertEqual((oldest["fired"], oldest["reason"]), (False, "condition is false"))
		self.assertEqual((newest["docname"], newest["event"], newest["error"]), (doc.name, "Save", None))
		[error, _] = api.trace(broken.name)
		self.assertFalse(error["fired"])
		self.assertIn("subject", error["error"])

	def test_trace_keeps_the_last_50_evaluations_per_rule(self):
		rule = self.enterContext(make_rule(event="New", commit=True))
		names = []
		for _i in range(55):
			names.append(new_order().insert().name)
			frappe.db.rollback()
		entries = api.trace(rule.name, limit=500)
		self.assertEqual(len(entries), 50)
		self.assertEqual([e["docname"] for e in entries], names[::-1][:50])
		self.assertTrue(all(not e["fired"] and e["reason"].startswith("rolled back") for e in entries))
