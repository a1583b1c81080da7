"""Value Change: the watched field must differ, restricted by from_value / to_value."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from conftest import SUPPORT, audience, delivered_to

from rt_studio.engine import evaluate
from rt_studio.engine.values import written_problem

TO_SUPPORT = audience(("User", {"user": SUPPORT}))


@pytest.fixture
def watch(new_rule):
	def make(field="status", **overrides):
		return new_rule(event="Value Change", value_changed=field, audience=TO_SUPPORT, **overrides)

	return make


def test_changed_fires(watch, make_event, ctx):
	outcome = evaluate(watch(), make_event("Value Change"), ctx)
	assert outcome.fired
	assert delivered_to(outcome) == [SUPPORT]
	assert outcome.reason == "1 of 1 recipients"


def test_unchanged_does_not_fire(watch, make_event, ctx, todo):
	outcome = evaluate(watch(), make_event("Value Change", before=dict(todo)), ctx)
	assert not outcome.fired
	assert outcome.deliveries == []
	assert outcome.reason == "status did not change"


def test_from_and_to_matching_fire(watch, make_event, ctx):
	outcome = evaluate(watch(from_value="Open", to_value="Closed"), make_event("Value Change"), ctx)
	assert outcome.fired
	assert delivered_to(outcome) == [SUPPORT]


def test_from_mismatch(watch, make_event, ctx):
	outcome = evaluate(watch(from_value="Pending"), make_event("Value Change"), ctx)
	assert not outcome.fired
	assert outcome.reason == "status changed from 'Open', the rule wants from 'Pending'"


def test_to_mismatch(watch, make_event, ctx):
	outcome = evaluate(watch(to_value="Cancelled"), make_event("Value Change"), ctx)
	assert not outcome.fired
	assert outcome.reason == "status changed to 'Closed', the rule wants to 'Cancelled'"


@pytest.mark.parametrize(
	"old, new", [(10, 10.0), (10, "10"), ("10", 10.0), (Decimal("10.00"), 10), (None, "")]
)
def test_numbers_and_text_that_read_the_same_are_unchanged(watch, make_event, ctx, todo, old, new):
	event = make_event("Value Change", doc={**todo, "qty": new}, before={**todo, "qty": old})
	outcome = evaluate(watch("qty"), event, ctx)
	assert not outcome.fired
	assert outcome.reason == "qty did not change"


def test_number_transition_matches_typed_values(watch, make_event, ctx, todo):
	event = make_event("Value Change", doc={**todo, "qty": 11.0}, before={**todo, "qty": Decimal("10.00")})
	outcome = evaluate(watch("qty", from_value="10", to_value="11"), event, ctx)
	assert outcome.fired
	assert delivered_to(outcome) == [SUPPORT]


def test_number_change_to_other_value(watch, make_event, ctx, todo):
	event = make_event("Value Change", doc={**todo, "qty": 12.5}, before={**todo, "qty": 10})
	outcome = evaluate(watch("qty", to_value="11"), event, ctx)
	assert not outcome.fired
	assert outcome.reason == "qty changed to '12.5', the rule wants to '11'"


def test_no_before_document(watch, make_event, ctx):
	outcome = evaluate(watch(), make_event("Value Change", before=None), ctx)
	assert not outcome.fired
	assert outcome.reason == "no earlier version of the document to compare status with"


def test_the_rule_only_answers_its_own_event(watch, make_event, ctx):
	outcome = evaluate(watch(), make_event("Save"), ctx)
	assert not outcome.fired
	assert outcome.reason == "the rule listens to Value Change, not Save"


def test_non_finite_numbers_compare_without_crashing():
	from rt_studio.engine.docview import as_text

	assert as_text(float("nan")) == "nan"
	assert as_text(float("inf")) == "inf"


# ---------------------------------------------------------------- child rows: value_changed = table.field


def with_items(todo, *rows):
	return {**todo, "items": [{"doctype": "ToDo Item", "idx": i, **row} for i, row in enumerate(rows, 1)]}


ROW_A = {"name": "row-a", "item": "Pen", "qty": 1}
ROW_B = {"name": "row-b", "item": "Ink", "qty": 5}


@pytest.fixture
def rows_rule(watch):
	def make(**overrides):
		overrides.setdefault(
			"message",
			"{% for c in changed_rows %}{{ c.change }} {{ c.row.item }} {{ c.old }}>{{ c.new }};{% endfor %}",
		)
		return watch("items.qty", **overrides)

	return make


def test_a_row_whose_field_changed_fires_and_the_template_gets_it(rows_rule, make_event, ctx, todo):
	event = make_event(
		"Value Change",
		doc=with_items(todo, ROW_A, {**ROW_B, "qty": 7}),
		before=with_items(todo, ROW_A, ROW_B),
	)
	outcome = evaluate(rows_rule(), event, ctx)
	assert outcome.fired
	assert outcome.deliveries[0].message["message"] == "changed Ink 5>7;"


def test_added_and_removed_rows_fire(rows_rule, make_event, ctx, todo):
	event = make_event(
		"Value Change",
		doc=with_items(todo, ROW_B, {"name": "row-c", "item": "Cap", "qty": 2}),
		before=with_items(todo, ROW_A, ROW_B),
	)
	outcome = evaluate(rows_rule(), event, ctx)
	assert outcome.deliveries[0].message["message"] == "added Cap >2;removed Pen 1>;"


def test_other_fields_of_rows_changing_do_not_fire(rows_rule, make_event, ctx, todo):
	event = make_event(
		"Value Change", doc=with_items(todo, {**ROW_A, "item": "Pencil"}), before=with_items(todo, ROW_A)
	)
	outcome = evaluate(rows_rule(), event, ctx)
	assert not outcome.fired
	assert outcome.reason == "no items row was added, removed or changed its qty"


def test_from_and_to_select_the_rows(rows_rule, make_event, ctx, todo):
	event = make_event(
		"Value Change",
		doc=with_items(todo, {**ROW_A, "qty": 0}, {**ROW_B, "qty": 0}),
		before=with_items(todo, ROW_A, ROW_B),
	)
	outcome = evaluate(rows_rule(from_value="5", to_value="0"), event, ctx)
	assert outcome.deliveries[0].message["message"] == "changed Ink 5>0;"
	outcome = evaluate(rows_rule(from_value="9"), event, ctx)
	assert not outcome.fired
	assert outcome.reason == "items row 1: qty changed from '1', the rule wants from '9'"


def test_rows_without_names_are_matched_by_position(rows_rule, make_event, ctx, todo):
	event = make_event(
		"Value Change",
		doc=with_items(todo, {"item": "Pen", "qty": 1}, {"item": "Ink", "qty": 6}),
		before=with_items(todo, {"item": "Pen", "qty": 1}, {"item": "Ink", "qty": 5}),
	)
	assert evaluate(rows_rule(), event, ctx).deliveries[0].message["message"] == "changed Ink 5>6;"


def test_conditions_see_the_changed_rows(rows_rule, make_event, ctx, todo):
	event = make_event(
		"Value Change", doc=with_items(todo, {**ROW_B, "qty": 50}), before=with_items(todo, ROW_B)
	)
	big = rows_rule(condition="any(c.new and int(c.new) > 10 for c in changed_rows)")
	assert evaluate(big, event, ctx).fired
	small = rows_rule(condition="any(c.new and int(c.new) > 100 for c in changed_rows)")
	assert evaluate(small, event, ctx).reason == "condition is false"


# ---------------------------------------------------------------- typed From / To values


@pytest.mark.parametrize(
	"field, old, new, from_value, to_value",
	[
		("amount", 5.0, 10.0, "5", "10.00"),  # Currency: as the site gives it, a float
		("amount", Decimal("5.00"), Decimal("10.50"), "5.0", "10.5"),
		("amount", 900, 1234.5, "900", "1,234.50"),
		("done", 0, 1, "false", "true"),  # Check: 0/1 on a site
		("done", 0, 1, "0", "yes"),
		("done", False, True, "no", "1"),
		("due", date(2024, 5, 30), date(2024, 5, 31), "2024-05-30", "2024-05-31"),
		("due", "2024-05-30", "2024-05-31", "2024-05-30", "2024-05-31"),  # offline JSON: text
		(
			"at",
			datetime(2024, 5, 31, 9, 0),
			datetime(2024, 5, 31, 14, 30),
			"2024-05-31 09:00",
			"2024-05-31 14:30:00",
		),
		("at", "2024-05-31 09:00:00", "2024-05-31 14:30:00", "2024-05-31T09:00", "2024-05-31 14:30"),
		("starts", timedelta(hours=9), timedelta(hours=14, minutes=30), "09:00", "14:30:00"),
		("status", "Open", "Closed", " Open ", "Closed"),
	],
)
def test_from_and_to_values_compare_as_the_fields_type(
	watch, make_event, ctx, todo, field, old, new, from_value, to_value
):
	event = make_event("Value Change", doc={**todo, field: new}, before={**todo, field: old})
	outcome = evaluate(watch(field, from_value=from_value, to_value=to_value), event, ctx)
	assert outcome.reason == "1 of 1 recipients"
	assert delivered_to(outcome) == [SUPPORT]


@pytest.mark.parametrize(
	"field, old, new, to_value",
	[
		("amount", 5.0, 10.0, "10.01"),
		("amount", 5.0, 10.0, "ten"),
		("done", 0, 1, "false"),
		("due", date(2024, 5, 30), date(2024, 5, 31), "2024-05-30"),
		("due", date(2024, 5, 30), date(2024, 5, 31), "31-05-2024"),
		("at", datetime(2024, 5, 31, 9, 0), datetime(2024, 5, 31, 14, 30), "2024-05-31"),
		("status", "Open", "closed", "Closed"),  # text compares as written
		("code", "7", "10.00", "10"),  # a number kept in a text field is text
	],
)
def test_a_different_value_of_the_type_does_not_match(
	watch, make_event, ctx, todo, field, old, new, to_value
):
	event = make_event("Value Change", doc={**todo, field: new}, before={**todo, field: old})
	outcome = evaluate(watch(field, to_value=to_value), event, ctx)
	assert not outcome.fired
	assert "the rule wants to" in outcome.reason


@pytest.mark.parametrize(
	"old, new, from_value, to_value, fires",
	[
		("Call", None, "", "(empty)", True),  # cleared
		("Call", "", "", "(EMPTY)", True),
		("Call", "Visit", "", "(empty)", False),
		(None, "Call", "(empty)", "", True),  # filled in
		("  ", "Call", "(empty)", "Call", True),
		("Visit", "Call", "(empty)", "", False),
		(0, 5, "(empty)", "", False),  # 0 is a value, not empty
	],
)
def test_changed_to_and_from_empty(watch, make_event, ctx, todo, old, new, from_value, to_value, fires):
	event = make_event("Value Change", doc={**todo, "note": new}, before={**todo, "note": old})
	outcome = evaluate(watch("note", from_value=from_value, to_value=to_value), event, ctx)
	assert outcome.fired is fires, outcome.reason


@pytest.mark.parametrize(
	"fieldtype, written, problem",
	[
		("Currency", "10.00", None),
		("Check", "true", None),
		("Int", "(empty)", None),
		("Date", "2024-05-31", None),
		("Data", "anything", None),
		("Currency", "ten", "'ten' is not a number"),
		("Date", "31-05-2024", "'31-05-2024' is not a date: write it as 2024-05-31"),
		("Date", "2024-05-31 10:00", "is not a date"),
		("Datetime", "tomorrow", "is not a date and time"),
		("Time", "half past two", "is not a time: write it as 14:30"),
	],
)
def test_a_value_the_field_cannot_hold_is_named_when_the_rule_is_saved(fieldtype, written, problem):
	found = written_problem(fieldtype, written)
	assert (found is None) if problem is None else problem in found


def test_preview_simulates_the_change_the_rule_watches(rows_rule, watch, make_event, ctx, todo):
	from rt_studio.engine.changes import simulated_before

	doc = with_items(todo, ROW_A, {**ROW_B, "qty": None})
	before = simulated_before(rows_rule(), doc)
	assert [row["qty"] for row in before["items"]] == [None, "(changed)"]
	assert evaluate(rows_rule(), make_event("Value Change", doc=doc, before=before), ctx).fired
	assert simulated_before(rows_rule(from_value="9"), doc)["items"][0]["qty"] == "9"
	assert simulated_before(watch(), todo)["status"] is None
	assert simulated_before(watch(from_value="Open"), todo)["status"] == "Open"
