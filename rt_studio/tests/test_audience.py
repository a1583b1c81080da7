"""Who receives a rule's message on a real site, and that nobody receives what they cannot read."""

from datetime import datetime
from unittest.mock import patch

import frappe
from frappe.desk.form import assign_to
from frappe.desk.form.document_follow import follow_document

from rt_studio.api import preview
from rt_studio.delivery import trace
from rt_studio.people.site import site_now
from rt_studio.save import handler
from rt_studio.tests.factories import (
	BYSTANDER,
	ORDER,
	SECRET_READER,
	TESTER,
	RTTestCase,
	make_channel,
	make_rule,
	make_users,
	new_order,
	purge_order,
)


class TestAudience(RTTestCase):
	"""A matrix of users around one order the `owner` user created.

	reader, secret (may read the permlevel-1 field), commenter: can read every order;
	noperm: a desk user without permission on the DocType; restricted: may read orders but a
	User Permission limits them to another order; shared: no permission, gets the document
	shared; disabled: a disabled user who otherwise could read it.
	"""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(
			make_users(
				{
					"owner": {"roles": [TESTER]},
					"reader": {"roles": [TESTER], "document_follow_notify": 1},
					"secret": {"roles": [TESTER, SECRET_READER]},
					"commenter": {"roles": [TESTER]},
					"noperm": {"roles": [BYSTANDER]},
					"restricted": {"roles": [TESTER]},
					"shared": {"roles": [BYSTANDER]},
					"disabled": {"roles": [TESTER], "enabled": 0},
				}
			)
		)
		other = new_order(title="someone else's order").insert()
		cls.addClassCleanup(lambda: (purge_order(other.name), frappe.db.commit()))
		frappe.get_doc(
			{
				"doctype": "User Permission",
				"user": cls.users["restricted"],
				"allow": ORDER,
				"for_value": other.name,
			}
		).insert(ignore_permissions=True)
		frappe.db.commit()

	def setUp(self):
		super().setUp()
		with self.set_user(self.users["owner"]):
			self.doc = new_order(title="Bikes", owner_user=self.users["reader"]).insert()
		self.doc.append("items", {"user": self.users["secret"], "qty": 1})
		self.doc.append("items", {"user": self.users["noperm"], "qty": 2})
		self.doc.save()

	def ours(self, users) -> list[str]:
		"""Our test users among `users`, by label."""
		labels = {email: label for label, email in self.users.items()}
		return sorted(labels[u] for u in users if u in labels)

	def receivers(self, *audience: dict, actor: str = "Administrator", **fields) -> list[str]:
		"""Labels of our users who get the message when `actor` saves the order."""
		rule = self.enterContext(make_rule(list(audience), event="Save", **fields))
		self.doc = frappe.get_doc(ORDER, self.doc.name)  # fresh, with _assign as saved
		with self.set_user(actor), self.action() as save:
			self.doc.qty += 1
			self.doc.save(ignore_permissions=True)
		users = save.users(rule.name)
		for user in users:  # whatever the audience: never someone who cannot read it
			self.assertTrue(frappe.has_permission(ORDER, "read", doc=self.doc.name, user=user), user)
		return self.ours(users)

	def verdicts(self, rule_name: str) -> dict[str, str]:
		result = preview(rule_name, self.doc.name)
		labels = {email: label for label, email in self.users.items()}
		return {labels[r["user"]]: r["verdict"] for r in result["recipients"] if r.get("user") in labels}

	def test_owner(self):
		self.assertEqual(self.receivers({"audience_type": "Owner"}), ["owner"])

	def test_owner_who_acts_is_excluded_unless_asked(self):
		self.assertEqual(self.receivers({"audience_type": "Owner"}, actor=self.users["owner"]), [])
		self.assertEqual(
			self.receivers({"audience_type": "Owner"}, actor=self.users["owner"], exclude_actor=0), ["owner"]
		)

	def test_actor(self):
		self.assertEqual(
			self.receivers({"audience_type": "Actor"}, actor=self.users["reader"], exclude_actor=0),
			["reader"],
		)

	def test_assignees(self):
		assign_to.add(
			{
				"assign_to": [self.users["reader"], self.users["secret"]],
				"doctype": ORDER,
				"name": self.doc.name,
			}
		)
		self.assertEqual(self.receivers({"audience_type": "Assignees"}), ["reader", "secret"])

	def test_followers_are_owner_assignees_follows_and_commenters(self):
		assign_to.add({"assign_to": [self.users["secret"]], "doctype": ORDER, "name": self.doc.name})
		self.assertTrue(follow_document(ORDER, self.doc.name, self.users["reader"]))
		with self.set_user(self.users["commenter"]):
			self.doc.add_comment("Comment", "When do they arrive?")
		self.assertEqual(
			self.receivers({"audience_type": "Followers"}), ["commenter", "owner", "reader", "secret"]
		)

	def test_user_field(self):
		self.assertEqual(
			self.receivers({"audience_type": "User Field", "user_field": "owner_user"}), ["reader"]
		)

	def test_user_field_in_child_rows_skips_users_who_cannot_read(self):
		self.assertEqual(
			self.receivers({"audience_type": "User Field", "user_field": "items.user"}), ["secret"]
		)

	def test_role_leaves_out_disabled_users_and_users_who_cannot_read(self):
		self.assertEqual(
			self.receivers({"audience_type": "Role", "role": TESTER}),
			["commenter", "owner", "reader", "secret"],
		)

	def test_disabled_user_named_directly_gets_nothing(self):
		rule_rows = [{"audience_type": "User", "user": self.users["disabled"]}]
		self.assertEqual(self.receivers(*rule_rows), [])
		rule = self.enterContext(make_rule(rule_rows))
		self.assertEqual(self.verdicts(rule.name), {"disabled": "disabled user"})

	def test_channel_members_who_can_read(self):
		channel = self.enterContext(
			make_channel(
				[
					{"member_type": "User", "user": self.users["reader"]},
					{"member_type": "User", "user": self.users["noperm"]},
					{"member_type": "Role", "role": SECRET_READER},
				]
			)
		)
		self.assertEqual(
			self.receivers({"audience_type": "Channel", "channel": channel.name}), ["reader", "secret"]
		)

	def test_read_permission_matrix(self):
		frappe.share.add(ORDER, self.doc.name, self.users["shared"], read=1)
		rows = [
			{"audience_type": "User", "user": self.users[label]}
			for label in ("reader", "noperm", "restricted", "shared")
		]
		self.assertEqual(self.receivers(*rows), ["reader", "shared"])
		rule = self.enterContext(make_rule(rows))
		self.assertEqual(
			self.verdicts(rule.name),
			{
				"reader": "deliver",
				"noperm": "no read permission",
				"restricted": "no read permission",
				"shared": "deliver",
			},
		)

	def test_everyone_never_reaches_a_user_who_cannot_read(self):
		"""Decided within the save, as on a site of up to LARGE_AUDIENCE users; on a larger site
		Everyone goes to the delivery job, which TestLivedInSite checks in a real worker."""
		frappe.share.add(ORDER, self.doc.name, self.users["shared"], read=1)
		with patch.object(handler, "LARGE_AUDIENCE", frappe.db.count("User") + 1):
			receivers = self.receivers({"audience_type": "Everyone"})
		self.assertEqual(receivers, ["commenter", "owner", "reader", "secret", "shared"])

	def test_fields_are_filtered_by_permlevel_per_recipient(self):
		frappe.share.add(ORDER, self.doc.name, self.users["shared"], read=1)
		self.doc.secret = "unit price 4.20"
		self.doc.save()
		rule = self.enterContext(
			make_rule(
				[
					{"audience_type": "User", "user": self.users[label]}
					for label in ("reader", "secret", "shared")
				],
				fields="title, secret",
			)
		)
		with self.action() as save:
			self.doc.qty += 1
			self.doc.save()
		fields = {self.ours([s.user])[0]: s.message["fields"] for s in save.sent if s.rule == rule.name}
		self.assertEqual(
			fields,
			{
				"reader": {"title": "Bikes"},
				"secret": {"title": "Bikes", "secret": "unit price 4.20"},
				"shared": {"title": "Bikes"},
			},
		)

	def test_one_user_however_spelled_is_one_recipient_and_a_stranger_is_no_such_user(self):
		reader = self.users["reader"]
		# `title` is a Data field: Frappe keeps what was typed, case and spaces included
		self.doc.db_set("title", f"  {reader.upper()} ")
		rows = (
			{"audience_type": "User Field", "user_field": "title"},
			{"audience_type": "User", "user": reader},
			{"audience_type": "User Field", "user_field": "remarks"},
		)
		self.doc.db_set("remarks", "nobody-at-all@example.com")
		rule = self.enterContext(make_rule(list(rows), event="Save"))
		self.doc = frappe.get_doc(ORDER, self.doc.name)
		with self.set_user(reader), self.action() as save:
			self.doc.qty += 1
			self.doc.save(ignore_permissions=True)
		self.assertEqual(save.users(rule.name), [], "the actor is excluded, however it is spelled")
		with self.action() as save:
			self.doc.qty += 1
			self.doc.save()
		self.assertEqual(save.users(rule.name), [reader], "one delivery, to the user's own name")
		verdicts = {r["user"]: r["verdict"] for r in preview(rule.name, self.doc.name)["recipients"]}
		self.assertEqual(verdicts, {reader: "deliver", "nobody-at-all@example.com": "no such user"})
		frappe.db.rollback()  # writes the queued trace (as rolled back)
		[entry, *_] = trace.read(rule.name)
		self.assertEqual(entry["verdicts"], {"deliver": 1, "no such user": 1})
		self.assertEqual(entry["unknown_users"], ["nobody-at-all@example.com"])

	def test_a_trace_entry_is_timed_in_the_site_time_zone_with_its_offset(self):
		# the entry keeps the clock while queued and is written in the site's zone when the
		# transaction ends (committed or, here, rolled back)
		rule = self.enterContext(make_rule(event="Save", condition="doc.qty < 0"))
		before = site_now()
		self.doc.qty += 1
		self.doc.save()
		frappe.db.rollback()
		[entry, *_] = trace.read(rule.name)
		self.assertEqual(entry["reason"], "rolled back, nothing sent (condition is false)")
		when = datetime.fromisoformat(entry["time"])
		self.assertEqual(when.utcoffset(), before.utcoffset())
		self.assertLess(abs((when - before).total_seconds()), 60, (entry["time"], before.isoformat()))
