"""Output stays escaped, on RT Studio's own socket events, and without private columns."""

import json

import pytest
from conftest import SUPPORT, audience
from markupsafe import Markup

from rt_studio.engine import RuleError, compile_rule, evaluate, parse_channel, parse_rule
from rt_studio.engine.rules import FRAPPE_SOCKET_EVENTS

TO_SUPPORT = audience(("User", {"user": SUPPORT}))
XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
PRIVATE = {"_assign": '["secret-assignee@example.com"]', "_comments": '[{"by": "secret-commenter"}]'}


def problems_of(data) -> list[str]:
	_rule, problems = parse_rule(data)
	return [str(p) for p in problems]


# ---------------------------------------------------------------- escaping cannot be switched off


@pytest.mark.parametrize(
	"template, text",
	[
		("{{ doc.description|safe }}", "|safe is not allowed (line 1): document values are always escaped"),
		("{{ doc.description|e|safe }}", "|safe is not allowed"),
		("{% filter safe %}{{ doc.description }}{% endfilter %}", "|safe is not allowed"),
		("{% autoescape false %}{{ doc.description }}{% endautoescape %}", "{% autoescape %} is not allowed"),
		("{% autoescape true %}{{ doc.description }}{% endautoescape %}", "{% autoescape %} is not allowed"),
		("{% include 'other.html' %}", "cannot include, import or extend"),
		("{% import 'macros.html' as m %}", "cannot include, import or extend"),
		("{% extends 'base.html' %}", "cannot include, import or extend"),
	],
)
def test_templates_that_switch_escaping_off_are_refused_when_compiled(make_rule, template, text):
	[problem] = problems_of(make_rule(rule_name="Raw", message=template))
	assert problem.startswith("Raw: message: ")
	assert text in problem


def test_a_markup_value_in_a_document_is_escaped_like_any_text(new_rule, make_event, ctx, todo):
	rule = new_rule(
		audience=TO_SUPPORT, subject="{{ doc.description }}", message="<p>{{ doc.description }}</p>"
	)
	outcome = evaluate(rule, make_event(doc={**todo, "description": Markup(XSS)}), ctx)
	message = outcome.deliveries[0].message
	assert message["subject"] == ESCAPED
	assert message["message"] == f"<p>{ESCAPED}</p>"


def test_escaping_holds_in_formatting_joining_and_macros(new_rule, make_event, ctx, todo):
	rule = new_rule(
		audience=TO_SUPPORT,
		message=(
			"{% macro show(x) %}<i>{{ x }}</i>{% endmacro %}"
			"{{ show(doc.description) }}|{{ '%s'|format(doc.description) }}|{{ [doc.description]|join }}|"
			"{{ '{}'.format(doc.description) }}|{{ doc.description ~ '' }}"
		),
	)
	outcome = evaluate(rule, make_event(doc={**todo, "description": XSS}), ctx)
	assert outcome.deliveries[0].message["message"] == "|".join(
		[f"<i>{ESCAPED}</i>", ESCAPED, ESCAPED, ESCAPED, ESCAPED]
	)


# ---------------------------------------------------------------- Frappe's own socket events


@pytest.mark.parametrize(
	"name", ["msgprint", "eval_js", "progress", "list_update", "doc_update", "notification"]
)
def test_a_rule_cannot_publish_on_frappes_own_socket_events(make_rule, name):
	assert problems_of(make_rule(rule_name="Hijack", event_name=name)) == [
		f"Hijack: event_name: {name!r} is one of Frappe's own socket events: choose another name, e.g. rt_studio"
	]


@pytest.mark.parametrize("name", ["msgprint", "task_complete:abc", "task_progress", "disconnect"])
def test_a_channel_cannot_publish_on_frappes_own_socket_events(name):
	channel, problems = parse_channel({"channel_name": "C", "event_name": name})
	assert channel is None
	assert [p.field for p in problems] == ["event_name"]
	assert "one of Frappe's own socket events" in problems[0].problem


def test_frappes_events_include_what_its_desk_listens_to():
	assert {
		"msgprint",
		"eval_js",
		"progress",
		"list_update",
		"doc_update",
		"notification",
	} <= FRAPPE_SOCKET_EVENTS


@pytest.mark.parametrize("name", ["rt_studio", "rt_studio_channel", "sales.order-closed", "my_app:alert"])
def test_own_event_names_are_accepted(make_rule, name):
	assert problems_of(make_rule(event_name=name)) == []


# ---------------------------------------------------------------- private columns


@pytest.mark.parametrize(
	"template",
	[
		"{{ doc.get('_assign') }}{{ doc.get('_comments') }}",
		"{{ doc }}",
		"{{ doc|dictsort }}",
		"{{ doc.keys()|list }}",
		"{{ doc.items() if doc.items is not defined else doc.values()|list }}",
		"{{ doc|tojson }}",
		"{{ '%s'|format(doc) }}",
		"{{ doc|pprint }}",
		"{% for key in doc %}{{ key }} {% endfor %}",
		"{{ doc|list }}",
	],
)
def test_private_columns_are_unreachable_from_templates(new_rule, make_event, ctx, todo, template):
	rule = new_rule(audience=TO_SUPPORT, message=template)
	outcome = evaluate(rule, make_event(doc={**todo, **PRIVATE}), ctx)
	assert outcome.error is None, outcome.error
	text = outcome.deliveries[0].message["message"]
	assert "_assign" not in text and "_comments" not in text
	assert "secret" not in text


@pytest.mark.parametrize(
	"condition",
	[
		"doc.get('_assign') is None and doc.get('_comments') is None",
		"'_assign' not in doc and '_comments' not in doc",
		"not any(key.startswith('_') for key in doc.keys())",
		"'secret' not in str(doc) and 'secret' not in '%s' % (doc,)",
		"'secret' not in f'{doc}'",
		"len([v for v in doc.values() if 'secret' in str(v)]) == 0",
	],
)
def test_private_columns_are_unreachable_from_conditions(new_rule, make_event, ctx, todo, condition):
	rule = new_rule(audience=TO_SUPPORT, condition=condition)
	outcome = evaluate(rule, make_event(doc={**todo, **PRIVATE}), ctx)
	assert outcome.error is None, outcome.error
	assert outcome.condition is True


def test_percent_formatting_by_key_cannot_read_a_private_column(new_rule, make_event, ctx, todo):
	rule = new_rule(
		audience=TO_SUPPORT, message="{{ '%(_assign)s'|format(**doc) if false else '%(_assign)s' % doc }}"
	)
	outcome = evaluate(rule, make_event(doc={**todo, **PRIVATE}), ctx)
	assert outcome.error is not None
	assert "secret" not in outcome.error.problem


@pytest.mark.parametrize("field, value", [("fields", "status, _assign"), ("value_changed", "_assign")])
def test_private_columns_cannot_be_named_in_fields(make_rule, field, value):
	data = make_rule(
		rule_name="Peek", **{field: value}, **({"event": "Value Change"} if field == "value_changed" else {})
	)
	[problem] = problems_of(data)
	assert problem.startswith(f"Peek: {field}: '_assign' is not a fieldname")


def test_assignees_and_commenters_still_come_from_the_private_columns(new_rule, make_event, ctx, todo):
	doc = {**todo, "_assign": json.dumps([SUPPORT])}
	rule = new_rule(audience=audience("Assignees"))
	outcome = evaluate(rule, make_event(doc=doc), ctx)
	assert [d.user for d in outcome.deliveries] == [SUPPORT]


# ---------------------------------------------------------------- fields named like methods


def test_fields_named_like_string_or_type_methods_are_readable(new_rule, make_event, ctx, todo):
	doc = {**todo, "format": "A4", "mro": "M-1", "format_map": "F", "upper": "U"}
	rule = new_rule(
		audience=TO_SUPPORT,
		condition="doc.format == 'A4' and doc.mro == 'M-1' and doc.format_map == 'F' and doc.upper == 'U'",
		message="{{ doc.format }} {{ doc.mro }} {{ doc.format_map }} {{ doc.upper }}",
	)
	outcome = evaluate(rule, make_event(doc=doc), ctx)
	assert outcome.error is None, outcome.error
	assert outcome.deliveries[0].message["message"] == "A4 M-1 F U"


def test_string_methods_named_format_stay_refused_on_text(new_rule, make_event, ctx):
	rule = new_rule(audience=TO_SUPPORT, condition="'{0.__class__}'.format(doc) != ''")
	outcome = evaluate(rule, make_event(), ctx)
	assert '"format" is an unsafe attribute' in outcome.error.problem


# ---------------------------------------------------------------- string literals as written


@pytest.mark.parametrize(("unit", "fires"), [("m²", True), ("m2", False)])
def test_string_literals_compare_as_written(new_rule, make_event, ctx, todo, unit, fires):
	rule = new_rule(audience=TO_SUPPORT, condition="doc.uom == 'm²'")
	outcome = evaluate(rule, make_event(doc={**todo, "uom": unit}), ctx)
	assert outcome.condition is fires


def test_look_alike_identifiers_are_still_folded_and_refused(new_rule, make_rule, make_event, ctx):
	wide_doc = new_rule(
		audience=TO_SUPPORT, condition="\uff44\uff4f\uff43.status == 'Closed'"
	)  # full-width "doc"
	assert evaluate(wide_doc, make_event(), ctx).condition is True
	with pytest.raises(RuleError) as raised:
		compile_rule(make_rule(rule_name="Wide", condition="doc.__\uff43lass__"))  # full-width "c"
	assert '"__class__" is an invalid attribute name' in str(raised.value)
