"""Each person's preferences on a real site: the session-user API, what they do to real publishes
(listened to on Redis `events`) per rule and default, critical rules, Frappe's Notification Settings
"Enabled", and quiet hours with a controlled clock for a user in UTC+05:30 and one in UTC-05:00.

These tests commit (the inbox is written just before a commit) and remove what they committed.
"""

import json
from datetime import datetime, timedelta, timezone

import frappe
from frappe.utils import get_datetime

from rt_studio.api import (
	inbox_count,
	my_preferences,
	preview,
	set_digest,
	set_preference,
	set_quiet_hours,
	test_fire,
)
from rt_studio.delivery import escalation, preferences
from rt_studio.delivery.escalation import escalate_due
from rt_studio.delivery.inbox import DOCTYPE
from rt_studio.tests.factories import ORDER, RealtimeListener, make_order, make_rule
from rt_studio.tests.test_inbox import InboxTestCase, as_user, outgoing_email_account


class PreferencesTestCase(InboxTestCase):
	def setUp(self):
		super().setUp()
		self.forget_preferences()
		self.addCleanup(self.forget_preferences)

	def forget_preferences(self):
		frappe.db.rollback()
		users = [self.reader, self.other]
		frappe.db.delete(preferences.DOCTYPE, {"user": ("in", users)})
		frappe.db.commit()
		frappe.cache.delete(*[preferences._key(user) for user in users])

	def published(self, rule: str, order, count: int = 2) -> dict[str, dict]:
		"""Save the order once (committed): {user: the message published to them}."""
		with RealtimeListener() as listener:
			self.deliver(order)
			return {sent.user: sent.message for sent in listener.received(rule=rule, count=count)}

	def received_once(self, rule):
		"""A first message of the rule to both users: they may then set preferences for it."""
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		return order

	def set(self, user, fn, *args, **kwargs):
		result = as_user(user, fn, *args, **kwargs)
		frappe.db.commit()
		return result


class TestPreferenceApi(PreferencesTestCase):
	def test_a_new_user_has_the_defaults_and_each_change_keeps_the_rest(self):
		rule = self.rule()
		self.received_once(rule)
		mine = as_user(self.reader, my_preferences)
		default = {"alert": True, "browser": True, "email": "When Unread"}
		self.assertEqual(mine["default"], default)
		self.assertEqual(mine["rules"], {rule.name: default})
		self.assertEqual((mine["quiet_hours"], mine["digest"]), (None, "Off"))
		self.assertTrue(mine["time_zone"])

		self.set(self.reader, set_preference, alert=False)  # the default
		self.set(self.reader, set_preference, rule=rule.name, email="Never")
		mine = as_user(self.reader, my_preferences)
		self.assertEqual(mine["default"], {"alert": False, "browser": True, "email": "When Unread"})
		# a rule's own row starts from the default; None left alert and browser as they were
		self.assertEqual(mine["rules"][rule.name], {"alert": False, "browser": True, "email": "Never"})
		self.set(self.reader, set_preference, rule=rule.name, alert="true")
		self.assertEqual(
			as_user(self.reader, my_preferences)["rules"][rule.name],
			{"alert": True, "browser": True, "email": "Never"},
		)
		# nobody else's changed
		self.assertEqual(as_user(self.other, my_preferences)["default"], default)
		self.assertEqual(frappe.db.count(preferences.DOCTYPE, {"user": self.other}), 0)

	def test_quiet_hours_and_digest(self):
		self.assertEqual(
			self.set(self.reader, set_quiet_hours, "22:00", "07:00"), {"start": "22:00", "end": "07:00"}
		)
		self.set(self.reader, set_digest, "Weekly")
		mine = as_user(self.reader, my_preferences)
		self.assertEqual(
			(mine["quiet_hours"], mine["digest"]), ({"start": "22:00", "end": "07:00"}, "Weekly")
		)
		self.assertIsNone(self.set(self.reader, set_quiet_hours))
		self.assertIsNone(as_user(self.reader, my_preferences)["quiet_hours"])

	def test_what_a_user_may_not_set_is_refused_with_the_reason(self):
		rule = self.rule()
		critical = self.rule(critical=1)
		self.received_once(rule)
		cases = {
			"email": (lambda: set_preference(rule=rule.name, email="Sometimes"), "email Sometimes"),
			"critical": (lambda: set_preference(rule=critical.name, alert=False), "is critical"),
			"quiet": (lambda: set_quiet_hours("22:00", "7"), "HH:MM"),
			"same": (lambda: set_quiet_hours("07:00", "07:00"), "two different times"),
			"digest": (lambda: set_digest("Hourly"), "Digest Hourly"),
			"both": (
				lambda: set_preference(rule=rule.name, channel="x", alert=False),
				"one rule, one channel",
			),
		}
		for name, (call, text) in cases.items():
			with self.subTest(name), self.assertRaises(frappe.ValidationError) as raised:
				as_user(self.reader, call)
			self.assertIn(text, str(raised.exception))
		# a rule that never reached the user: one answer whether it exists or not
		with self.assertRaises(frappe.ValidationError) as unknown:
			as_user(self.reader, set_preference, rule="no such rule", alert=False)
		self.assertIn("received nothing", str(unknown.exception))

	def test_changes_are_post_only_and_for_logged_in_users(self):
		for fn in (set_preference, set_quiet_hours, set_digest):
			self.assertIn(fn, frappe.allowed_http_methods_for_whitelisted_func)
			self.assertEqual(frappe.allowed_http_methods_for_whitelisted_func[fn], ["POST"])
		with self.assertRaises(frappe.PermissionError):
			as_user("Guest", my_preferences)


class TestPreferencesOnDelivery(PreferencesTestCase):
	def test_alert_off_for_one_rule_holds_only_that_users_popup_and_the_inbox_still_counts_it(self):
		rule = self.rule(browser_notification=1)
		order = self.received_once(rule)
		self.set(self.reader, set_preference, rule=rule.name, alert=False)
		sent = self.published(rule.name, order)
		self.assertIs(sent[self.reader]["alert"], False)
		self.assertIs(sent[self.reader]["browser_notification"], True)
		self.assertNotIn("alert", sent[self.other])
		self.assertEqual(as_user(self.reader, inbox_count)["unread"], 2)
		# the default does not override a rule's own row; another rule follows the default
		self.set(self.reader, set_preference, alert=True, browser=False)
		sent = self.published(rule.name, order)
		self.assertIs(sent[self.reader]["alert"], False)
		self.assertIs(sent[self.reader]["browser_notification"], True)  # the rule's row was made with it
		other_rule = self.rule(browser_notification=1)
		with RealtimeListener() as listener:
			self.deliver(order)
			[message] = [
				s.message for s in listener.received(rule=other_rule.name, count=2) if s.user == self.reader
			]
		self.assertNotIn("alert", message)
		self.assertIs(message["browser_notification"], False)

	def test_a_critical_rule_ignores_preferences(self):
		rule = self.rule(critical=1, browser_notification=1)
		order = self.received_once(rule)
		self.set(self.reader, set_preference, alert=False, browser=False)
		self.set(self.reader, set_quiet_hours, "00:00", "23:59")
		sent = self.published(rule.name, order)
		self.assertNotIn("alert", sent[self.reader])
		self.assertIs(sent[self.reader]["browser_notification"], True)

	def test_frappe_notification_settings_enabled_decides_the_bell(self):
		rule = self.rule(display="Notification Log")
		order = self.received_once(rule)
		self.set(self.reader, set_preference, alert=False)  # the bell is not a popup: still written
		frappe.db.set_value("Notification Settings", self.other, "enabled", 0)
		frappe.db.commit()
		self.addCleanup(self.enable_notifications, self.other)
		frappe.db.delete("Notification Log", {"document_name": order.name})
		frappe.db.commit()
		self.deliver(order)
		bells = frappe.get_all("Notification Log", filters={"document_name": order.name}, pluck="for_user")
		self.assertEqual(bells, [self.reader])
		# the inbox keeps the message for both
		self.assertEqual(as_user(self.other, inbox_count)["unread"], 2)

	def enable_notifications(self, user):
		frappe.db.rollback()
		frappe.db.set_value("Notification Settings", user, "enabled", 1)
		frappe.db.commit()


class TestPreviewShowsPreferences(PreferencesTestCase):
	def test_preview_and_test_fire_name_each_recipients_effective_preference(self):
		rule = self.rule()
		critical = self.rule(critical=1)
		order = self.received_once(rule)
		self.set(self.reader, set_preference, rule=rule.name, alert=False, email="Never")
		self.set(self.reader, set_quiet_hours, "00:00", "23:59")
		described = {r["user"]: r["preference"] for r in preview(rule.name, order.name)["recipients"]}
		self.assertEqual(described[self.other], "as the rule sends it")
		self.assertTrue(described[self.reader].startswith("quiet hours until 23:59"), described[self.reader])
		self.assertIn("alert off, email off", described[self.reader])
		fired = {
			r["user"]: r["preference"] for r in test_fire(rule.name, order.name, to="audience")["recipients"]
		}
		self.assertEqual(fired, described)
		frappe.db.rollback()
		described = {r["user"]: r["preference"] for r in preview(critical.name, order.name)["recipients"]}
		self.assertEqual(described[self.reader], "critical: preferences do not apply")


class ZonedUsersTestCase(PreferencesTestCase):
	"""The reader lives in India (UTC+05:30), the other user in New York (UTC-05:00 in December)."""

	def setUp(self):
		super().setUp()
		for user, zone in ((self.reader, "Asia/Kolkata"), (self.other, "America/New_York")):
			self.set_time_zone(user, zone)
			self.addCleanup(self.set_time_zone, user, None)

	def set_time_zone(self, user: str, zone: str | None):
		frappe.db.rollback()
		doc = frappe.get_doc("User", user)
		doc.time_zone = zone
		doc.save(ignore_permissions=True)
		frappe.db.commit()


class TestQuietHours(ZonedUsersTestCase):
	"""Both keep quiet hours from 22:00 to 07:00 on their own clocks."""

	def setUp(self):
		super().setUp()
		for user in (self.reader, self.other):
			self.set(user, set_quiet_hours, "22:00", "07:00")
		clock = preferences.clock
		self.addCleanup(setattr, preferences, "clock", clock)

	def at(self, hour: int, minute: int = 0):
		moment = datetime(2026, 12, 7, hour, minute, tzinfo=timezone.utc)
		preferences.clock = lambda: moment

	def test_each_user_is_quiet_on_their_own_clock(self):
		rule = self.rule(browser_notification=1)
		order = self.received_once(rule)
		self.at(17)  # 22:30 in India, 12:00 in New York
		sent = self.published(rule.name, order)
		self.assertEqual(
			(
				sent[self.reader]["alert"],
				sent[self.reader]["browser_notification"],
				sent[self.reader]["quiet_until"],
			),
			(False, False, "07:00"),
		)
		self.assertNotIn("alert", sent[self.other])
		self.assertIs(sent[self.other]["browser_notification"], True)
		self.at(3, 30)  # 09:00 in India, 22:30 in New York
		sent = self.published(rule.name, order)
		self.assertNotIn("alert", sent[self.reader])
		self.assertEqual(sent[self.other]["quiet_until"], "07:00")
		self.at(12)  # 17:30 in India, 07:00 in New York: over for both
		sent = self.published(rule.name, order)
		self.assertFalse(any("quiet_until" in message for message in sent.values()))
		# held messages are in the inbox all the same
		self.assertEqual(as_user(self.reader, inbox_count)["unread"], 4)

	def test_a_new_time_zone_moves_the_quiet_hours_at_once(self):
		rule = self.rule()
		order = self.received_once(rule)
		self.at(17)  # 22:30 in India: quiet; 09:00 in Los Angeles: not
		self.assertEqual(self.published(rule.name, order)[self.reader]["quiet_until"], "07:00")
		self.set_time_zone(self.reader, "America/Los_Angeles")
		self.assertNotIn("quiet_until", self.published(rule.name, order)[self.reader])
		self.assertEqual(
			json.loads(frappe.cache.get(preferences._key(self.reader)))["tz"], "America/Los_Angeles"
		)

	def test_emails_of_unread_messages_wait_for_the_end_of_quiet_hours(self):
		"""Escalation during the recipient's quiet hours: no email yet, the item undecided; sent by
		the first run after the hours end, once."""
		with outgoing_email_account():
			rule = self.rule(escalate_after_minutes=10)
			order = self.received_once(rule)
			due = get_datetime(frappe.db.get_value(DOCTYPE, {"reference_name": order.name}, "max(sent_at)"))
			due += timedelta(minutes=10)
			self.at(17)  # quiet for the reader (22:30 in India), not for the other (12:00 in New York)
			escalate_due(now=due)
			self.assertEqual(emails_to(order), [self.other])
			undecided = {"reference_name": order.name, "user": self.reader, "escalated_at": ("is", "not set")}
			self.assertEqual(frappe.db.count(DOCTYPE, undecided), 1)
			self.at(2)  # 07:30 in India: the hours are over
			escalate_due(now=due + timedelta(minutes=5))
			escalate_due(now=due + timedelta(minutes=6))
			self.assertEqual(sorted(emails_to(order)), sorted([self.reader, self.other]))


class TestEmailPreference(PreferencesTestCase):
	def test_email_never_for_a_rule_is_not_escalated(self):
		with outgoing_email_account():
			rule = self.rule(escalate_after_minutes=10)
			order = self.received_once(rule)
			self.set(self.reader, set_preference, rule=rule.name, email="Never")
			frappe.db.delete(DOCTYPE, {"reference_name": order.name})
			frappe.db.commit()
			self.deliver(order)
			due = get_datetime(frappe.db.get_value(DOCTYPE, {"reference_name": order.name}, "max(sent_at)"))
			escalate_due(now=due + timedelta(minutes=10))
			self.assertEqual(emails_to(order), [self.other])
			self.assertEqual(
				frappe.db.get_value(
					DOCTYPE, {"reference_name": order.name, "user": self.reader}, "escalation"
				),
				escalation.EMAIL_OFF,
			)


def emails_to(order) -> list[str]:
	queued = frappe.get_all("Email Queue", {"reference_name": order.name}, pluck="name")
	return frappe.get_all("Email Queue Recipient", {"parent": ("in", queued or [""])}, pluck="recipient")
