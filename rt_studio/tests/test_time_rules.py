"""Time rules run by the scheduler entry with a controlled clock: due, not due, repeated run,
missed run, send window closed then open, rule disabled meanwhile, two runs at once."""

from datetime import datetime

import frappe

from rt_studio import api, schedule
from rt_studio.tests.factories import (
	ORDER,
	ReaderAndOutsiderTestCase,
	RealtimeListener,
	SiteProcess,
	make_order,
	make_rule,
)

#: The order every test uses is due on Wednesday 12 March 2031 (a date no other test uses).
DUE_DATE = "2031-03-12"


def at(text: str) -> datetime:
	return datetime.fromisoformat(text)


class TestTimeRules(ReaderAndOutsiderTestCase):
	def setUp(self):
		super().setUp()
		self.addCleanup(self.restore_last_run, schedule.last_run())

	@staticmethod
	def restore_last_run(value):
		frappe.db.rollback()
		schedule.set_last_run(value)
		frappe.db.commit()

	def time_rule(self, event="Days Before", **fields):
		audience = [{"audience_type": "User", "user": u} for u in (self.reader, self.outsider)]
		fields.setdefault("date_changed" if event.startswith("Days") else "datetime_changed", "due_date")
		return self.enterContext(
			make_rule(audience, event=event, commit=True, subject="{{ doc.title }} is due", **fields)
		)

	def order(self, **fields):
		return self.enterContext(
			make_order(commit=True, **{"title": "Invoice 7", "due_date": DUE_DATE, **fields})
		)

	def run_at(self, now: str, last: str | None = None, rule=None) -> list:
		"""One scheduler run at `now` after a last run at `last`: what it published for `rule`."""
		if last:
			schedule.set_last_run(at(last))
			frappe.db.commit()
		with RealtimeListener() as listener:
			schedule.run_time_rules(at(now))
			return listener.received(rule=rule.name if rule else None)

	def logs(self, rule) -> list:
		return frappe.get_all(schedule.LOG_DOCTYPE, filters={"rule": rule.name}, pluck="due_at")

	# ------------------------------------------------------------ due and not due

	def test_the_run_after_the_due_time_sends_it_to_readers_only(self):
		rule = self.time_rule(days_in_advance=2)
		doc = self.order()
		sent = self.run_at("2031-03-10 00:01", last="2031-03-09 23:59:30", rule=rule)
		self.assertEqual([(s.user, s.message["subject"]) for s in sent], [(self.reader, "Invoice 7 is due")])
		message = sent[0].message
		self.assertEqual(
			(message["docname"], message["event"], message["actor"]), (doc.name, "Days Before", "")
		)
		self.assertEqual(self.logs(rule), [at("2031-03-10 00:00")])
		[entry] = api.trace(rule.name)
		self.assertEqual(
			(entry["fired"], entry["docname"], entry["reason"]), (True, doc.name, "1 of 2 recipients")
		)

	def test_a_run_before_the_due_time_sends_nothing(self):
		rule = self.time_rule(days_in_advance=2)
		self.order()
		self.assertEqual(self.run_at("2031-03-09 23:59", last="2031-03-09 23:58", rule=rule), [])
		self.assertEqual(self.logs(rule), [])

	def test_a_repeated_run_sends_nothing_twice(self):
		rule = self.time_rule(days_in_advance=2)
		self.order()
		self.assertEqual(len(self.run_at("2031-03-10 00:01", last="2031-03-09 23:59", rule=rule)), 1)
		self.assertEqual(
			self.run_at("2031-03-10 00:01", last="2031-03-09 23:59", rule=rule), []
		)  # same run again
		self.assertEqual(self.run_at("2031-03-10 00:02", rule=rule), [])  # the next run
		self.assertEqual(len(self.logs(rule)), 1)

	def test_minutes_before_a_datetime(self):
		rule = self.time_rule("Minutes Before", datetime_changed="starts_at", minutes_offset=30)
		self.order(starts_at="2031-03-12 14:00:00")
		self.assertEqual(self.run_at("2031-03-12 13:29", last="2031-03-12 13:28", rule=rule), [])
		self.assertEqual(len(self.run_at("2031-03-12 13:31", rule=rule)), 1)

	def test_conditions_and_filters_hold_at_send_time(self):
		rule = self.time_rule(
			days_in_advance=2,
			condition_type="Filters",
			filters='[["RT Test Order", "status", "!=", "Closed"]]',
		)
		self.order(status="Closed")
		self.assertEqual(self.run_at("2031-03-10 00:01", last="2031-03-09 23:59", rule=rule), [])
		[entry] = api.trace(rule.name)
		self.assertEqual(entry["reason"], "filter 1 (status != Closed) failed: status is 'Closed'")

	# ------------------------------------------------------------ late and missed runs

	def test_a_run_after_downtime_sends_what_came_due_meanwhile(self):
		rule = self.time_rule(days_in_advance=2)
		self.order()
		sent = self.run_at("2031-03-10 09:30", last="2031-03-09 21:00", rule=rule)  # down all night
		self.assertEqual([s.user for s in sent], [self.reader])

	def test_catch_up_reaches_back_one_day_only(self):
		rule = self.time_rule(days_in_advance=2)
		self.order()
		self.assertEqual(self.run_at("2031-03-11 09:30", last="2031-03-08 12:00", rule=rule), [])  # 33 h late
		self.assertEqual(self.logs(rule), [])

	# ------------------------------------------------------------ the send window

	def test_a_message_due_outside_the_window_waits_for_it_to_open(self):
		weekdays = {"send_after": "09:00", "send_before": "17:00", "send_days": "Mon,Tue,Wed,Thu,Fri"}
		rule = self.time_rule(days_in_advance=0, **weekdays)
		self.order(due_date="2031-03-15")  # a Saturday: due then, sent on Monday at 09:00
		self.assertEqual(self.run_at("2031-03-15 00:01", last="2031-03-14 23:59", rule=rule), [])
		self.assertEqual(self.run_at("2031-03-17 08:59", last="2031-03-17 08:58", rule=rule), [])
		sent = self.run_at("2031-03-17 09:01", rule=rule)
		self.assertEqual([s.user for s in sent], [self.reader])
		self.assertEqual(self.logs(rule), [at("2031-03-15 00:00")])
		self.assertEqual(self.run_at("2031-03-17 09:02", rule=rule), [])

	def test_preview_says_when_a_held_message_goes_out(self):
		rule = self.time_rule(days_in_advance=0, send_after="09:00", send_days="Mon")
		doc = self.order(due_date="2031-03-15")
		result = api.preview(rule.name, doc.name)
		self.assertTrue(result["fired"])
		self.assertEqual(result["due"], {"due_at": "2031-03-15 00:00:00", "send_at": "2031-03-17 09:00:00"})

	# ------------------------------------------------------------ disabled meanwhile

	def test_a_rule_disabled_when_its_message_comes_due_never_sends_it(self):
		rule = self.time_rule(days_in_advance=2)
		self.order()
		rule.db_set("enabled", 0)
		rule.clear_cache()
		frappe.db.commit()
		self.assertEqual(self.run_at("2031-03-10 00:01", last="2031-03-09 23:59", rule=rule), [])
		rule.db_set("enabled", 1)
		rule.clear_cache()
		frappe.db.commit()
		self.assertEqual(self.run_at("2031-03-10 00:06", rule=rule), [])
		self.assertEqual(self.logs(rule), [])

	# ------------------------------------------------------------ two runs at once

	def test_two_overlapping_runs_send_each_message_once(self):
		rule = self.time_rule(days_in_advance=2)
		for _i in range(5):
			self.order()
		schedule.set_last_run(at("2031-03-09 23:59"))
		frappe.db.commit()
		with RealtimeListener() as listener, SiteProcess() as first, SiteProcess() as second:
			for process in (first, second):
				process.send("run_time_rules", now="2031-03-10 00:01")
			counts = [first.receive()["sent"], second.receive()["sent"]]
			sent = listener.received(rule=rule.name, count=5)
		self.assertEqual(sum(counts), 5)
		self.assertEqual(len(sent), 5)
		self.assertEqual(len({s.message["docname"] for s in sent}), 5)
		self.assertEqual(len(self.logs(rule)), 5)

	def test_a_run_keeps_its_clock_without_touching_the_sites_cache(self):
		frappe.cache.set_value("rt_studio_test_marker", "kept")
		schedule.run_time_rules(at("2031-03-10 00:01"))
		self.assertEqual(schedule.last_run(), at("2031-03-10 00:01"))
		frappe.local.cache = {}
		self.assertEqual(frappe.cache.get_value("rt_studio_test_marker"), "kept")
		frappe.cache.delete_value("rt_studio_test_marker")

	def test_the_daily_clean_up_forgets_old_due_logs_only(self):
		rule = self.time_rule(days_in_advance=2)
		doc = self.order()
		old = frappe.utils.add_days(frappe.utils.now_datetime(), -(schedule.KEEP_DAYS + 1))
		recent = frappe.utils.add_days(frappe.utils.now_datetime(), -1)
		for due_at in (old, recent):
			self.assertTrue(schedule.claim(rule.name, ORDER, doc.name, due_at, due_at))
		self.assertFalse(schedule.claim(rule.name, ORDER, doc.name, recent, recent), "claimed once only")
		schedule.clean_up()
		self.assertEqual(self.logs(rule), [recent])
