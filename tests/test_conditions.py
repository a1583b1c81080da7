"""Conditions: Notification's names, child rows, compiled once, failures as rule errors."""

from datetime import datetime

import pytest
from conftest import SUPPORT, audience, delivered_to

import rt_studio.engine.sandbox as sandbox
from rt_studio.engine import evaluate, utils

TO_SUPPORT = audience(("User", {"user": SUPPORT}))


@pytest.fixture
def when(new_rule):
	return lambda condition, **overrides: new_rule(condition=condition, audience=TO_SUPPORT, **overrides)


@pytest.mark.parametrize(
	"condition, expected",
	[
		("doc.priority == 'High'", True),
		("doc.priority == 'Low'", False),
		("doc.status == 'Closed' and doc_before_save.status == 'Open'", True),
		("doc_before_save.status == 'Closed'", False),
		("doc.nothing is None", True),
		("doc.get('priority') in ('High', 'Urgent')", True),
		("doc.date == nowdate()", True),
		("frappe.utils.date_diff(doc.date, '2000-01-01') > 365", True),
		("frappe.utils.getdate(doc.date) == frappe.utils.getdate()", True),
		("frappe.utils.flt(doc.amount) > 1000", True),
		("frappe.utils.flt(doc.amount, 1) == 1234.6", True),
		("frappe.utils.cint(doc.qty) == 7", True),
		("any(r.qty > 5 for r in doc.items)", True),
		("all(r.qty > 5 for r in doc.items)", False),
		("len([r for r in doc.items if r.item == 'B']) == 1", True),
		("sum(r.qty for r in doc.items) == 10", True),
		("actor == 'actor@example.com'", True),
		("event == 'Save'", True),
	],
)
def test_condition_sees_notification_names(when, make_event, ctx, todo, condition, expected, monkeypatch):
	# one "now" for the document and for nowdate(): a run across midnight sees the same day
	monkeypatch.setattr(utils, "_now", lambda: datetime(2024, 5, 1, 23, 59, 59, 999999))
	doc = {
		**todo,
		"date": "2024-05-01",
		"amount": "1,234.56",
		"qty": "7",
		"items": [{"item": "A", "qty": 3}, {"item": "B", "qty": 7}],
	}
	outcome = evaluate(when(condition), make_event(doc=doc), ctx)
	assert outcome.error is None
	assert outcome.condition is expected
	assert outcome.fired is expected
	assert delivered_to(outcome) == ([SUPPORT] if expected else [])
	if not expected:
		assert outcome.reason == "condition is false"


def test_no_doc_before_save_is_none(when, make_event, ctx):
	outcome = evaluate(when("doc_before_save is None"), make_event(before=None), ctx)
	assert outcome.condition is True


def test_condition_is_compiled_once(when, make_event, ctx, monkeypatch):
	rule = when("doc.priority == 'High'")
	compiled = rule.condition
	assert compiled is not None and not isinstance(compiled, str)
	calls = []
	real = sandbox.compile_restricted
	monkeypatch.setattr(sandbox, "compile_restricted", lambda *a, **k: calls.append(a) or real(*a, **k))
	for _ in range(3):
		assert evaluate(rule, make_event(), ctx).fired
	assert calls == []
	assert rule.condition is compiled


@pytest.mark.parametrize(
	"condition, error",
	[
		("1 / 0", "ZeroDivisionError: division by zero"),
		("doc.customer.name == 'x'", "AttributeError: 'NoneType' object has no attribute 'name'"),
		("doc_before_save.status", "AttributeError"),
		("int(doc.description) > 1", "ValueError"),
	],
)
def test_condition_that_raises_is_a_rule_error(when, make_event, ctx, condition, error):
	outcome = evaluate(when(condition, rule_name="Raiser"), make_event(before=None), ctx)
	assert not outcome.fired
	assert outcome.deliveries == []
	assert outcome.error.rule == "Raiser"
	assert outcome.error.field == "condition"
	assert outcome.error.problem.startswith("failed on this document: ")
	assert error in outcome.error.problem
	assert outcome.reason == f"error: {outcome.error}"
	assert str(outcome.error).startswith("Raiser: condition: failed on this document")


def test_a_raising_rule_does_not_stop_the_next(when, make_event, ctx):
	event = make_event()
	broken, good = when("1 / 0", rule_name="Broken"), when("True", rule_name="Good")
	outcomes = [evaluate(rule, event, ctx) for rule in (broken, good)]
	assert [o.fired for o in outcomes] == [False, True]
	assert outcomes[0].error.field == "condition"
	assert outcomes[1].error is None


def test_a_false_condition_asks_the_site_nothing(when, make_event, ctx, monkeypatch):
	# the trigger is decided before the audience: no user, role or permission is looked up
	asked = []
	for name in ("enabled_users", "canonical_users", "readers", "can_read", "hidden_fields", "languages"):
		real = getattr(ctx.directory, name)
		monkeypatch.setattr(
			ctx.directory, name, lambda *a, _r=real, _n=name, **k: asked.append(_n) or _r(*a, **k)
		)
	outcome = evaluate(when("doc.priority == 'Low'"), make_event(), ctx)
	assert (outcome.condition, outcome.reason, outcome.recipients) == (False, "condition is false", [])
	assert asked == []
	# and the same rule, true, does ask (the wrapping above sees the site's lookups)
	assert evaluate(when("doc.priority == 'High'"), make_event(), ctx).fired
	assert asked


def test_after_the_condition_the_texts_still_see_every_shared_name(when, make_event, ctx, monkeypatch):
	monkeypatch.setattr(utils, "_now", lambda: datetime(2024, 5, 1, 12, 0))
	rule = when(
		"doc.priority == 'High'",
		subject="{{ _('Due') }} {{ nowdate() }} {{ frappe.utils.flt('2.50') }} {{ event }} {{ rule }}",
		rule_name="Shared",
	)
	outcome = evaluate(rule, make_event(), ctx)
	assert outcome.error is None, outcome.error
	assert [d.message["subject"] for d in outcome.deliveries] == ["Due 2024-05-01 2.5 Save Shared"]
