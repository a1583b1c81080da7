"""Per-recipient rate limits, counted in Redis so every process shares them."""

import json
import time

import frappe

from rt_studio.api import preview
from rt_studio.tests.factories import (
	ORDER,
	SECRET_READER,
	TESTER,
	RealtimeListener,
	RTTestCase,
	SiteProcess,
	clear_rate_keys,
	make_order,
	make_rule,
	make_users,
)


class TestRateLimits(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(
			make_users({"reader": {"roles": [TESTER]}, "secret": {"roles": [TESTER, SECRET_READER]}})
		)

	def limited_rule(self, count: int = 2, commit: bool = False):
		audience = [{"audience_type": "User", "user": user} for user in self.users.values()]
		rule = self.enterContext(
			make_rule(audience, rate_limit_count=count, rate_limit_seconds=60, commit=commit)
		)
		clear_rate_keys(rule.name)
		return rule

	def test_third_delivery_to_the_same_recipient_is_batched(self):
		rule = self.limited_rule(2)
		doc = self.enterContext(make_order())
		delivered = []
		for _i in range(3):
			with self.action() as save:
				doc.qty += 1
				doc.save()
			delivered.append(save.users(rule.name))
		both = sorted(self.users.values())
		self.assertEqual(delivered, [both, both, []])
		verdicts = {r["user"]: r["verdict"] for r in preview(rule.name, doc.name)["recipients"]}
		self.assertEqual(verdicts, dict.fromkeys(both, "batched"))

	def test_concurrent_saves_in_several_processes_respect_the_limit(self):
		rule = self.limited_rule(2, commit=True)
		orders = [self.enterContext(make_order(commit=True, title=f"order {i}")) for i in range(4)]
		processes = [self.enterContext(SiteProcess()) for _order in orders]
		with RealtimeListener() as listener:
			for process, order in zip(processes, orders, strict=True):
				process.send("save", doctype=ORDER, name=order.name, times=5)
			for process in processes:
				self.assertEqual(process.receive(), {"saved": 5})
			received = listener.received(rule=rule.name, quiet=1)
		frappe.db.rollback()  # see what the other processes committed
		self.assertEqual([frappe.db.get_value(ORDER, o.name, "qty") for o in orders], [6, 6, 6, 6])
		per_user = {user: sum(1 for s in received if s.user == user) for user in self.users.values()}
		self.assertEqual(per_user, dict.fromkeys(self.users.values(), 2))

	def test_a_save_that_rolls_back_uses_no_budget(self):
		rule = self.limited_rule(1, commit=True)
		doc = self.enterContext(make_order(commit=True))
		for _attempt in range(3):
			with self.action() as rolled_back:
				doc.reload()
				doc.qty += 1
				doc.save()
			self.assertEqual(len(rolled_back.users(rule.name)), 2)
			frappe.db.rollback()
		verdicts = {r["user"]: r["verdict"] for r in preview(rule.name, doc.name)["recipients"]}
		self.assertEqual(set(verdicts.values()), {"deliver"}, "the rolled-back saves sent nothing")
		with self.action() as kept:
			doc.reload()
			doc.qty += 1
			doc.save()
		self.assertEqual(kept.users(rule.name), sorted(self.users.values()))
		frappe.db.commit()
		verdicts = {r["user"]: r["verdict"] for r in preview(rule.name, doc.name)["recipients"]}
		self.assertEqual(set(verdicts.values()), {"batched"}, "the committed save used the budget")

	def test_counters_of_different_rules_and_users_are_apart(self):
		from rt_studio.delivery.rate_limit import RedisRateLimiter
		from rt_studio.engine.ratelimit import rule_key

		limiter = RedisRateLimiter()
		keys = [rule_key("rt-test-a:b", "c@example.com"), rule_key("rt-test-a", "b:c@example.com")]
		try:
			self.assertEqual(limiter.hit_many(keys, 1, 60), [True, True])
			self.assertEqual(limiter.hit_many(keys, 1, 60), [False, False])
		finally:
			frappe.db.rollback()
		self.assertEqual(limiter.peek_many(keys, 1, 60), [True, True], "given back at the rollback")

	def test_one_call_skips_a_collecting_batch_counts_the_rest_and_gives_back_at_rollback(self):
		from rt_studio.delivery.batches import RedisBatches, _member
		from rt_studio.delivery.rate_limit import KEY_PREFIX, RedisRateLimiter
		from rt_studio.engine.ratelimit import rule_key

		rule = "rt-test-admit"
		collecting, free, over = (f"rt-test-admit-{n}@example.com" for n in ("a", "b", "c"))
		limiter, batches = RedisRateLimiter(), RedisBatches()

		def hits(user: str) -> int:
			return frappe.cache.zcard(frappe.cache.make_key(KEY_PREFIX + rule_key(rule, user)))

		frappe.cache.zadd(batches.due_key, {_member(rule, collecting): time.time() + 60})
		try:
			limiter.hit(rule_key(rule, over), 1, 60)
			frappe.db.commit()  # the slot `over` used stays taken
			users = [collecting, free, over]
			self.assertEqual(batches.admit(rule, users, limiter, 1, 60, consume=False), {collecting, over})
			self.assertEqual([hits(u) for u in users], [0, 0, 1], "a preview counts nothing")
			self.assertEqual(batches.admit(rule, users, limiter, 1, 60, consume=True), {collecting, over})
			self.assertEqual([hits(u) for u in users], [0, 1, 1], "only the one let through counted")
			frappe.db.rollback()
			self.assertEqual([hits(u) for u in users], [0, 0, 1], "given back at the rollback")
		finally:
			frappe.cache.zrem(batches.due_key, _member(rule, collecting))
			clear_rate_keys(rule)

	def test_a_save_over_the_limit_that_rolls_back_adds_nothing_to_a_summary(self):
		from rt_studio.delivery.batches import RedisBatches

		rule = self.limited_rule(1, commit=True)
		doc = self.enterContext(make_order(commit=True))
		with self.action():
			doc.qty += 1
			doc.save()
		frappe.db.commit()  # uses each recipient's one slot
		with self.action() as over:
			doc.qty += 1
			doc.save()
		self.assertEqual(over.users(rule.name), [])
		frappe.db.rollback()
		self.assertEqual(RedisBatches().collecting(rule.name, list(self.users.values())), set())
		with self.action():
			doc.reload()
			doc.qty += 1
			doc.save()
		frappe.db.commit()
		batches = RedisBatches()
		try:
			self.assertEqual(
				batches.collecting(rule.name, list(self.users.values())), set(self.users.values())
			)
		finally:
			for user in self.users.values():
				member = json.dumps([rule.name, user], separators=(",", ":"))
				frappe.cache.zrem(batches.due_key, member)
				frappe.cache.delete(
					batches.prefix + member.encode(), batches.prefix + member.encode() + b":docs"
				)
