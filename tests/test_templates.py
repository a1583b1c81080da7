"""Templates: compiled once, document values escaped, per-recipient or shared rendering."""

import pytest
from conftest import FOLLOWER, OWNER, SUPPORT, CountingTemplate, audience

import rt_studio.engine.templates as templates
from rt_studio.engine import evaluate

XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
TWO_USERS = audience(("User", {"user": SUPPORT}), ("User", {"user": OWNER}))


def test_templates_are_compiled_once(new_rule, make_event, ctx, monkeypatch):
	rule = new_rule(audience=TWO_USERS, subject="S {{ doc.name }}", message="M {{ recipient }}")
	compiled = rule.subject.template, rule.message.template
	calls = []
	real = templates.TEMPLATES.from_string
	monkeypatch.setattr(templates.TEMPLATES, "from_string", lambda *a, **k: calls.append(a) or real(*a, **k))
	for _ in range(3):
		outcome = evaluate(rule, make_event(), ctx)
		assert [d.message["subject"] for d in outcome.deliveries] == ["S TD-1", "S TD-1"]
	assert calls == []
	assert (rule.subject.template, rule.message.template) == compiled


def test_document_values_are_escaped_author_markup_is_kept(new_rule, make_event, ctx, todo):
	rule = new_rule(
		audience=TWO_USERS,
		subject="New: {{ doc.description }}",
		message="<b>{{ doc.description }}</b> by <i>{{ actor }}</i>",
	)
	outcome = evaluate(rule, make_event(doc={**todo, "description": XSS}), ctx)
	message = outcome.deliveries[0].message
	assert message["subject"] == f"New: {ESCAPED}"
	assert message["message"] == f"<b>{ESCAPED}</b> by <i>actor@example.com</i>"
	assert "<img" not in message["subject"] + message["message"]


def test_none_renders_as_empty(new_rule, make_event, ctx, todo):
	rule = new_rule(
		audience=TWO_USERS,
		subject="[{{ doc.date }}]",
		message="[{{ doc.missing }}][{{ doc.missing.deeper }}][{{ doc_before_save }}]",
	)
	outcome = evaluate(rule, make_event(doc={**todo, "date": None}, before=None), ctx)
	assert outcome.deliveries[0].message["subject"] == "[]"
	assert outcome.deliveries[0].message["message"] == "[][][]"


def test_recipient_makes_rendering_per_recipient(new_rule, make_event, ctx):
	rule = new_rule(audience=TWO_USERS, subject="{{ doc.name }}", message="Hello {{ recipient }}")
	assert rule.message.per_recipient and not rule.subject.per_recipient
	counter = rule.message.template = CountingTemplate(rule.message.template)
	outcome = evaluate(rule, make_event(), ctx)
	messages = {d.user: d.message["message"] for d in outcome.deliveries}
	assert messages == {SUPPORT: f"Hello {SUPPORT}", OWNER: f"Hello {OWNER}"}
	assert counter.renders == 2


def test_shared_rendering_renders_once_for_everyone_who_reads_the_same_fields(new_rule, make_event, ctx):
	rule = new_rule(
		audience=audience(("User", {"user": OWNER}), ("User", {"user": FOLLOWER})),
		subject="{{ doc.name }}",
		message="Closed by {{ actor }}",
	)
	assert not rule.message.per_recipient and not rule.subject.per_recipient
	counter = rule.message.template = CountingTemplate(rule.message.template)
	outcome = evaluate(rule, make_event(), ctx)
	assert len(outcome.deliveries) == 2
	assert {d.message["message"] for d in outcome.deliveries} == {"Closed by actor@example.com"}
	assert counter.renders == 1


@pytest.mark.parametrize(
	"field, template, error",
	[
		("message", "{{ 1 / doc.zero }}", "ZeroDivisionError: division by zero"),
		("subject", "{{ doc.name.nope() }}", "UndefinedError"),
		("subject", "{{ recipient.upper() }} {{ 1 // doc.zero }}", "ZeroDivisionError"),
	],
)
def test_template_that_raises_at_render_time_is_a_rule_error(
	new_rule, make_event, ctx, todo, field, template, error
):
	rule = new_rule(rule_name="Renderer", audience=TWO_USERS, **{field: template})
	outcome = evaluate(rule, make_event(doc={**todo, "zero": 0}), ctx)
	assert not outcome.fired
	assert outcome.deliveries == []
	assert (outcome.error.rule, outcome.error.field) == ("Renderer", field)
	assert outcome.error.problem.startswith("failed on this document: ")
	assert error in outcome.error.problem


def test_private_keys_are_refused_in_templates_as_in_conditions(new_rule, make_event, ctx, todo):
	rule = new_rule(rule_name="Peeker", subject="{{ doc['_assign'] }}")
	outcome = evaluate(rule, make_event(doc={**todo, "_assign": '["x@example.com"]'}), ctx)
	assert not outcome.fired
	assert (outcome.error.rule, outcome.error.field) == ("Peeker", "subject")
	assert "_assign" in outcome.error.problem
