"""`seq` on every delivery to a user and the log behind `rt_studio.api.missed`.

These tests commit and listen on Redis's `events` channel, so what they compare is what
was really published; they remove what they committed.
"""

import time
from unittest.mock import patch

import frappe
import redis

from rt_studio.api import missed, publish
from rt_studio.delivery import delivery_log
from rt_studio.desk.boot import boot_session
from rt_studio.tests.factories import (
	ORDER,
	TESTER,
	RealtimeListener,
	RTTestCase,
	SiteProcess,
	make_channel,
	make_order,
	make_rule,
	make_users,
)


def clear_log(user: str) -> None:
	frappe.cache.delete(delivery_log._log_key(user), delivery_log._counter_key(user))


class TestDeliveryLog(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(
			make_users({"reader": {"roles": [TESTER]}, "other": {"roles": [TESTER]}})
		)
		cls.reader, cls.other = cls.users["reader"], cls.users["other"]

	def setUp(self):
		super().setUp()
		for user in self.users.values():
			clear_log(user)
		# missed() also reads the inbox (for what Redis lost): start each test without items
		frappe.db.delete("Realtime Inbox Item", {"user": ("in", list(self.users.values()))})
		frappe.db.commit()

	def missed_as(self, user: str, since: int) -> list[dict]:
		frappe.set_user(user)
		try:
			return missed(since)
		finally:
			frappe.set_user("Administrator")

	def test_each_delivery_gets_the_next_seq_and_missed_returns_it_exactly(self):
		rule = self.enterContext(
			make_rule([{"audience_type": "User", "user": self.reader}], commit=True, fields="qty")
		)
		order = self.enterContext(make_order(commit=True))
		start = delivery_log.current_seq(self.reader)
		with SiteProcess() as process, RealtimeListener() as listener:
			self.assertEqual(process.ask("save", doctype=ORDER, name=order.name, times=3), {"saved": 3})
			received = listener.received(rule=rule.name, count=3)
		seqs = [sent.message["seq"] for sent in received]
		self.assertEqual(seqs, [start + 1, start + 2, start + 3])
		self.assertEqual(self.missed_as(self.reader, start), [sent.message for sent in received])
		self.assertEqual(self.missed_as(self.reader, start + 2), [received[2].message])
		self.assertEqual(self.missed_as(self.reader, start + 3), [])
		# only the session user's own deliveries
		self.assertEqual(self.missed_as(self.other, 0), [])

	def test_a_rolled_back_save_neither_sends_nor_logs_nor_skips_a_number(self):
		rule = self.enterContext(make_rule([{"audience_type": "User", "user": self.reader}], commit=True))
		order = self.enterContext(make_order(commit=True))
		start = delivery_log.current_seq(self.reader)
		with RealtimeListener() as listener:
			order.qty += 1
			order.save()
			frappe.db.rollback()
			self.assertEqual(listener.received(rule=rule.name), [])
			self.assertEqual(self.missed_as(self.reader, 0), [])
			order.reload()
			order.qty += 1
			order.save()
			frappe.db.commit()
			[sent] = listener.received(rule=rule.name, count=1)
		self.assertEqual(sent.message["seq"], start + 1)
		self.assertEqual(self.missed_as(self.reader, 0), [sent.message])

	def test_redis_failing_at_the_commit_fails_the_save_and_sends_nothing(self):
		"""A message that cannot be numbered could be neither kept nor replayed: a desk that was away
		would never see it. So the save fails, visibly, with nothing sent, kept or logged."""
		rule = self.enterContext(make_rule([{"audience_type": "User", "user": self.reader}], commit=True))
		order = self.enterContext(make_order(commit=True))
		with RealtimeListener() as listener:
			order.qty += 1
			order.save()
			with patch.object(delivery_log, "stamp", side_effect=redis.exceptions.ConnectionError("down")):
				with self.assertRaises(redis.exceptions.ConnectionError):
					frappe.db.commit()
			frappe.db.rollback()
			self.assertEqual(listener.received(rule=rule.name, quiet=1), [])
			# the next save of the process sends its own message, once, and nothing of the failed one
			order.reload()
			order.qty += 1
			order.save()
			frappe.db.commit()
			[sent] = listener.received(rule=rule.name, count=1)
		self.assertEqual(frappe.db.get_value(ORDER, order.name, "qty"), order.qty)
		self.assertEqual(self.missed_as(self.reader, 0), [sent.message])
		self.assertEqual(frappe.db.count("Realtime Inbox Item", {"user": self.reader, "rule": rule.name}), 1)

	def test_missed_finds_in_the_inbox_what_redis_lost(self):
		"""The cache Redis restarted empty: the log behind missed() is gone, the inbox is not."""
		rule = self.enterContext(make_rule([{"audience_type": "User", "user": self.reader}], commit=True))
		order = self.enterContext(make_order(commit=True))
		with RealtimeListener() as listener:
			for _ in range(3):
				order.reload()
				order.qty += 1
				order.save()
				frappe.db.commit()
			sent = [s.message for s in listener.received(rule=rule.name, count=3)]
		self.assertEqual(len(sent), 3)
		first = sent[0]["seq"]
		clear_log(self.reader)  # what a restart without persistence leaves
		self.assertEqual(self.missed_as(self.reader, first), sent[1:])
		self.assertEqual(self.missed_as(self.reader, 0), sent)
		self.assertEqual(self.missed_as(self.reader, sent[-1]["seq"]), [])

	def test_missed_from_the_inbox_keeps_the_newest_when_more_than_it_returns_are_kept(self):
		"""Redis restarted empty and the user had more messages in the last day than missed() returns:
		like the log, it returns the newest MAX_KEPT (it returned the oldest, so a desk booting from
		it, or catching up, started from a number thousands of messages old)."""
		from rt_studio.delivery import inbox

		count = delivery_log.MAX_KEPT + 5
		start = 10**12
		message = {"rule": "r", "channel": None, "subject": "s", "display": "Alert"}
		message["sent_at"] = frappe.utils.now_datetime().isoformat()
		inbox.keep([(self.reader, {**message, "seq": start + i}) for i in range(count)])
		frappe.db.commit()
		try:
			clear_log(self.reader)
			got = [m["seq"] for m in self.missed_as(self.reader, 0)]
			self.assertEqual(got, list(range(start + 5, start + count)))
			self.assertEqual(self.missed_as(self.reader, start + count - 2)[0]["seq"], start + count - 1)
		finally:
			frappe.db.delete("Realtime Inbox Item", {"user": self.reader})
			frappe.db.commit()

	def test_channel_members_each_get_their_own_number(self):
		channel = self.enterContext(
			make_channel([{"member_type": "User", "user": u} for u in self.users.values()], commit=True)
		)
		frappe.cache.set(delivery_log._counter_key(self.other), 500)
		before = {user: delivery_log.current_seq(user) for user in self.users.values()}
		with RealtimeListener() as listener:
			publish(channel.name, "deploy at five")
			frappe.db.commit()
			received = listener.received(channel=channel.name, count=2)
		got = {sent.user: sent.message["seq"] for sent in received}
		self.assertEqual(got, {user: before[user] + 1 for user in self.users.values()})
		for sent in received:
			self.assertEqual(self.missed_as(sent.user, before[sent.user]), [sent.message])

	def test_boot_tells_the_desk_where_its_numbers_start(self):
		frappe.set_user(self.reader)
		bootinfo = frappe._dict()
		boot_session(bootinfo)
		frappe.set_user("Administrator")
		self.assertEqual(bootinfo.rt_studio["seq"], delivery_log.current_seq(self.reader))
		# a counter that starts (or starts again after Redis lost it) starts from the clock
		self.assertGreater(bootinfo.rt_studio["seq"], (time.time() - 60) * 1000)

	def test_a_reloaded_desk_starts_from_the_current_number_not_the_cached_boot(self):
		"""Frappe caches a user's boot info (`frappe.sessions.get`): RT Studio's number is added
		by the `extend_bootinfo` hook, which runs on every page load after the cache is read."""
		frappe.set_user(self.reader)
		frappe.cache.hdel("bootinfo", self.reader)
		frappe.local.request = None  # as a page load outside a web request (no change log)
		try:
			first = frappe.sessions.get()["rt_studio"]["seq"]
			self.assertIsNotNone(frappe.cache.hget("bootinfo", self.reader), "the boot info is cached")
			delivery_log.stamp([(self.reader, {"rule": "x", "subject": "while the page was open"})])
			frappe.local.cache = {}  # the next page load is another request: Frappe's cache from Redis
			again = frappe.sessions.get()
		finally:
			del frappe.local.request
		frappe.set_user("Administrator")
		self.assertEqual(again.get("from_cache"), 1)
		self.assertEqual(again.rt_studio["seq"], first + 1)
		self.assertEqual(again.rt_studio["seq"], delivery_log.current_seq(self.reader))

	def test_guest_has_no_log(self):
		frappe.set_user("Guest")
		with self.assertRaises(frappe.PermissionError):
			missed(0)

	def test_numbering_many_messages_takes_one_round_trip_and_keeps_each_users_order(self):
		from rt_studio.tests.counting import RoundTrips

		message = {"rule": "r", "subject": "s", "seq": None}
		entries = [
			(user, dict(message)) for _i in range(delivery_log.STAMP_CHUNK) for user in self.users.values()
		]
		counts = RoundTrips()
		counts.install()
		try:
			with counts.counting():
				delivery_log.stamp(entries)
		finally:
			counts.remove()
		self.assertGreater(len(entries), delivery_log.STAMP_CHUNK)  # several script calls...
		self.assertEqual(counts.redis, 1)  # ...sent together
		for user in self.users.values():
			seqs = [message["seq"] for name, message in entries if name == user]
			self.assertEqual(seqs, list(range(seqs[0], seqs[0] + delivery_log.STAMP_CHUNK)))
			self.assertEqual([m["seq"] for m in delivery_log.read(user, 0)], seqs)

	def test_the_log_keeps_the_last_200_and_the_last_day_within_a_hard_bound(self):
		user = self.reader
		message = {"rule": "r", "subject": "s", "seq": None}
		day_and_more = time.time() - delivery_log.KEEP_SECONDS - 60
		with patch.object(delivery_log.time, "time", return_value=day_and_more):
			delivery_log.stamp([(user, dict(message)) for _i in range(250)])
		self.assertEqual(len(delivery_log.read(user, 0)), 250)  # trimmed as new ones come
		delivery_log.stamp([(user, dict(message))])
		kept = delivery_log.read(user, 0)
		self.assertEqual(len(kept), delivery_log.KEEP_LAST)
		self.assertEqual([m["seq"] for m in kept], sorted(m["seq"] for m in kept))
		# younger than a day: kept beyond 200, up to the hard bound
		delivery_log.stamp([(user, dict(message)) for _i in range(300)])
		self.assertEqual(len(delivery_log.read(user, 0)), 300 + 1)
		delivery_log.stamp([(user, dict(message)) for _i in range(delivery_log.MAX_KEPT)])
		kept = delivery_log.read(user, 0)
		self.assertEqual(len(kept), delivery_log.MAX_KEPT)
		self.assertEqual(kept[-1]["seq"] - kept[0]["seq"], delivery_log.MAX_KEPT - 1)
