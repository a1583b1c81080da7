# Copyright (c) 2026, RT Studio contributors
# See license.txt

"""Channels on a real site: members, publish roles, posting, permissions (bench run-tests)."""

import frappe

from rt_studio import api
from rt_studio.engine.audience import channel_members
from rt_studio.people.channels import load_channel
from rt_studio.people.permissions import channel_query_conditions, member_of
from rt_studio.people.site import FrappeDirectory
from rt_studio.tests.counting import QueryCounter
from rt_studio.tests.crowd import make_crowd
from rt_studio.tests.factories import (
	BYSTANDER,
	ORDER,
	PUBLISHER,
	SECRET_READER,
	TESTER,
	WIRE_KEYS,
	RealtimeListener,
	RTTestCase,
	make_channel,
	make_users,
	new_order,
)

# Channels link to these; the test runner must not create Frappe's own test records for them.
test_ignore = ["DocType", "Role", "User"]


def channel_messages(channel: str) -> list[tuple[str, dict]]:
	"""(room, message) of the channel's posts waiting in RT Studio's after-commit outbox."""
	log = getattr(frappe.local, "rt_studio_outbox", None) or []
	return [
		(room, message)
		for _event, message, room in log
		if isinstance(message, dict) and message.get("channel") == channel
	]


class TestRealtimeChannel(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(
			make_users(
				{
					"member": {"roles": [TESTER]},
					"role_member": {"roles": [TESTER, SECRET_READER]},
					"outsider": {"roles": [BYSTANDER]},
					"publisher": {"roles": [BYSTANDER, PUBLISHER]},
					"disabled": {"roles": [TESTER], "enabled": 0},
				}
			)
		)

	def channel(self, commit: bool = False, **fields):
		members = [
			{"member_type": "User", "user": self.users["member"]},
			{"member_type": "User", "user": self.users["disabled"]},
			{"member_type": "Role", "role": SECRET_READER},
		]
		return self.enterContext(make_channel(members, commit=commit, **fields))

	def ours(self, users) -> list[str]:
		labels = {email: label for label, email in self.users.items()}
		return sorted(labels[u] for u in users if u in labels)

	def members(self, name: str) -> list[str]:
		return self.ours(channel_members(load_channel(name), FrappeDirectory()))

	def post(self, user: str, channel: str, text: str = "Hello", **kwargs) -> list[str]:
		"""Post as `user`; the labels of the users it was queued for."""
		before = len(channel_messages(channel))
		with self.set_user(self.users.get(user, user)):
			api.publish(channel, text, **kwargs)
		rooms = [room for room, _m in channel_messages(channel)[before:]]
		return self.ours(room.removeprefix("user:") for room in rooms)

	def test_members_by_user_and_role(self):
		channel = self.channel()
		self.assertEqual(self.members(channel.name), ["disabled", "member", "role_member"])

	def test_members_by_reference_document_are_its_readers(self):
		order = new_order().insert()
		channel = self.enterContext(
			make_channel(reference_doctype="RT Test Order", reference_name=order.name)
		)
		self.assertEqual(self.members(channel.name), ["member", "role_member"])

	def test_reference_document_must_exist(self):
		with self.assertRaises(frappe.ValidationError) as raised:
			self.enterContext(make_channel(reference_doctype="RT Test Order", reference_name="no-such-order"))
		self.assertIn("Reference Name", str(raised.exception))

	def test_member_posts_to_every_enabled_member(self):
		channel = self.channel()
		self.assertEqual(self.post("member", channel.name, "Lunch <b>now</b>"), ["member", "role_member"])
		_room, message = channel_messages(channel.name)[-1]
		self.assertEqual(set(message), WIRE_KEYS)
		self.assertEqual((message["channel"], message["actor"]), (channel.name, self.users["member"]))
		self.assertEqual(message["message"], "Lunch &lt;b&gt;now&lt;/b&gt;")
		event = next(e for e, m, r in frappe.local.rt_studio_outbox if m is message)
		self.assertEqual(event, "rt_studio_channel")
		self.assertIsNone(message["rule"])

	def test_non_member_cannot_post(self):
		channel = self.channel()
		with self.assertRaises(frappe.PermissionError):
			self.post("outsider", channel.name)
		self.assertEqual(channel_messages(channel.name), [])

	def test_publish_roles_decide_who_may_post(self):
		channel = self.channel(publish_roles=[{"role": PUBLISHER}])
		with self.assertRaises(frappe.PermissionError):
			self.post("member", channel.name)
		self.assertEqual(self.post("publisher", channel.name), ["member", "role_member"])

	def test_only_a_system_manager_chooses_the_event_name(self):
		channel = self.channel()
		with self.assertRaises(frappe.PermissionError):
			self.post("member", channel.name, event="list_update")
		self.assertEqual(
			self.post("Administrator", channel.name, event="custom_event"), ["member", "role_member"]
		)

	def test_rate_limit_per_publisher(self):
		channel = self.channel(rate_limit_count=2, rate_limit_seconds=60)
		self.post("member", channel.name)
		self.post("member", channel.name)
		with self.assertRaises(frappe.RateLimitExceededError):
			self.post("member", channel.name)
		self.assertEqual(self.post("role_member", channel.name), ["member", "role_member"])

	def test_removed_member_gets_nothing_after_the_removal_commits(self):
		channel = self.channel(commit=True)
		with RealtimeListener() as listener:
			self.post("Administrator", channel.name, "before")
			frappe.db.commit()
			before = listener.received(channel=channel.name)
			channel.reload()
			channel.members = [m for m in channel.members if m.user != self.users["member"]]
			channel.save()
			frappe.db.commit()
			self.post("Administrator", channel.name, "after")
			frappe.db.commit()
			after = listener.received(channel=channel.name)
		self.assertEqual(self.ours(s.user for s in before), ["member", "role_member"])
		self.assertEqual(self.ours(s.user for s in after), ["role_member"])

	def test_only_members_can_read_a_channel(self):
		channel = self.channel()
		readers = {
			label: frappe.has_permission("Realtime Channel", "read", doc=channel, user=user)
			for label, user in self.users.items()
			if label != "disabled"
		}
		self.assertEqual(
			readers, {"member": True, "role_member": True, "outsider": False, "publisher": False}
		)
		for label in ("member", "role_member", "outsider"):
			with self.set_user(self.users[label]):
				listed = frappe.get_list("Realtime Channel", pluck="name")
			self.assertEqual(channel.name in listed, label != "outsider", label)

	def test_the_channel_list_decides_reference_documents_in_bulk(self):
		"""A list of channels reads the same for 30 channels with a reference document as for 1
		(read access to the references is decided per DocType, not per channel), and lists each
		channel whose reference the user may read as `frappe.has_permission` says (shares too)."""
		costs = {}
		for count in (1, 30):
			orders = [new_order().insert() for _ in range(count)]
			for order in orders[::3]:
				frappe.share.add(ORDER, order.name, self.users["outsider"], read=1)
			channels = [
				self.enterContext(make_channel(reference_doctype=ORDER, reference_name=order.name))
				for order in orders
			]
			for label in ("member", "outsider"):
				user = self.users[label]
				channel_query_conditions(user)  # warm: the user's roles and permissions, the metas
				with QueryCounter() as queries:
					channel_query_conditions(user)
				costs[label, count] = queries.count
				with self.set_user(user):
					listed = set(frappe.get_list("Realtime Channel", pluck="name", limit_page_length=0))
				readable = [frappe.has_permission(ORDER, "read", doc=order, user=user) for order in orders]
				self.assertEqual(
					{c.name for c in channels} & listed,
					{c.name for c, ok in zip(channels, readable, strict=True) if ok},
					label,
				)
				self.assertEqual(sum(readable), count if label == "member" else len(orders[::3]), label)
		for label in ("member", "outsider"):
			self.assertEqual(costs[label, 1], costs[label, 30], f"{label}: {costs}")

	def test_only_system_managers_change_channels(self):
		channel = self.channel()
		self.assertFalse(
			frappe.has_permission("Realtime Channel", "write", doc=channel, user=self.users["member"])
		)

	def test_membership_of_one_user_is_decided_without_listing_the_members(self):
		order = new_order().insert()
		channel = self.enterContext(make_channel(reference_doctype=ORDER, reference_name=order.name))
		found = load_channel(channel.name)
		frappe.has_permission("Realtime Channel", "read", doc=channel, user=self.users["outsider"])  # warm
		costs = []
		for size in (0, 150):
			with make_crowd(size, (TESTER,), commit=False) as crowd:
				everyone = [*self.users.values(), *crowd]
				members = set(channel_members(found, FrappeDirectory()))
				# the same answer as the member list, for every user
				self.assertEqual({u for u in everyone if member_of(found, u)}, members & set(everyone))
				with QueryCounter() as queries:
					readable = [
						frappe.has_permission("Realtime Channel", "read", doc=channel, user=self.users[label])
						for label in ("member", "outsider")
					]
				self.assertEqual(readable, [True, False])
				costs.append((queries.count, queries.rows))
		self.assertEqual(costs[0], costs[1], "a check reads as much with 150 more users on the site")
		for label in ("member", "outsider"):
			with self.set_user(self.users[label]):
				listed = frappe.get_list("Realtime Channel", pluck="name")
			self.assertEqual(channel.name in listed, label != "outsider", label)
