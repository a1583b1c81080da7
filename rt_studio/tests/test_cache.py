"""The rule cache: free for DocTypes without rules, always current, never keeps what rolled back."""

from unittest.mock import patch

import frappe

from rt_studio import rule_cache as cache
from rt_studio.engine.events import HOOKS
from rt_studio.rt_studio.doctype.realtime_rule.realtime_rule import reload_rules
from rt_studio.save.handler import on_document_event
from rt_studio.tests.factories import (
	RULE_PREFIX,
	TESTER,
	Action,
	RTTestCase,
	SiteProcess,
	make_rule,
	make_users,
	new_order,
	new_request,
	queued,
)

#: Core DocTypes a test document may be made of; the first that no rule of the site names is
#: taken (a lived-in site may have rules on Note or ToDo of its own).
RULELESS_CANDIDATES = ("Note", "Tag", "Event", "Letter Head", "Web Page", "Kanban Board", "Dashboard")


def note():
	"""A document of a DocType no rule listens to (never saved: the handler is called directly)."""
	named = set(frappe.get_all("Realtime Rule", pluck="document_type", distinct=True))
	doctype = next(dt for dt in RULELESS_CANDIDATES if dt not in named)
	doc = frappe.new_doc(doctype)
	doc.name = "rt-studio cache test"
	return doc


def rt_studio_errors() -> int:
	return frappe.db.count("Error Log", {"method": ["like", "RT Studio%"]})


def assert_free_for_doctypes_without_rules(test) -> None:
	"""After one warm-up request: no query at all, and one Redis GET per request."""
	doc = note()
	new_request()
	on_document_event(doc, "on_update")
	with test.assertQueryCount(0), test.assertRedisCallCounts(0):
		for method in HOOKS:
			on_document_event(doc, method)
	new_request()
	with test.assertQueryCount(0), test.assertRedisCallCounts(1):
		for method in HOOKS:
			on_document_event(doc, method)


class TestRuleCache(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]
		# a committed rule change, so the rules' digest is published for every process
		with make_rule(commit=True):
			pass

	def to_reader(self, **fields):
		return make_rule([{"audience_type": "User", "user": self.reader}], **fields)

	def assert_free_for_doctypes_without_rules(self):
		assert_free_for_doctypes_without_rules(self)

	def test_event_without_rules_costs_no_query_and_one_redis_call_per_request(self):
		self.assert_free_for_doctypes_without_rules()

	def test_still_free_after_a_rule_change_rolled_back(self):
		with self.to_reader(event="New"):
			new_order().insert()
		frappe.db.rollback()
		self.assert_free_for_doctypes_without_rules()

	def test_edit_disable_and_delete_take_effect_on_the_next_event(self):
		rule = self.enterContext(self.to_reader(event="Save", subject="first"))
		doc = new_order().insert()

		def save() -> list:
			new_request()
			before = len(queued(rule.name))
			doc.qty += 1
			doc.save()
			return [s.message["subject"] for s in queued(rule.name)[before:]]

		self.assertEqual(save(), ["first"])
		rule.subject = "second"
		rule.save()
		self.assertEqual(save(), ["second"])
		rule.enabled = 0
		rule.save()
		self.assertEqual(save(), [])
		rule.enabled = 1
		rule.save()
		self.assertEqual(save(), ["second"])
		frappe.delete_doc("Realtime Rule", rule.name)
		self.assertEqual(save(), [])
		self.assertNotIn(rule.name, cache.get_index().rules)

	def test_a_transaction_changing_many_rules_publishes_the_new_rules_once(self):
		"""The committed rules are read and hashed once per transaction, not once per rule saved."""
		rules = [self.enterContext(self.to_reader(event="Save", commit=True)) for _ in range(3)]
		with patch.object(cache, "digest_of", wraps=cache.digest_of) as digest:
			for rule in rules:
				rule.subject = "changed"
				rule.save()
			frappe.db.commit()
		self.assertEqual(digest.call_count, 1)

	def test_rule_rolled_back_is_not_kept_by_the_cache(self):
		errors = rt_studio_errors()
		with self.to_reader(event="New") as rule:
			new_order().insert()  # the cache refills with the uncommitted rule
			self.assertEqual(len(queued(rule.name)), 1)
			frappe.db.rollback()
			new_request()
			new_order().insert()
			new_request()
			new_order().insert()
		self.assertEqual(queued(rule.name), [])
		self.assertNotIn(rule.name, cache.get_index().rules)
		self.assertNotIn(
			rule.name, cache._process_indexes.get(frappe.local.site, ("", cache.RuleIndex([])))[1].rules
		)
		self.assertEqual(rt_studio_errors(), errors)

	def test_another_process_sees_committed_changes_and_never_uncommitted_ones(self):
		prefix = RULE_PREFIX + frappe.generate_hash(length=6)
		with SiteProcess() as other:
			self.assertEqual(other.ask("rules", prefix=prefix)["rules"], [])

			with self.to_reader(rule_name=f"{prefix}-uncommitted"):
				seen = other.ask("rules", prefix=prefix)
				self.assertEqual(seen["rules"], [], "uncommitted rule seen by another process")
				self.assertFalse(seen["shared"], "an index that cannot be verified is not kept")
				frappe.db.rollback()
			self.assertEqual(other.ask("rules", prefix=prefix)["rules"], [])

			with self.to_reader(rule_name=f"{prefix}-committed", commit=True) as rule:
				seen = other.ask("rules", prefix=prefix)
				self.assertEqual(seen["rules"], [rule.name])
				self.assertTrue(seen["shared"])
				again = other.ask("rules", prefix=prefix)
				self.assertEqual(again["rules"], [rule.name])
				self.assertFalse(again["rebuilt"], "a warm process cache answers without rebuilding")

				rule.enabled = 0
				rule.save()
				frappe.db.commit()
				self.assertEqual(other.ask("rules", prefix=prefix)["rules"], [rule.name])

			# the factory deleted the rule and committed
			seen = other.ask("rules", prefix=prefix)
			self.assertEqual(seen["rules"], [], "a deleted rule left the other process's cache")
			self.assertTrue(seen["rebuilt"])


class TestRulesChangedWithoutTheirForm(RTTestCase):
	"""`frappe.db.set_value`, a patch, `bench execute` or SQL run no controller: no token changes,
	so a long-lived process (a web worker) keeps the old rule until something publishes it."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def fired(self, rule) -> int:
		"""Deliveries of `rule` when a new order is inserted, in a new request of this process."""
		with Action() as action:
			new_order().insert()
		return action.rules().get(rule.name, 0)

	def disabled_without_its_form(self):
		"""A committed New rule, then disabled by set_value and committed: still fires here."""
		rule = self.enterContext(
			make_rule([{"audience_type": "User", "user": self.reader}], event="New", commit=True)
		)
		self.assertEqual(self.fired(rule), 1)
		frappe.db.set_value("Realtime Rule", rule.name, "enabled", 0)
		frappe.db.commit()
		self.assertEqual(self.fired(rule), 1, "no process has heard of the change yet")
		return rule

	def test_the_minute_check_applies_it_in_every_process(self):
		rule = self.disabled_without_its_form()
		with SiteProcess() as scheduler:  # the scheduled job, as a forked work horse runs it
			scheduler.ask("run_job", method="rt_studio.rule_cache.notice_outside_changes")
		self.assertEqual(self.fired(rule), 0)

	def test_reload_rules_applies_it_at_once(self):
		rule = self.disabled_without_its_form()
		reload_rules()  # the list's "Reload Rules" button
		self.assertEqual(self.fired(rule), 0)

	def test_bench_clear_cache_applies_it(self):
		rule = self.disabled_without_its_form()
		frappe.clear_cache()  # what `bench clear-cache` runs
		self.assertEqual(self.fired(rule), 0)

	def test_the_minute_check_leaves_processes_alone_when_nothing_changed(self):
		"""Two queries, and no new token: no process rebuilds because a minute passed."""
		with make_rule(commit=True):
			pass
		token = frappe.cache.get_value(cache.STATE_KEY)["token"]
		with self.assertQueryCount(2):
			self.assertFalse(cache.notice_outside_changes())
		self.assertEqual(frappe.cache.get_value(cache.STATE_KEY)["token"], token)

	def test_reload_rules_is_for_system_managers(self):
		frappe.set_user(self.reader)
		frappe.flags.in_test = False  # (frappe.only_for lets everyone through in tests)
		try:
			with self.assertRaises(frappe.PermissionError):
				reload_rules()
		finally:
			frappe.flags.in_test = True
			frappe.set_user("Administrator")
