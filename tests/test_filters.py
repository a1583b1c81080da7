"""Filters conditions: Frappe's filter list, read in its shapes and meaning what a list view means."""

import time
from datetime import date, datetime

import pytest
from conftest import NOW, SUPPORT, audience, delivered_to

from rt_studio.engine import Context, evaluate, filters, parse_rule, preview
from rt_studio.engine.filters import FilterError, failing_filter, parse_filters, sql_like, timespan_range
from rt_studio.engine.memory import InMemoryMeta
from rt_studio.engine.ratelimit import InMemoryRateLimiter

TO_SUPPORT = audience(("User", {"user": SUPPORT}))
TODAY = NOW.date()  # Wednesday 2024-05-01

#: The fieldtypes a site would report for the ToDo fields these tests filter on.
META = InMemoryMeta(
	{
		("ToDo", "status"): "Select",
		("ToDo", "description"): "Text Editor",
		("ToDo", "qty"): "Int",
		("ToDo", "rate"): "Currency",
		("ToDo", "done"): "Check",
		("ToDo", "date"): "Date",
		("ToDo", "starts"): "Datetime",
		("ToDo", "at"): "Time",
		("ToDo Item", "qty"): "Int",
		("ToDo Item", "user"): "Link",
	}
)


def holds(value, operator, wanted, field="status", meta=META, today=TODAY) -> bool:
	filters = parse_filters([["ToDo", field, operator, wanted]], "ToDo")
	return failing_filter(filters, {field: value}, "ToDo", today, meta) is None


# ---------------------------------------------------------------- the shapes Frappe writes


@pytest.mark.parametrize(
	"raw",
	[
		[["ToDo", "status", "=", "Open"]],
		[["ToDo", "status", "=", "Open", False]],  # the filter editor adds its `hidden` flag
		[["status", "=", "Open"]],
		{"status": "Open"},
		{"status": ["=", "Open"]},
		'[["ToDo","status","=","Open",false]]',
		[[None, "status", None, "Open"]],  # no doctype: the rule's; no operator: =
	],
)
def test_every_shape_frappe_writes_reads_as_the_same_filter(raw):
	[f] = parse_filters(raw, "ToDo")
	assert (f.doctype, f.fieldname, f.operator, f.value) == ("ToDo", "status", "=", "Open")


def test_operators_are_read_without_case_as_the_editor_writes_them():
	[between, timespan] = parse_filters(
		[
			["ToDo", "date", "Between", ["2024-05-01", "2024-05-31"]],
			["ToDo", "date", "Timespan", "this week"],
		],
		"ToDo",
	)
	assert (between.operator, between.value) == ("between", ("2024-05-01", "2024-05-31"))
	assert (timespan.operator, timespan.value) == ("timespan", "this week")


def test_in_takes_a_list_or_values_separated_by_commas():
	[a, b] = parse_filters(
		[["status", "in", "Open, Closed"], ["status", "not in", ["Open", " Closed "]]], "ToDo"
	)
	assert a.value == b.value == ("Open", "Closed")


@pytest.mark.parametrize(
	"raw, text",
	[
		("[[", "not valid JSON"),
		("12", "must be a list of filters"),
		([["status", "="]], "filter 1: write it as [doctype, fieldname, operator, value]"),
		([["status", "=", "Open"], ["stat us", "=", 1]], "filter 2: 'stat us' is not a fieldname"),
		([["status", "equals", "Open"]], "filter 1: 'equals' is not an operator: use one of =, !=, >"),
		([["parent_todo", "descendants of", "T-1"]], "needs the database: list the names with 'in' instead"),
		([["status", "is", "empty"]], "filter 1: is takes 'set' or 'not set', not 'empty'"),
		([["date", "timespan", "someday"]], "filter 1: 'someday' is not a timespan: use one of last week"),
		([["date", "between", ["a", "b", "c"]]], "filter 1: between takes two values [from, to]"),
		([["status", "=", {"$ne": 1}]], "is not a value a filter compares with"),
		([["status", "=", "x"]] * 51, "51 filters: keep it to 50 or fewer"),
		([["status", "in", ["x"] * 1001]], "1001 values: keep it to 1000 or fewer"),
	],
)
def test_unreadable_filters_say_what_to_write(raw, text):
	with pytest.raises(FilterError, match=None) as error:
		parse_filters(raw, "ToDo")
	assert text in str(error.value)


def test_a_rule_with_bad_filters_names_the_rule_and_the_field(make_rule):
	rule, [problem] = parse_rule(make_rule(rule_name="R", condition_type="Filters", filters='[["status"]]'))
	assert rule is None
	assert str(problem) == "R: filters: filter 1: write it as [doctype, fieldname, operator, value]"


def test_a_python_condition_stays_available_and_the_other_type_is_not_used(make_rule):
	rule, problems = parse_rule(
		make_rule(condition_type="Python", condition="doc.status == 'Closed'", filters="[[[[")
	)
	assert problems == [] and rule.filters == ()
	rule, problems = parse_rule(
		make_rule(condition_type="Filters", condition="this is not python", filters=[])
	)
	assert problems == [] and rule.condition is None


def test_unknown_condition_type(make_rule):
	_rule, [problem] = parse_rule(make_rule(rule_name="R", condition_type="SQL"))
	assert str(problem) == "R: condition_type: 'SQL' is not a condition type: use Python or Filters"


# ---------------------------------------------------------------- evaluation inside the rule


def test_the_rule_fires_when_every_filter_holds(new_rule, make_event, ctx):
	rule = new_rule(
		condition_type="Filters",
		filters=[["ToDo", "status", "=", "Closed"], ["ToDo", "priority", "in", ["High", "Urgent"]]],
		audience=TO_SUPPORT,
	)
	outcome = evaluate(rule, make_event(), ctx)
	assert outcome.fired and outcome.condition is True
	assert delivered_to(outcome) == [SUPPORT]


def test_preview_names_the_filter_that_failed(new_rule, make_event, ctx):
	rule = new_rule(
		condition_type="Filters",
		filters=[["ToDo", "status", "=", "Closed"], ["ToDo", "priority", "=", "Low"]],
		audience=TO_SUPPORT,
	)
	outcome = preview(rule, make_event(), ctx)
	assert not outcome.fired and outcome.condition is False
	assert outcome.reason == "filter 2 (priority = Low) failed: priority is 'High'"
	assert outcome.recipients == []


def test_no_filters_means_no_condition(new_rule, make_event, ctx):
	outcome = evaluate(
		new_rule(condition_type="Filters", filters="[]", audience=TO_SUPPORT), make_event(), ctx
	)
	assert outcome.fired and outcome.condition is None


def test_test_fire_sends_whatever_the_filters_say_and_shows_their_result(new_rule, make_event, ctx):
	rule = new_rule(condition_type="Filters", filters=[["status", "=", "Open"]], audience=TO_SUPPORT)
	outcome = evaluate(rule, make_event(), ctx, check_condition=False)
	assert outcome.fired and outcome.condition is False


def test_timespans_count_from_the_context_clock(new_rule, make_event, ctx, todo):
	rule = new_rule(condition_type="Filters", filters=[["date", "timespan", "today"]], audience=TO_SUPPORT)
	assert evaluate(rule, make_event(doc={**todo, "date": "2024-05-01"}), ctx).fired
	outcome = evaluate(rule, make_event(doc={**todo, "date": "2024-05-02"}), ctx)
	assert outcome.reason == "filter 1 (date timespan today) failed: date is '2024-05-02'"


# ---------------------------------------------------------------- what each operator means


@pytest.mark.parametrize(
	"value, operator, wanted, expected",
	[
		("Open", "=", "open", True),  # MariaDB compares text without case
		("Open  ", "=", "Open", True),  # ... and without trailing spaces
		("Open", "!=", "OPEN", False),
		(None, "=", "", True),
		(None, "!=", "Open", True),
		(None, "=", "Open", False),
		("Open", ">", "Cancelled", True),
		("Open", "in", ["closed", "open"], True),
		(None, "in", ["", "Open"], True),
		(None, "not in", ["Open"], True),
		("Open", "not in", "Open,Closed", False),
		("Open", "is", "set", True),
		("", "is", "set", False),
		(None, "is", "not set", True),
	],
)
def test_text(value, operator, wanted, expected):
	assert holds(value, operator, wanted) is expected


@pytest.mark.parametrize(
	"value, operator, wanted, expected",
	[
		(10, ">", "9", True),  # as numbers: as text "10" < "9"
		(10, "<=", 10.0, True),
		(None, "=", 0, True),  # an empty number is 0
		(None, "<", 1, True),
		(0, "is", "set", False),  # 0 is not "set" ...
		(0, "is", "not set", False),  # ... nor "not set", as in SQL (Int columns are never NULL)
		(None, "is", "not set", True),
		(5, "is", "set", True),
		(5, "in", ["", "5"], True),
		(0, "in", ["", "5"], False),
		(5, "in", ["5", "6"], True),
		(5, "not in", "6, 7", True),
		(7, "between", [5, 10], True),
		(11, "between", [5, 10], False),
	],
)
def test_numbers(value, operator, wanted, expected):
	assert holds(value, operator, wanted, field="qty") is expected


@pytest.mark.parametrize(
	"value, operator, wanted, expected",
	[
		(1, "=", 1, True),
		(0, "=", 1, False),
		(None, "=", 0, True),
		(True, "=", "1", True),
		(1, "=", "Yes", True),
	],
)
def test_checks(value, operator, wanted, expected):
	assert holds(value, operator, wanted, field="done") is expected


@pytest.mark.parametrize(
	"value, operator, wanted, expected",
	[
		(date(2024, 5, 1), "<", "2024-05-02", True),
		("2024-05-01", "=", "2024-05-01", True),  # a date set through the API stays text
		(date(2024, 5, 1), ">=", "2024-05-01", True),
		(date(2024, 5, 1), ">", "2024-05-01", False),
		(None, "<", "2024-05-02", True),  # SQL: ifnull(date, '0001-01-01') < ...
		(None, "!=", "2024-05-02", True),
		(None, ">", "2000-01-01", False),  # an empty date never exceeds one
		(None, "=", "2024-05-02", False),
		(date(2024, 5, 31), "between", ["2024-05-01", "2024-05-31"], True),
		(date(2024, 6, 1), "between", ["2024-05-01", "2024-05-31"], False),
		(None, "between", ["2000-01-01", "2099-12-31"], False),
		(date(2024, 5, 1), "between", ["2024-05-01"], True),  # a missing bound is today
		(None, "is", "not set", True),
		(date(2024, 5, 1), "is", "set", True),
	],
)
def test_dates(value, operator, wanted, expected):
	assert holds(value, operator, wanted, field="date") is expected


@pytest.mark.parametrize(
	"value, operator, wanted, expected",
	[
		(datetime(2024, 5, 31, 23, 30), "between", ["2024-05-01", "2024-05-31"], True),  # the whole last day
		(datetime(2024, 6, 1, 0, 0), "between", ["2024-05-01", "2024-05-31"], False),
		(datetime(2024, 5, 1, 9, 0), ">", "2024-05-01 08:59:59", True),
		("2024-05-01 09:00:00", "<", "2024-05-01 10:00", True),
		(datetime(2024, 5, 1, 9, 0), "=", "2024-05-01", False),  # = midnight only, as SQL
		(datetime(2024, 5, 1, 0, 0), "=", "2024-05-01", True),
	],
)
def test_datetimes(value, operator, wanted, expected):
	assert holds(value, operator, wanted, field="starts") is expected


@pytest.mark.parametrize(
	"value, operator, wanted, expected",
	[("09:30:00", ">", "09:00", True), ("09:30:00", "<", "9:15:00", False), (None, "<", "00:00:01", True)],
)
def test_times(value, operator, wanted, expected):
	assert holds(value, operator, wanted, field="at") is expected


@pytest.mark.parametrize(
	"text, pattern, expected",
	[
		("Call the customer", "%call%", True),
		("Call the customer", "call", False),  # SQL: without % the whole value must match
		("Call the customer", "call the customer", True),
		("Call the customer", "Call_the%", True),
		("Call the customer", "%customer", True),
		("Call the customer", "%the", False),
		("100% off", "100%", True),
		("a\\b", "a\\b", True),  # no escapes: a list view cannot escape % either
		("100% off", "100\\%%", False),
		("", "%", True),
		("abc", "a%b%c", True),
		("abc", "a%c%b", False),
		("aXbXc", "a_b_c", True),
		("aXbXc", "%X_X%", True),
		("ab", "a__", False),
	],
)
def test_like_is_sql_like(text, pattern, expected):
	assert sql_like(text, pattern) is expected


def test_like_and_not_like_on_an_empty_field():
	assert holds(None, "like", "%open%") is False
	assert holds(None, "not like", "%open%") is True


def test_a_hostile_like_pattern_costs_a_few_scans_of_the_text(monkeypatch):
	"""Counted, not timed: one search per piece between the `%`s, and for a piece with `_` one
	comparison per place its longest literal run occurs (a backtracking matcher would make
	millions of attempts on these)."""
	text = "a" * 200_000
	calls = {"find": 0, "at": 0}
	find, at = filters._find_piece, filters._piece_at

	def counting_find(*args):
		calls["find"] += 1
		return find(*args)

	def counting_at(*args):
		calls["at"] += 1
		return at(*args)

	monkeypatch.setattr(filters, "_find_piece", counting_find)
	monkeypatch.setattr(filters, "_piece_at", counting_at)
	assert sql_like(text, "%a%a%a%a%a%a%a%a%a%a%a%b") is False
	assert calls["find"] <= 12 and calls["at"] <= 2
	calls.update(find=0, at=0)
	assert sql_like(text, "%a_a_a_a_a_a_a_a_a_a_b%") is False
	assert calls["find"] == 1 and calls["at"] <= len(text) + 2


@pytest.mark.parametrize(
	"timespan, first_day, expected",
	[
		("today", 6, (date(2024, 5, 1), date(2024, 5, 1))),
		("yesterday", 6, (date(2024, 4, 30), date(2024, 4, 30))),
		("this week", 6, (date(2024, 4, 28), date(2024, 5, 4))),  # Sunday to Saturday
		("this week", 0, (date(2024, 4, 29), date(2024, 5, 5))),  # Monday to Sunday
		("next week", 0, (date(2024, 5, 6), date(2024, 5, 12))),
		("last month", 6, (date(2024, 4, 1), date(2024, 4, 30))),
		("this month", 6, (date(2024, 5, 1), date(2024, 5, 31))),
		("next month", 6, (date(2024, 6, 1), date(2024, 6, 30))),
		("this quarter", 6, (date(2024, 4, 1), date(2024, 6, 30))),
		("last quarter", 6, (date(2024, 1, 1), date(2024, 3, 31))),
		("last 6 months", 6, (date(2023, 10, 1), date(2024, 3, 31))),
		("next 6 months", 6, (date(2024, 7, 1), date(2024, 12, 31))),
		("last year", 6, (date(2023, 1, 1), date(2023, 12, 31))),
		("next year", 6, (date(2025, 1, 1), date(2025, 12, 31))),
	],
)
def test_timespans_as_frappe_counts_them(timespan, first_day, expected):
	assert timespan_range(timespan, TODAY, first_day) == expected


def test_this_week_follows_the_sites_first_day_of_the_week():
	sunday = date(2024, 5, 5)
	assert holds(
		sunday, "timespan", "this week", field="date", meta=InMemoryMeta({("ToDo", "date"): "Date"}, 0)
	)
	assert not holds(
		sunday, "timespan", "this week", field="date", meta=InMemoryMeta({("ToDo", "date"): "Date"}, 6)
	)


# ---------------------------------------------------------------- child tables


def order(*rows) -> dict:
	return {
		"name": "TD-1",
		"items": [{"doctype": "ToDo Item", "idx": i, **row} for i, row in enumerate(rows, 1)],
	}


def test_a_child_table_filter_holds_when_one_row_meets_it():
	filters = parse_filters([["ToDo Item", "qty", ">", 5]], "ToDo")
	assert failing_filter(filters, order({"qty": 2}, {"qty": 9}), "ToDo", TODAY, META) is None
	failed = failing_filter(filters, order({"qty": 2}, {"qty": 3}), "ToDo", TODAY, META)
	assert str(failed) == "filter 1 (ToDo Item qty > 5) failed: no ToDo Item row has it"


def test_filters_on_one_child_table_must_hold_on_the_same_row():
	filters = parse_filters(
		[
			["ToDo", "status", "=", "Open"],
			["ToDo Item", "qty", ">", 5],
			["ToDo Item", "user", "=", "a@x.com"],
		],
		"ToDo",
	)
	doc = {**order({"qty": 9, "user": "b@x.com"}, {"qty": 1, "user": "a@x.com"}), "status": "Open"}
	failed = failing_filter(filters, doc, "ToDo", TODAY, META)
	assert (
		str(failed) == "filter 2 (ToDo Item qty > 5) failed: no ToDo Item row meets filters 2 and 3 at once"
	)
	doc["items"].append({"doctype": "ToDo Item", "qty": 6, "user": "A@X.com"})
	assert failing_filter(filters, doc, "ToDo", TODAY, META) is None


@pytest.mark.parametrize(
	"field, operator, value, expected",
	[
		("qty", "!=", 5, False),  # a missing number is NULL: no comparison holds ...
		("qty", "=", 0, False),
		("qty", "<", 5, False),
		("qty", "is", "not set", True),  # ... but "not set" and "not in" (ifnull) do
		("qty", "not in", ["5"], True),
		("qty", "in", ["", "5"], True),
		("user", "!=", "a@x.com", True),  # missing text is "" (ifnull) for !=
		("user", "=", "a@x.com", False),
		("user", "is", "not set", True),
	],
)
def test_a_document_without_rows_joins_one_missing_row_as_in_sql(field, operator, value, expected):
	filters = parse_filters([["ToDo Item", field, operator, value]], "ToDo")
	assert (failing_filter(filters, order(), "ToDo", TODAY, META) is None) is expected


# ---------------------------------------------------------------- offline: types read from the values


@pytest.mark.parametrize(
	"value, operator, wanted, expected",
	[
		(10, ">", 9, True),
		("10", ">", 9, True),  # a number in the filter makes it a number comparison
		("2024-05-01", "<", "2024-05-10", True),
		("2024-05-01 10:00:00", "between", ["2024-05-01", "2024-05-01"], True),
		("2024-05-01", "timespan", "today", True),
		("Open", "=", "open", True),
		("b", ">", "A", True),
	],
)
def test_without_a_site_the_kind_is_read_from_the_values(value, operator, wanted, expected):
	assert holds(value, operator, wanted, field="anything", meta=None) is expected


def test_filters_over_a_huge_child_table_stop_at_the_rules_time_budget(new_rule, make_event, directory, todo):
	rows = [{"doctype": "ToDo Item", "qty": i % 5, "user": "a@x.com"} for i in range(300_000)]
	rule = new_rule(
		condition_type="Filters",
		filters=[["ToDo Item", "qty", ">", 5], ["ToDo Item", "user", "like", "%zz%"]],
		audience=TO_SUPPORT,
	)
	ctx = Context(directory, InMemoryRateLimiter(), now=lambda: NOW, budget_ms=50)
	event = make_event(doc={**todo, "items": rows})
	started = time.perf_counter()
	outcome = evaluate(rule, event, ctx)
	assert time.perf_counter() - started < 1.0
	assert not outcome.fired
	assert outcome.error.field == "filters"
	assert "ran longer than its budget of 50 ms" in outcome.error.problem
