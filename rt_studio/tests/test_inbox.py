"""The inbox: every delivered message kept per user with seen/read/archived, the session-user-only
API, and the email escalation of messages left unread (real Email Queue rows, a controlled clock).

These tests commit (the inbox is written just before a commit) and remove what they committed.
"""

import json
from contextlib import contextmanager
from datetime import timedelta

import frappe
from frappe.utils import add_to_date, get_datetime, now_datetime

from rt_studio.api import archive, inbox, inbox_count, mark_read, mark_seen, mute
from rt_studio.delivery import escalation, inbox_cleanup
from rt_studio.delivery.escalation import escalate_due
from rt_studio.delivery.inbox import DOCTYPE, INBOX_EVENT
from rt_studio.tests.factories import (
	ORDER,
	TESTER,
	RealtimeListener,
	RTTestCase,
	make_order,
	make_rule,
	make_users,
)


@contextmanager
def outgoing_email_account():
	"""A default outgoing Email Account, as every site that sends email has (none made when the
	site has one). Nothing is sent in tests: Frappe queues the email and, under test, never
	connects (the SMTP server named here does not exist)."""
	if frappe.db.exists("Email Account", {"enable_outgoing": 1, "default_outgoing": 1}):
		yield
		return
	account = frappe.get_doc(
		{
			"doctype": "Email Account",
			"email_account_name": "rt-test-outgoing",
			"email_id": "rt-test-outgoing@example.com",
			"enable_outgoing": 1,
			"default_outgoing": 1,
			"smtp_server": "smtp.rt-test.invalid",
			"no_smtp_authentication": 1,
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	try:
		yield
	finally:
		frappe.delete_doc("Email Account", account.name, ignore_permissions=True, force=True)
		frappe.db.commit()


def as_user(user: str, fn, *args, **kwargs):
	frappe.set_user(user)
	try:
		return fn(*args, **kwargs)
	finally:
		frappe.set_user("Administrator")


class InboxTestCase(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		users = cls.enterClassContext(
			make_users({"reader": {"roles": [TESTER]}, "other": {"roles": [TESTER]}})
		)
		cls.reader, cls.other = users["reader"], users["other"]

	def setUp(self):
		super().setUp()
		self.forget_items()
		self.addCleanup(self.forget_items)

	def forget_items(self):
		frappe.db.rollback()
		frappe.db.delete(DOCTYPE, {"user": ("in", [self.reader, self.other])})
		frappe.db.delete("Email Queue", {"reference_doctype": "RT Test Order"})
		frappe.db.commit()

	def rule(self, **fields):
		audience = [
			{"audience_type": "User", "user": self.reader},
			{"audience_type": "User", "user": self.other},
		]
		return self.enterContext(make_rule(audience, commit=True, **fields))

	def deliver(self, order, times: int = 1):
		"""Save the order `times` times, each in its own committed transaction."""
		for _ in range(times):
			order.reload()
			order.qty = (order.qty or 0) + 1
			order.save()
			frappe.db.commit()

	def items(self, user: str, **kwargs) -> list[dict]:
		return as_user(user, inbox, **kwargs)["items"]


class TestInboxKeeping(InboxTestCase):
	def test_every_delivered_message_is_kept_once_per_user_exactly_as_published(self):
		rule = self.rule(message="qty {{ doc.qty }}")
		order = self.enterContext(make_order(commit=True))
		with RealtimeListener() as listener:
			self.deliver(order, times=2)
			sent = listener.received(rule=rule.name, count=4)
		published = {(s.user, s.message["seq"]): s.message for s in sent}
		for user in (self.reader, self.other):
			items = self.items(user)
			self.assertEqual(len(items), 2)
			for item in items:
				self.assertEqual((item["seen_at"], item["read_at"], item["archived_at"]), (None, None, None))
				message = {k: v for k, v in item.items() if k not in ("seen_at", "read_at", "archived_at")}
				self.assertEqual(message, published[(user, item["seq"])])
			# newest first
			self.assertGreater(items[0]["seq"], items[1]["seq"])
			self.assertEqual(as_user(user, inbox_count)["unread"], 2)

	def test_a_rolled_back_save_keeps_nothing(self):
		self.rule()
		order = self.enterContext(make_order(commit=True))
		order.qty = 5
		order.save()
		frappe.db.rollback()
		self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 0)

	def test_deleting_a_document_takes_its_messages_out_of_every_inbox_but_its_deletion_notice(self):
		self.rule()
		delete_rule = self.rule(event="Delete", subject="Deleted {{ doc.name }}")
		kept = self.enterContext(make_order(commit=True))
		order = self.enterContext(make_order(commit=True))
		self.deliver(kept)
		self.deliver(order, times=2)
		self.assertEqual(as_user(self.reader, inbox_count)["unread"], 3)
		frappe.delete_doc(ORDER, order.name)
		frappe.db.commit()
		items = self.items(self.reader)
		self.assertEqual(
			[(item["rule"], item["docname"]) for item in items],
			[(delete_rule.name, order.name), (items[1]["rule"], kept.name)],
		)
		self.assertEqual(as_user(self.reader, inbox_count)["unread"], 2)

	def test_signals_for_the_desk_are_not_kept(self):
		self.rule(display="Refresh Form")
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 0)


class TestInboxApi(InboxTestCase):
	def test_other_users_items_are_unreachable(self):
		self.rule()
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		[mine] = self.items(self.reader)
		[theirs] = self.items(self.other)
		# the other user names the reader's seq: nothing of the reader's changes
		for call in (mark_seen, mark_read, archive):
			as_user(self.other, call, json.dumps([mine["seq"]]))
		row = frappe.db.get_value(DOCTYPE, {"user": self.reader}, ["seen_at", "read_at", "archived_at"])
		self.assertEqual(row, (None, None, None))
		# (the seqs are per user: theirs may equal mine, and then it is theirs that changed)
		if theirs["seq"] != mine["seq"]:
			self.assertEqual(self.items(self.other, status="archived"), [])
		self.assertEqual(as_user(self.reader, inbox_count)["unread"], 1)

	def test_seen_read_archived_and_the_status_filters(self):
		self.rule()
		order = self.enterContext(make_order(commit=True))
		self.deliver(order, times=4)
		seqs = [item["seq"] for item in self.items(self.reader)]
		self.assertEqual(len(seqs), 4)
		as_user(self.reader, mark_seen, json.dumps(seqs[:2]))
		self.assertEqual(as_user(self.reader, inbox_count)["unread"], 4)
		self.assertEqual(as_user(self.reader, mark_read, json.dumps([seqs[0]]))["unread"], 3)
		self.assertEqual(as_user(self.reader, archive, json.dumps([seqs[1]]))["unread"], 2)
		unread = [item["seq"] for item in self.items(self.reader, status="unread")]
		self.assertEqual(unread, seqs[2:])
		self.assertEqual([item["seq"] for item in self.items(self.reader, status="archived")], [seqs[1]])
		listed = {item["seq"]: item for item in self.items(self.reader)}
		self.assertEqual(sorted(listed, reverse=True), [seqs[0], *seqs[2:]])
		self.assertIsNotNone(listed[seqs[0]]["read_at"])
		self.assertIsNotNone(listed[seqs[0]]["seen_at"])  # reading is seeing
		self.assertIsNone(listed[seqs[2]]["seen_at"])
		self.assertEqual(as_user(self.reader, mark_read, "all")["unread"], 0)
		self.assertEqual(self.items(self.reader, status="unread"), [])
		# the other user's inbox is untouched by all of it
		self.assertEqual(as_user(self.other, inbox_count)["unread"], 4)

	def test_every_tab_of_the_user_hears_the_new_unread_count_after_the_commit(self):
		self.rule()
		order = self.enterContext(make_order(commit=True))
		self.deliver(order, times=2)
		seqs = [item["seq"] for item in self.items(self.reader)]
		with RealtimeListener() as listener:
			as_user(self.reader, mark_read, json.dumps([seqs[0]]))
			self.assertEqual(listener.of_event(INBOX_EVENT, f"user:{self.reader}"), [])  # not before
			frappe.db.commit()
			[sent] = listener.of_event(INBOX_EVENT, f"user:{self.reader}")
		self.assertEqual(sent.message, {"read": [seqs[0]], "unread": 1, "latest": seqs[0]})

	def test_pages_are_stable_while_messages_arrive(self):
		self.rule()
		order = self.enterContext(make_order(commit=True))
		self.deliver(order, times=5)
		first = as_user(self.reader, inbox, limit=2)
		self.deliver(order, times=3)  # three newer messages arrive between the pages
		second = as_user(self.reader, inbox, before=first["next_before"], limit=2)
		third = as_user(self.reader, inbox, before=second["next_before"], limit=2)
		pages = [[item["seq"] for item in page["items"]] for page in (first, second, third)]
		all_five = sorted([seq for page in pages for seq in page], reverse=True)
		self.assertEqual([len(page) for page in pages], [2, 2, 1])
		self.assertEqual(len(set(all_five)), 5)
		self.assertEqual(pages[0] + pages[1] + pages[2], all_five)
		self.assertIsNone(third["next_before"])
		self.assertEqual(first["unread"], 5)
		self.assertEqual(third["unread"], 8)

	def test_a_message_about_a_document_the_user_may_no_longer_read_is_not_listed(self):
		self.rule()
		hidden = self.enterContext(make_order(commit=True))
		shown = self.enterContext(make_order(commit=True))
		self.deliver(hidden)
		self.deliver(shown)
		self.assertEqual(len(self.items(self.reader)), 2)
		# the reader loses read permission on one document: a user permission on another order
		frappe.get_doc(
			{
				"doctype": "User Permission",
				"user": self.reader,
				"allow": "RT Test Order",
				"for_value": shown.name,
			}
		).insert()
		frappe.db.commit()
		self.addCleanup(self.drop_user_permissions)
		self.assertEqual([item["docname"] for item in self.items(self.reader)], [shown.name])
		# and the other user, who kept permission, still sees both
		self.assertEqual(len(self.items(self.other)), 2)

	def drop_user_permissions(self):
		frappe.db.delete("User Permission", {"user": self.reader, "allow": "RT Test Order"})
		frappe.db.commit()
		frappe.clear_cache(user=self.reader)

	def test_guest_has_no_inbox(self):
		with self.assertRaises(frappe.PermissionError):
			as_user("Guest", inbox)
		with self.assertRaises(frappe.PermissionError):
			as_user("Guest", mark_read, "all")

	def test_bad_input_is_refused_with_a_clear_error(self):
		with self.assertRaises(frappe.ValidationError) as raised:
			as_user(self.reader, mark_read, '["1; drop table"]')
		self.assertIn("seqs must be a list of message numbers", str(raised.exception))
		with self.assertRaises(frappe.ValidationError):
			as_user(self.reader, inbox, status="everything")


class TestEscalation(InboxTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.enterClassContext(outgoing_email_account())

	def emails(self, order) -> list[dict]:
		rows = frappe.get_all(
			"Email Queue", filters={"reference_name": order.name}, fields=["name", "message", "status"]
		)
		for row in rows:
			row.recipients = frappe.get_all(
				"Email Queue Recipient", filters={"parent": row.name}, pluck="recipient"
			)
		return rows

	def sent_at(self, user: str):
		return get_datetime(frappe.db.get_value(DOCTYPE, {"user": user}, "sent_at"))

	def test_an_unread_message_is_emailed_once_when_its_time_comes(self):
		rule = self.rule(subject="Order {{ doc.name }} needs you", escalate_after_minutes=30)
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		due = self.sent_at(self.reader) + timedelta(minutes=30)
		escalate_due(now=due - timedelta(minutes=1))
		self.assertEqual(self.emails(order), [])
		as_user(self.other, mark_read, "all")  # the other user read it in time: no email for them
		frappe.db.commit()
		escalate_due(now=due)
		[email] = self.emails(order)
		self.assertEqual(email.recipients, [self.reader])
		self.assertIn(order.name, email.message)
		subject = frappe.db.get_value("Email Queue", email.name, "message")
		self.assertIn(f"Order {order.name} needs you", subject)
		self.assertEqual(frappe.db.get_value(DOCTYPE, {"user": self.reader}, "escalation"), escalation.SENT)
		# never twice
		escalate_due(now=due + timedelta(hours=1))
		self.assertEqual(len(self.emails(order)), 1)
		self.assertEqual(rule.name, frappe.db.get_value(DOCTYPE, {"user": self.reader}, "rule"))

	def test_a_muted_rule_is_not_emailed(self):
		rule = self.rule(escalate_after_minutes=10)
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		as_user(self.reader, mute, rule=rule.name)
		frappe.db.commit()
		self.addCleanup(self.unmute, rule.name)
		escalate_due(now=self.sent_at(self.reader) + timedelta(minutes=10))
		self.assertEqual([email.recipients for email in self.emails(order)], [[self.other]])
		self.assertEqual(frappe.db.get_value(DOCTYPE, {"user": self.reader}, "escalation"), escalation.MUTED)

	def unmute(self, rule: str):
		from rt_studio.api import unmute

		as_user(self.reader, unmute, rule=rule)
		frappe.db.commit()

	def test_an_archived_message_is_not_emailed(self):
		self.rule(escalate_after_minutes=10)
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		[item] = self.items(self.reader)
		as_user(self.reader, archive, json.dumps([item["seq"]]))
		frappe.db.commit()
		escalate_due(now=self.sent_at(self.reader) + timedelta(minutes=10))
		self.assertEqual([email.recipients for email in self.emails(order)], [[self.other]])

	def test_the_send_window_holds_the_email_until_it_opens(self):
		self.rule(escalate_after_minutes=10, send_after="09:00", send_before="17:00")
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		# sent at 19:50 (whatever the clock says now): due at 20:00, outside the window
		evening = self.sent_at(self.reader).replace(hour=19, minute=50, second=0, microsecond=0)
		frappe.db.set_value(DOCTYPE, {"user": ("in", [self.reader, self.other])}, "sent_at", evening)
		frappe.db.commit()
		escalate_due(now=add_to_date(evening, minutes=10))
		self.assertEqual(self.emails(order), [])
		next_morning = add_to_date(evening, hours=13, minutes=10)  # 09:00 the next day
		escalate_due(now=add_to_date(next_morning, minutes=-1))
		self.assertEqual(self.emails(order), [])
		escalate_due(now=next_morning)
		self.assertEqual(
			sorted(r for email in self.emails(order) for r in email.recipients),
			sorted([self.reader, self.other]),
		)

	def test_a_disabled_rule_emails_nothing_and_an_old_message_is_left_alone(self):
		rule = self.rule(escalate_after_minutes=10)
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		due = self.sent_at(self.reader) + timedelta(minutes=10)
		frappe.db.set_value("Realtime Rule", rule.name, "enabled", 0)
		frappe.db.commit()
		rule.clear_cache()
		escalate_due(now=due)
		self.assertEqual(self.emails(order), [])
		frappe.db.set_value("Realtime Rule", rule.name, "enabled", 1)
		frappe.db.commit()
		rule.clear_cache()
		# enabled again eight days later: last week's unread messages are not emailed now
		escalate_due(now=due + timedelta(days=8))
		self.assertEqual(self.emails(order), [])
		escalate_due(now=due)
		self.assertEqual(len(self.emails(order)), 2)

	def test_a_rule_without_escalation_never_emails(self):
		self.rule()
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		escalate_due(now=add_to_date(now_datetime(), days=30))
		self.assertEqual(self.emails(order), [])


class TestInboxCleanUp(InboxTestCase):
	def rows(self, user: str, count: int, sent_at, archived_at=None, first_seq: int = 1) -> None:
		values = [
			(
				frappe.generate_hash(length=10),
				user,
				first_seq + i,
				"rt-test-clean",
				json.dumps({"seq": first_seq + i, "rule": "rt-test-clean", "display": "Alert"}),
				sent_at,
				archived_at,
				sent_at,
				sent_at,
			)
			for i in range(count)
		]
		fields = ["name", "user", "seq", "rule", "payload", "sent_at", "archived_at", "creation", "modified"]
		frappe.db.bulk_insert(DOCTYPE, fields, values)
		frappe.db.commit()

	def seqs(self, user: str) -> list[int]:
		return frappe.get_all(DOCTYPE, filters={"user": user}, pluck="seq", order_by="seq asc")

	def test_old_archived_and_beyond_the_newest_thousand_go(self):
		now = now_datetime()
		self.rows(self.reader, 3, now - timedelta(days=inbox_cleanup.KEEP_DAYS + 1), first_seq=1)
		self.rows(
			self.reader,
			2,
			now - timedelta(days=40),
			now - timedelta(days=inbox_cleanup.KEEP_ARCHIVED_DAYS + 1),
			10,
		)
		self.rows(self.reader, 2, now - timedelta(days=40), first_seq=20)  # old enough, not archived: kept
		crowd = inbox_cleanup.MAX_ITEMS_PER_USER + 5
		self.rows(self.other, crowd, now, first_seq=100)
		inbox_cleanup.clean_up()
		self.assertEqual(self.seqs(self.reader), [20, 21])
		kept = self.seqs(self.other)
		self.assertEqual(len(kept), inbox_cleanup.MAX_ITEMS_PER_USER)
		self.assertEqual((kept[0], kept[-1]), (105, 100 + crowd - 1))  # the newest kept
