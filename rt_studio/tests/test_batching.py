"""Batching instead of dropping: what exceeds a rule's rate limit arrives as one summary.

Saves are committed by another process (as a web worker would), the summary is delivered by
the scheduled job in a real RQ worker, and what was published is read from Redis.
"""

import time

import frappe

from rt_studio import trace
from rt_studio.api import preview
from rt_studio.batches import RedisBatches
from rt_studio.tests.factories import (
	ORDER,
	TESTER,
	RealtimeListener,
	RTTestCase,
	SiteProcess,
	clear_rate_keys,
	make_order,
	make_rule,
	make_users,
	run_background_jobs,
)

#: The rate-limit window of the test rule: short, so the test waits for its end, and long
#: enough for 30 saves on a loaded machine (they take one to three seconds).
WINDOW = 8


def run_scheduled_delivery() -> str:
	"""Enqueue the batch delivery as Frappe's scheduler does each minute, and run the worker."""
	job = frappe.get_doc("Scheduled Job Type", {"method": "rt_studio.batches.deliver_due"})
	self_enqueued = job.enqueue(force=True)
	frappe.db.commit()
	return f"enqueued: {self_enqueued}\n" + run_background_jobs("short,default,long")


class TestBatching(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def limited_rule(self, **fields):
		rule = self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": self.reader}],
				commit=True,
				rate_limit_count=3,
				rate_limit_seconds=WINDOW,
				**fields,
			)
		)
		clear_rate_keys(rule.name)
		self.addCleanup(RedisBatches().take_due, 10**6)
		return rule

	def test_thirty_saves_against_a_limit_of_three_give_three_messages_and_a_summary(self):
		rule = self.limited_rule(subject="Order {{ doc.qty }}")
		order = self.enterContext(make_order(commit=True, qty=0))
		with SiteProcess() as process, RealtimeListener() as listener:
			started = time.monotonic()
			self.assertEqual(process.ask("save", doctype=ORDER, name=order.name, times=30), {"saved": 30})
			saving = time.monotonic() - started
			singles = listener.received(rule=rule.name, count=3, quiet=0.5)
			self.assertEqual([s.message["subject"] for s in singles], ["Order 1", "Order 2", "Order 3"])
			# preview and trace say batched while the batch collects
			verdicts = [r["verdict"] for r in preview(rule.name, order.name)["recipients"]]
			self.assertEqual(verdicts, ["batched"])
			reasons = [entry["reason"] for entry in trace.read(rule.name, limit=27)]
			self.assertEqual(reasons, ["0 of 1 recipients (1 batched)"] * 27)
			time.sleep(max(0, WINDOW - (time.monotonic() - started)) + 0.5)
			log = run_scheduled_delivery()
			[summary] = listener.received(rule=rule.name, count=1)
		self.assertLess(saving, WINDOW, "the 30 saves must fit in the window for this test to mean anything")
		message = summary.message
		self.assertEqual(summary.user, self.reader)
		self.assertEqual(message["batch_count"], 27, log)
		self.assertEqual(message["subject"], f"27 more {ORDER} changes")
		self.assertEqual(message["docnames"], [order.name])
		self.assertEqual(message["seq"], singles[-1].message["seq"] + 1)
		self.assertEqual((message["rule"], message["doctype"], message["docname"]), (rule.name, ORDER, None))
		[entry] = trace.read(rule.name, limit=1)
		self.assertEqual(entry["reason"], "summary of batched messages: 1 of 1 recipients")

	def test_nothing_is_due_before_the_window_ends_and_a_disabled_rule_sends_no_summary(self):
		rule = self.limited_rule()
		order = self.enterContext(make_order(commit=True))
		with SiteProcess() as process, RealtimeListener() as listener:
			process.ask("save", doctype=ORDER, name=order.name, times=5)
			self.assertEqual(len(listener.received(rule=rule.name, count=3)), 3)
			self.assertEqual(RedisBatches().collecting(rule.name, [self.reader]), {self.reader})
			run_scheduled_delivery()
			self.assertEqual(listener.received(rule=rule.name), [])  # still collecting
			frappe.db.set_value("Realtime Rule", rule.name, "enabled", 0)
			rule.clear_cache()
			frappe.db.commit()
			time.sleep(WINDOW + 0.5)
			run_scheduled_delivery()
			self.assertEqual(listener.received(rule=rule.name), [])
		self.assertEqual(RedisBatches().collecting(rule.name, [self.reader]), set())
		[entry] = trace.read(rule.name, limit=1)
		self.assertIn("not sent: the rule was deleted or disabled", entry["reason"])
