"""Analytics per rule and channel: every figure equals a count taken directly from the tables after
real deliveries, reads, archiving, an escalation email and a mute; the Studio's evaluations paged
and filtered on the server; System Manager only.

These tests commit (the inbox is written just before a commit) and remove what they committed.
"""

import json
import statistics
from datetime import timedelta

import frappe
from frappe.utils import add_days, get_datetime, getdate, now_datetime

from rt_studio.api import (
	archive,
	evaluations,
	inbox,
	mark_read,
	mark_seen,
	mute,
	publish,
	rule_analytics,
	rules_overview,
	unmute,
)
from rt_studio.delivery import escalation
from rt_studio.delivery.escalation import escalate_due
from rt_studio.delivery.inbox import DOCTYPE
from rt_studio.tests.factories import ORDER, make_channel, make_order
from rt_studio.tests.test_api import production_permissions
from rt_studio.tests.test_inbox import InboxTestCase, as_user, outgoing_email_account

KEYS = {
	"delivered",
	"seen",
	"read",
	"archived",
	"escalated",
	"muted",
	"read_rate",
	"median_minutes_to_read",
	"per_day",
}


class AnalyticsTestCase(InboxTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.enterClassContext(outgoing_email_account())

	def seqs(self, user: str, rule: str | None, channel: str | None = None) -> list[int]:
		"""The user's messages of the rule (or channel), oldest first."""
		items = as_user(user, inbox, limit=100)["items"]
		return sorted(item["seq"] for item in items if item["rule"] == rule and item["channel"] == channel)

	def move(self, seq: int, **values):
		"""Set when the other user's message was sent, seen or read (a controlled history)."""
		frappe.db.set_value(DOCTYPE, {"user": self.other, "seq": seq}, values, update_modified=False)


class TestRuleAnalytics(AnalyticsTestCase):
	def test_figures_equal_counts_taken_directly_from_the_tables(self):
		rule = self.rule(escalate_after_minutes=30)
		quiet = self.rule()  # another rule's messages are not counted for this one
		order = self.enterContext(make_order(commit=True))
		self.deliver(order, times=3)  # 3 messages each for reader and other, of both rules
		r1, r2, r3 = self.seqs(self.reader, rule.name)
		o1, o2, o3 = self.seqs(self.other, rule.name)
		as_user(self.reader, mark_read, json.dumps([r1, r2]))
		as_user(self.reader, archive, json.dumps([r3]))
		as_user(self.other, mark_seen, json.dumps([o1]))
		frappe.db.commit()
		# other's are left unread: the rule's escalation emails them (a real Email Queue row each)
		escalate_due(now=now_datetime() + timedelta(minutes=31))
		self.assertEqual(frappe.db.count("Email Queue", {"reference_name": order.name}), 3)
		# o2 was sent 3 days ago and read the next day, o3 long before the period
		now = now_datetime()
		self.move(o2, sent_at=add_days(now, -3), seen_at=add_days(now, -2), read_at=add_days(now, -2))
		self.move(o3, sent_at=add_days(now, -40))
		as_user(self.reader, mute, rule=rule.name)
		frappe.db.commit()
		self.addCleanup(lambda: as_user(self.reader, unmute, rule=rule.name) or frappe.db.commit())

		figures = rule_analytics(rule=rule.name)

		self.assertEqual(set(figures), KEYS)
		since = get_datetime(getdate(add_days(now, -29)))
		rows = frappe.get_all(
			DOCTYPE,
			filters={"rule": rule.name, "sent_at": (">=", since)},
			fields=["sent_at", "seen_at", "read_at", "archived_at", "escalation"],
		)
		self.assertEqual(len(rows), 5)  # 6 delivered, one of them 40 days ago
		read = [row for row in rows if row.read_at]
		self.assertEqual(
			{key: figures[key] for key in ("delivered", "seen", "read", "archived", "escalated", "muted")},
			{
				"delivered": len(rows),
				"seen": sum(1 for row in rows if row.seen_at),
				"read": len(read),
				"archived": sum(1 for row in rows if row.archived_at),
				"escalated": sum(1 for row in rows if row.escalation == escalation.SENT),
				"muted": frappe.db.count("Realtime Mute", {"rule": rule.name}),
			},
		)
		# and the same figures counted by hand from what the users did
		self.assertEqual(
			[figures[key] for key in ("delivered", "seen", "read", "archived", "escalated", "muted")],
			[5, 4, 3, 1, 2, 1],  # r1-r3, o1, o2; reading is seeing, archiving is not; o3 is too old
		)
		self.assertEqual(figures["read_rate"], round(3 / 5, 4))
		minutes = statistics.median((row.read_at - row.sent_at).total_seconds() / 60 for row in read)
		self.assertAlmostEqual(figures["median_minutes_to_read"], round(minutes, 1), places=1)
		per_day = figures["per_day"]
		self.assertEqual(len(per_day), 30)
		self.assertEqual(per_day[-1]["date"], str(getdate(now)))
		self.assertEqual(sum(day["delivered"] for day in per_day), len(rows))
		by_date = {day["date"]: day for day in per_day}
		self.assertEqual(by_date[str(getdate(add_days(now, -3)))]["delivered"], 1)
		self.assertEqual(by_date[str(getdate(add_days(now, -2)))]["read"], 1)
		self.assertEqual(by_date[str(getdate(now))]["read"], 2)
		# the other rule's figures are its own; neither rule nor channel: every delivery
		self.assertEqual(rule_analytics(rule=quiet.name)["delivered"], 6)
		self.assertEqual(rule_analytics()["delivered"], frappe.db.count(DOCTYPE, {"sent_at": (">=", since)}))

	def test_a_channels_figures_are_its_posts(self):
		members = [{"member_type": "User", "user": self.reader}, {"member_type": "User", "user": self.other}]
		channel = self.enterContext(make_channel(members, commit=True))
		for text in ("one", "two"):
			publish(channel.name, text)
			frappe.db.commit()
		[first, _second] = self.seqs(self.reader, None, channel=channel.name)
		as_user(self.reader, mark_read, json.dumps([first]))
		frappe.db.commit()
		figures = rule_analytics(channel=channel.name)
		self.assertEqual(
			(figures["delivered"], figures["read"], figures["read_rate"]),
			(frappe.db.count(DOCTYPE, {"channel": channel.name}), 1, 0.25),
		)
		self.assertEqual(figures["delivered"], 4)
		rows = {row.get("channel"): row for row in rules_overview()["rows"] if row["kind"] == "channel"}
		self.assertEqual((rows[channel.name]["delivered"], rows[channel.name]["read"]), (4, 1))

	def test_a_rule_that_sent_nothing_has_no_rate(self):
		rule = self.rule()
		figures = rule_analytics(rule=rule.name, days=7)
		self.assertEqual((figures["delivered"], figures["read_rate"]), (0, None))
		self.assertIsNone(figures["median_minutes_to_read"])
		self.assertEqual([day["delivered"] for day in figures["per_day"]], [0] * 7)

	def test_system_manager_only(self):
		rule = self.rule()
		calls = {
			"rule_analytics": lambda: rule_analytics(rule=rule.name),
			"rules_overview": rules_overview,
			"evaluations": lambda: evaluations(rule=rule.name),
		}
		with production_permissions():
			for name, call in calls.items():
				with self.subTest(name), self.assertRaises(frappe.PermissionError):
					as_user(self.reader, call)
			self.assertEqual(rule_analytics(rule=rule.name)["delivered"], 0)  # Administrator may

	def test_the_overview_lists_every_rule_by_volume_with_its_read_rate(self):
		busy, unread = self.rule(), self.rule()
		idle = self.rule(enabled=0)
		order = self.enterContext(make_order(commit=True))
		self.deliver(order, times=2)
		frappe.db.set_value(DOCTYPE, {"rule": unread.name}, "sent_at", add_days(now_datetime(), -1))
		frappe.db.delete(DOCTYPE, {"rule": unread.name, "user": self.other})
		as_user(self.reader, mark_read, "all")
		frappe.db.commit()
		rows = {row.get("rule"): row for row in rules_overview()["rows"] if row["kind"] == "rule"}
		self.assertEqual((rows[busy.name]["delivered"], rows[busy.name]["read"]), (4, 2))
		self.assertEqual(rows[busy.name]["read_rate"], 0.5)
		self.assertEqual(rows[busy.name]["evaluations"], {"fired": 2, "not_fired": 0, "errors": 0})
		self.assertEqual((rows[idle.name]["delivered"], rows[idle.name]["read_rate"]), (0, None))
		order_of = [row.get("rule") for row in rules_overview()["rows"]]
		self.assertLess(order_of.index(busy.name), order_of.index(idle.name))


class TestEvaluationsPage(AnalyticsTestCase):
	def test_paged_and_filtered_on_the_server(self):
		rule = self.rule(condition="doc.qty % 2 == 0")  # fires on every other save
		broken = self.rule(condition="1/0")
		order = self.enterContext(make_order(commit=True, qty=0))
		self.deliver(order, times=5)  # qty 1..5: fires at 2 and 4

		first = evaluations(rule=rule.name, page_length=2)
		self.assertEqual((first["total"], first["kept"], len(first["entries"])), (5, 5, 2))
		self.assertEqual(first["counts"], {"fired": 2, "not_fired": 3, "errors": 0})
		rest = evaluations(rule=rule.name, start=2, page_length=2)
		last = evaluations(rule=rule.name, start=4, page_length=2)
		pages = first["entries"] + rest["entries"] + last["entries"]
		self.assertEqual(len(pages), 5)
		times = [entry["time"] for entry in pages]
		self.assertEqual(times, sorted(times, reverse=True))  # newest first, no entry twice
		self.assertEqual(len({(e["time"], e["fired"]) for e in pages}), 5)

		fired = evaluations(rule=rule.name, result="fired")
		self.assertEqual([entry["fired"] for entry in fired["entries"]], [True, True])
		self.assertEqual(evaluations(rule=rule.name, result="not fired")["total"], 3)
		errors = evaluations(rule=broken.name, result="error")
		self.assertEqual(errors["total"], 5)
		self.assertTrue(all(entry["error"] for entry in errors["entries"]))

		self.assertEqual(evaluations(rule=rule.name, doctype="ToDo")["total"], 0)
		self.assertEqual(evaluations(rule=rule.name, doctype=ORDER)["total"], 5)
		middle = sorted(times)[2]
		self.assertEqual(evaluations(rule=rule.name, since=middle)["total"], 3)
		self.assertEqual(evaluations(rule=rule.name, until=middle)["total"], 3)
		with self.assertRaises(frappe.ValidationError):
			evaluations(result="sent")
		with self.assertRaises(frappe.ValidationError):
			evaluations(since="last tuesday-ish")
