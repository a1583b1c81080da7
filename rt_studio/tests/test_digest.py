"""The digest on a real site: a daily email of a person's unread messages in their own morning (a
user in UTC+05:30 and one in UTC-05:00, a controlled clock), a real Email Queue row, once per period,
never empty, without messages read, archived, already emailed by escalation, or about a document the
person may no longer read.

These tests commit (the inbox is written just before a commit) and remove what they committed.
"""

import email
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import frappe
from frappe.utils import get_system_timezone

from rt_studio.api import set_digest, set_preference
from rt_studio.delivery import escalation
from rt_studio.delivery.digest import send_due
from rt_studio.delivery.inbox import DOCTYPE
from rt_studio.tests.factories import ORDER, make_order
from rt_studio.tests.test_inbox import outgoing_email_account
from rt_studio.tests.test_preferences import ZonedUsersTestCase

#: A December day (New York is UTC-05:00 then), 00:00 UTC; the moments below are in UTC.
DAY = datetime(2026, 12, 7)
#: When the test's messages were sent: the evening before DAY, UTC, a minute apart from here.
SENT = DAY - timedelta(hours=3)


def site_time(utc: datetime) -> datetime:
	"""A moment given in UTC as `send_due` takes it: naive, in the site's time zone."""
	return utc.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(get_system_timezone())).replace(tzinfo=None)


def html_of(mime: str) -> str:
	"""The HTML part of an Email Queue row's message, decoded."""
	for part in email.message_from_string(mime).walk():
		if part.get_content_type() == "text/html":
			return part.get_payload(decode=True).decode()
	return ""


class TestDigest(ZonedUsersTestCase):
	"""The reader lives in India (UTC+05:30), the other user in New York (UTC-05:00); both chose a
	daily digest and have had the one of December 6 (their own day)."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.enterClassContext(outgoing_email_account())

	def setUp(self):
		super().setUp()
		for user in (self.reader, self.other):
			self.set(user, set_digest, "Daily")
		frappe.db.set_value(
			"Realtime Preference",
			{"digest": "Daily", "user": ("in", [self.reader, self.other])},
			"digest_sent_for",
			(DAY - timedelta(days=1)).date().isoformat(),
		)
		frappe.db.delete(
			"Email Queue", {"reference_doctype": ("is", "not set"), "message": ("like", "%RT digest%")}
		)
		frappe.db.commit()

	def digests(self, user: str) -> list:
		queued = frappe.get_all(
			"Email Queue Recipient", filters={"recipient": user}, pluck="parent", order_by="creation"
		)
		messages = frappe.get_all(
			"Email Queue", filters={"name": ("in", queued or [""])}, pluck="message", order_by="creation"
		)
		return [html for html in map(html_of, messages) if "RT digest" in html]

	def messages(self, count: int, **fields) -> tuple:
		"""A new order saved `count` times and a rule of its own (it fires for no other order:
		a rule of an earlier call must not speak of this one), its messages sent at SENT."""
		order = self.enterContext(make_order(commit=True))
		rule = self.rule(
			subject="RT digest {{ doc.name }} qty {{ doc.qty }}",
			condition=f"doc.name == {order.name!r}",
			**fields,
		)
		self.deliver(order, times=count)
		users = [self.reader, self.other]
		for user in users:
			names = frappe.get_all(
				DOCTYPE, filters={"reference_name": order.name, "user": user}, pluck="name", order_by="seq"
			)
			for minutes, name in enumerate(names):
				frappe.db.set_value(DOCTYPE, name, "sent_at", SENT + timedelta(minutes=minutes))
		frappe.db.commit()
		# a message left at the real time would be in or out of a digest depending on the day the
		# test runs (in, when the machine's clock is within a day before DAY's morning)
		stray = [
			(row.subject, row.sent_at)
			for row in frappe.get_all(DOCTYPE, filters={"user": ("in", users)}, fields=["subject", "sent_at"])
			if not SENT <= row.sent_at < SENT + timedelta(hours=1)
		]
		self.assertEqual(stray, [], "every message of the test is on its clock")
		return rule, order

	def test_each_user_gets_one_digest_in_their_own_morning(self):
		_rule, order = self.messages(2)
		send_due(site_time(DAY + timedelta(hours=2)))  # 07:30 in India, 21:00 on December 6 in New York
		self.assertEqual((self.digests(self.reader), self.digests(self.other)), ([], []))
		send_due(site_time(DAY + timedelta(hours=3)))  # 08:30 in India
		[email] = self.digests(self.reader)
		self.assertEqual(self.digests(self.other), [])
		self.assertIn(f"RT digest {order.name} qty 3", email)  # made with qty 1, saved twice
		self.assertLess(email.index("qty 3"), email.index("qty 2"), "newest first")
		self.assertIn(f"/app/{ORDER.lower().replace(' ', '-')}/{order.name}", email)
		send_due(site_time(DAY + timedelta(hours=4)))  # once per period
		self.assertEqual(len(self.digests(self.reader)), 1)
		send_due(site_time(DAY + timedelta(hours=13, minutes=30)))  # 08:30 in New York
		self.assertEqual((len(self.digests(self.reader)), len(self.digests(self.other))), (1, 1))

	def test_read_archived_escalated_unreadable_and_never_emailed_messages_stay_out_and_nothing_is_never_sent(
		self,
	):
		rule, _order = self.messages(4)
		items = frappe.get_all(
			DOCTYPE, filters={"rule": rule.name, "user": self.reader}, pluck="name", order_by="seq"
		)
		now = DAY - timedelta(hours=2)
		frappe.db.set_value(DOCTYPE, items[0], "read_at", now)
		frappe.db.set_value(DOCTYPE, items[1], "archived_at", now)
		frappe.db.set_value(DOCTYPE, items[2], {"escalated_at": now, "escalation": escalation.SENT})
		frappe.db.set_value(DOCTYPE, items[3], "reference_name", "no-such-order")
		frappe.db.commit()
		never, _order = self.messages(1)
		self.set(self.reader, set_preference, rule=never.name, email="Never")
		send_due(site_time(DAY + timedelta(hours=3)))
		self.assertEqual(self.digests(self.reader), [], "nothing left to tell: no email")
		# and the period counts as done
		self.assertEqual(
			frappe.db.get_value(
				"Realtime Preference", {"user": self.reader, "digest": "Daily"}, "digest_sent_for"
			),
			DAY.date().isoformat(),
		)

	def test_a_weekly_digest_goes_once_a_week_from_monday_morning(self):
		self.set(self.reader, set_digest, "Weekly")
		frappe.db.set_value(
			"Realtime Preference", {"user": self.reader, "digest": "Weekly"}, "digest_sent_for", None
		)
		frappe.db.commit()
		_rule, order = self.messages(1)
		self.assertEqual(DAY.weekday(), 0, "December 7, 2026 is a Monday")
		send_due(site_time(DAY + timedelta(hours=1)))  # 06:30 on Monday in India
		self.assertEqual(self.digests(self.reader), [])
		send_due(site_time(DAY + timedelta(hours=3)))  # 08:30
		[email] = self.digests(self.reader)
		self.assertIn(f"RT digest {order.name}", email)
		send_due(site_time(DAY + timedelta(days=1, hours=3)))  # Tuesday: the same week
		self.assertEqual(len(self.digests(self.reader)), 1)
