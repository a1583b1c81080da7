"""Idempotent channel posts: a repeated key within a day sends nothing and returns the first result."""

import frappe

from rt_studio.api import publish
from rt_studio.tests.factories import RealtimeListener, RTTestCase, make_channel, make_users


class TestIdempotentPosts(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(make_users({"member": {}, "poster": {}}))

	def channel(self):
		members = [{"member_type": "User", "user": user} for user in self.users.values()]
		return self.enterContext(make_channel(members, commit=True))

	def post(self, channel, text: str, key: str | None, user: str | None = None) -> dict:
		frappe.set_user(user or self.users["poster"])
		try:
			result = publish(channel.name, text, idempotency_key=key)
			frappe.db.commit()
			return result
		finally:
			frappe.set_user("Administrator")

	def test_a_retry_with_the_same_key_sends_nothing_and_returns_the_first_result(self):
		channel = self.channel()
		key = frappe.generate_hash()
		with RealtimeListener() as listener:
			first = self.post(channel, "deploy at five", key)
			again = self.post(channel, "deploy at five", key)
			other = self.post(channel, "deploy at six", frappe.generate_hash())
			received = listener.received(channel=channel.name, count=4)
		self.assertEqual(first, {"channel": channel.name, "sent": 2, "muted": 0})
		self.assertEqual(again, first)
		self.assertEqual(other, first)
		texts = sorted(sent.message["message"] for sent in received)
		self.assertEqual(texts, ["deploy at five"] * 2 + ["deploy at six"] * 2)

	def test_a_key_belongs_to_its_poster_and_channel(self):
		channel, second = self.channel(), self.channel()
		key = frappe.generate_hash()
		with RealtimeListener() as listener:
			self.post(channel, "one", key)
			self.post(channel, "two", key, user=self.users["member"])
			self.post(second, "three", key)
			received = listener.received(count=6)
		self.assertEqual(sorted({s.message["message"] for s in received}), ["one", "three", "two"])

	def test_a_rolled_back_post_forgets_its_key(self):
		channel = self.channel()
		key = frappe.generate_hash()
		with RealtimeListener() as listener:
			frappe.set_user(self.users["poster"])
			publish(channel.name, "lost", idempotency_key=key)
			frappe.db.rollback()
			frappe.set_user("Administrator")
			self.post(channel, "retried", key)
			received = listener.received(channel=channel.name, count=2)
		self.assertEqual([s.message["message"] for s in received], ["retried", "retried"])

	def test_a_key_too_long_is_refused(self):
		channel = self.channel()
		with self.assertRaisesRegex(frappe.ValidationError, "idempotency_key is 201 characters long"):
			self.post(channel, "x", "k" * 201)

	def test_a_retry_after_redis_lost_its_data_sends_nothing(self):
		# a cache Redis restart (or its data evicted) must not make a retried post go out twice
		channel = self.channel()
		key = frappe.generate_hash()
		with RealtimeListener() as listener:
			first = self.post(channel, "deploy at five", key)
			frappe.cache.delete_keys("rt_studio:")  # what a restart of the cache Redis loses
			again = self.post(channel, "deploy at five", key)
			received = listener.received(channel=channel.name, count=4, quiet=1.0)
		self.assertEqual(again, first)
		self.assertEqual([s.message["message"] for s in received], ["deploy at five"] * 2)
