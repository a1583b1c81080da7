"""Time rules: when a message is due, when the send window lets it out, which run sends it."""

import random
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from rt_studio.engine import parse_rule
from rt_studio.engine.due import (
	CATCH_UP,
	catch_up_since,
	due_at,
	due_in,
	field_range,
	send_at,
	why_not_due,
)

MINUTE = timedelta(minutes=1)
FIVE = timedelta(minutes=5)


@pytest.fixture
def days_rule(new_rule):
	def make(event="Days Before", days=2, field="date", **window):
		return new_rule(event=event, date_changed=field, days_in_advance=days, **window)

	return make


@pytest.fixture
def minutes_rule(new_rule):
	def make(event="Minutes Before", minutes=30, field="starts", **window):
		return new_rule(event=event, datetime_changed=field, minutes_offset=minutes, **window)

	return make


# ---------------------------------------------------------------- due times


def test_days_before_is_due_at_midnight_that_many_days_before(days_rule):
	assert due_at(days_rule(), {"date": "2024-05-10"}) == datetime(2024, 5, 8)


def test_days_after_counts_forward(days_rule):
	assert due_at(days_rule("Days After", 1), {"date": "2024-05-10"}) == datetime(2024, 5, 11)


def test_days_on_a_datetime_field_count_from_its_day(days_rule):
	assert due_at(days_rule(days=0), {"date": datetime(2024, 5, 10, 15, 45)}) == datetime(2024, 5, 10)


def test_minutes_before_and_after(minutes_rule):
	assert due_at(minutes_rule(), {"starts": datetime(2024, 5, 10, 10, 0)}) == datetime(2024, 5, 10, 9, 30)
	after = minutes_rule("Minutes After", 90)
	assert due_at(after, {"starts": "2024-05-10 23:00:00"}) == datetime(2024, 5, 11, 0, 30)


def test_an_empty_or_unreadable_date_is_never_due(days_rule):
	assert due_at(days_rule(), {"date": None}) is None
	assert due_at(days_rule(), {"date": "someday"}) is None
	assert why_not_due(days_rule(), {}, datetime(2024, 5, 1), datetime(2024, 5, 2)) == "date is empty"


# ---------------------------------------------------------------- which run sends it


def test_the_run_after_the_due_time_sends_it_and_the_next_does_not(days_rule):
	rule, doc = days_rule(), {"date": "2024-05-10"}
	due = datetime(2024, 5, 8)
	assert due_in(rule, doc, due - FIVE, due - MINUTE) is None
	assert why_not_due(rule, doc, due - FIVE * 2, due - FIVE) == "not due yet: due 2024-05-08 00:00"
	assert due_in(rule, doc, due - 2 * MINUTE, due + 3 * MINUTE) == due
	assert due_in(rule, doc, due + 3 * MINUTE, due + 8 * MINUTE) is None
	assert why_not_due(rule, doc, due + 3 * MINUTE, due + 8 * MINUTE) == (
		"due 2024-05-08 00:00, to be sent by a run before 2024-05-08 00:03"
	)


def test_intervals_of_consecutive_runs_send_each_message_once(minutes_rule):
	rule = minutes_rule(minutes=7)
	start = datetime(2024, 5, 1, 8, 0)
	docs = [{"starts": start + timedelta(minutes=m, seconds=s)} for m in range(10, 120, 3) for s in (0, 30)]
	runs = [start + timedelta(minutes=m) for m in range(0, 180, 5)]
	sent = []
	for last, now in pairwise(runs):
		sent += [i for i, doc in enumerate(docs) if due_in(rule, doc, last, now)]
	assert sorted(sent) == list(range(len(docs)))


def test_a_late_run_sends_what_came_due_since_the_last_run(days_rule):
	rule = days_rule(days=0)
	last_run, now = datetime(2024, 5, 7, 22, 0), datetime(2024, 5, 8, 9, 30)  # the scheduler was down
	since = catch_up_since(last_run, now, FIVE)
	assert since == last_run
	assert due_in(rule, {"date": "2024-05-08"}, since, now) == datetime(2024, 5, 8)


def test_catch_up_goes_back_at_most_a_day(days_rule):
	rule = days_rule(days=0)
	last_run, now = datetime(2024, 5, 5, 12, 0), datetime(2024, 5, 8, 9, 0)  # down for three days
	since = catch_up_since(last_run, now, FIVE)
	assert since == now - CATCH_UP
	assert due_in(rule, {"date": "2024-05-08"}, since, now) == datetime(2024, 5, 8)
	assert due_in(rule, {"date": "2024-05-07"}, since, now) is None


def test_the_first_run_looks_back_one_scheduler_interval():
	now = datetime(2024, 5, 8, 9, 0)
	assert catch_up_since(None, now, FIVE) == now - FIVE


# ---------------------------------------------------------------- the send window


WORKING_HOURS = {"send_after": "09:00:00", "send_before": "17:00:00", "send_days": "Mon,Tue,Wed,Thu,Fri"}


def test_a_message_due_outside_the_window_is_held_until_it_opens(days_rule):
	rule = days_rule(days=0, **WORKING_HOURS)
	saturday = datetime(2024, 5, 4)
	assert send_at(rule, saturday) == datetime(2024, 5, 6, 9, 0)  # Monday 09:00
	doc = {"date": "2024-05-04"}
	assert why_not_due(rule, doc, saturday, saturday + FIVE) == (
		"due 2024-05-04 00:00, held by the send window until 2024-05-06 09:00"
	)
	monday_nine = datetime(2024, 5, 6, 9, 0)
	assert due_in(rule, doc, monday_nine - FIVE, monday_nine + MINUTE) == saturday


def test_a_message_due_inside_the_window_goes_at_once(minutes_rule):
	rule = minutes_rule(minutes=0, **WORKING_HOURS)
	tuesday_ten = datetime(2024, 5, 7, 10, 0)
	assert send_at(rule, tuesday_ten) == tuesday_ten


def test_a_window_that_ends_today_holds_until_tomorrow(minutes_rule):
	rule = minutes_rule(minutes=0, **WORKING_HOURS)
	assert send_at(rule, datetime(2024, 5, 7, 17, 0)) == datetime(2024, 5, 8, 9, 0)
	assert send_at(rule, datetime(2024, 5, 3, 18, 0)) == datetime(2024, 5, 6, 9, 0)  # Friday evening


def test_a_window_across_midnight(minutes_rule):
	rule = minutes_rule(minutes=0, send_after="22:00", send_before="06:00")
	assert send_at(rule, datetime(2024, 5, 7, 23, 30)) == datetime(2024, 5, 7, 23, 30)
	assert send_at(rule, datetime(2024, 5, 8, 3, 0)) == datetime(2024, 5, 8, 3, 0)
	assert send_at(rule, datetime(2024, 5, 8, 12, 0)) == datetime(2024, 5, 8, 22, 0)


def test_only_days(days_rule):
	rule = days_rule(days=0, send_days="sunday")
	assert send_at(rule, datetime(2024, 5, 1)) == datetime(2024, 5, 5)


def test_a_held_message_is_sent_by_the_run_whose_interval_holds_the_opening(days_rule):
	rule = days_rule(days=1, **WORKING_HOURS)
	doc = {"date": "2024-05-05"}  # due Saturday 00:00, window opens Monday 09:00
	runs = [datetime(2024, 5, 3, 23, 0) + timedelta(minutes=5 * i) for i in range(12 * 60)]
	senders = [now for last, now in pairwise(runs) if due_in(rule, doc, last, now)]
	assert senders == [datetime(2024, 5, 6, 9, 0)]


# ---------------------------------------------------------------- what the site asks the database for


@pytest.mark.parametrize(
	"event, window",
	[
		("Days Before", {}),
		("Days After", {}),
		("Minutes Before", {}),
		("Minutes After", {}),
		("Days After", WORKING_HOURS),
		("Minutes Before", {"send_after": "22:00", "send_before": "06:00", "send_days": "Sat"}),
	],
)
def test_every_document_due_in_a_run_lies_in_the_field_range(new_rule, event, window):
	days = event.startswith("Days")
	rule = new_rule(
		event=event,
		**(
			{"date_changed": "d", "days_in_advance": 3}
			if days
			else {"datetime_changed": "d", "minutes_offset": 45}
		),
		**window,
	)
	rng = random.Random(7)
	base = datetime(2024, 5, 1)
	for _ in range(2000):
		value = base + timedelta(minutes=rng.randrange(-20 * 24 * 60, 20 * 24 * 60))
		now = base + timedelta(minutes=rng.randrange(0, 24 * 60))
		since = now - timedelta(minutes=rng.choice((5, 60, 24 * 60)))
		low, high = field_range(rule, since, now)
		if due_in(rule, {"d": value.date() if days else value}, since, now):
			assert low <= value <= high


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
	"fields, text",
	[
		(
			{"event": "Days Before"},
			"R: date_changed: is required for event Days Before: choose the Date field",
		),
		(
			{"event": "Minutes After"},
			"R: datetime_changed: is required for event Minutes After: choose the Datetime",
		),
		(
			{"event": "Days After", "date_changed": "due date"},
			"R: date_changed: 'due date' is not a fieldname",
		),
		(
			{"event": "Days Before", "date_changed": "date", "days_in_advance": 100000},
			"R: days_in_advance: 100000 is more than 3660: enter 3660 or less",
		),
		(
			{"event": "Minutes Before", "datetime_changed": "d", "minutes_offset": -5},
			"R: minutes_offset: -5 is negative: enter 0 or more",
		),
		(
			{"event": "Days Before", "date_changed": "d", "send_after": "9am"},
			"R: send_after: '9am' is not a time of day: write it as 09:00",
		),
		(
			{"event": "Days Before", "date_changed": "d", "send_after": "25:00"},
			"R: send_after: '25:00' is not a time of day: hours 0-23, minutes 0-59",
		),
		(
			{"event": "Days Before", "date_changed": "d", "send_after": "09:00", "send_before": "09:00:00"},
			"R: send_before: equals send_after: leave both empty to send at any time",
		),
		(
			{"event": "Days Before", "date_changed": "d", "send_days": "Mon,Fri,Funday"},
			"R: send_days: 'Funday' is not a weekday: use Mon, Tue, Wed, Thu, Fri, Sat, Sun",
		),
	],
)
def test_time_rule_problems_name_the_field_and_the_fix(make_rule, fields, text):
	rule, problems = parse_rule(make_rule(rule_name="R", **fields))
	assert rule is None
	assert [str(p) for p in problems] == [text] or text in str(problems[0])


def test_fields_of_other_events_are_kept_but_not_checked(make_rule):
	rule, problems = parse_rule(
		make_rule(event="Save", date_changed="not a field!", method="1bad", send_after="19:12:17.861764")
	)
	assert problems == []
	assert rule.send_window is None  # a document event sends at once
