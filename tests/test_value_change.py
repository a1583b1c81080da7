"""Value Change: the watched field must differ, restricted by from_value / to_value."""

from decimal import Decimal

import pytest
from conftest import SUPPORT, audience, delivered_to

from rt_studio.engine import evaluate

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
