"""Sandbox: every escape is refused, at compile time or as the rule's error, never silently."""

import pytest
from conftest import SUPPORT, audience, delivered_to

from rt_studio.engine import RuleError, compile_rule, evaluate

TO_SUPPORT = audience(("User", {"user": SUPPORT}))


def refusal(data, event, ctx):
	"""The Problem that stops `data` from firing: from compiling, or from evaluating."""
	try:
		rule = compile_rule(data)
	except RuleError as e:
		assert len(e.problems) == 1
		return "compile", e.problems[0]
	outcome = evaluate(rule, event, ctx)
	assert not outcome.fired
	assert outcome.deliveries == []
	assert outcome.error is not None, f"not refused: {outcome.reason}"
	return "evaluate", outcome.error


@pytest.mark.parametrize(
	"condition, when, text",
	[
		("doc.__class__", "compile", '"__class__" is an invalid attribute name'),
		("().__class__.__bases__", "compile", '"__bases__" is an invalid attribute name'),
		("__import__('os')", "compile", '"__import__" is an invalid variable name'),
		("doc._private", "compile", '"_private" is an invalid attribute name'),
		("(lambda: 1).__globals__", "compile", '"__globals__" is an invalid attribute name'),
		("nowdate.__globals__", "compile", '"__globals__" is an invalid attribute name'),
		("f'{doc.__class__}'", "compile", '"__class__" is an invalid attribute name'),
		("(x := 1)", "compile", "assignment with := is not allowed"),
		("import os", "compile", "not a Python expression"),
		("doc['_x']", "evaluate", 'key "_x" is not allowed'),
		('"{0.__class__}".format(doc)', "evaluate", '"format" is an unsafe attribute'),
		('"{0.__class__}".format_map({"0": doc})', "evaluate", '"format_map" is an unsafe attribute'),
		("[x for x in ()].__len__", "compile", '"__len__" is an invalid attribute name'),
		("(x for x in ()).gi_frame", "compile", '"gi_frame" is a restricted name'),
		("dict.update(doc, {'a': 1})", "evaluate", "reading attributes of function objects is not allowed"),
		("doc.update({'a': 1})", "evaluate", "documents are read-only"),
		("doc.setdefault('a', 1)", "evaluate", "documents are read-only"),
		("doc.items[0].update({'qty': 0})", "evaluate", "documents are read-only"),
		("getattr(doc, '__class__')", "compile", "name 'getattr' is not defined"),
		("type(doc)", "compile", "name 'type' is not defined"),
		("open('/etc/passwd')", "compile", "name 'open' is not defined"),
		("[1, 2].append(3)", "evaluate", '"append" would change a list: conditions change nothing'),
	],
)
def test_condition_escapes_are_refused(make_rule, make_event, ctx, todo, condition, when, text):
	doc = {**todo, "items": [{"qty": 1}]}
	data = make_rule(rule_name="Escape", condition=condition, audience=TO_SUPPORT)
	stage, problem = refusal(data, make_event(doc=doc), ctx)
	assert (stage, problem.rule, problem.field) == (when, "Escape", "condition")
	assert text in problem.problem


@pytest.mark.parametrize(
	"template, text",
	[
		("{{ doc.__class__ }}", "'__class__'"),
		("{{ ''.__class__.__mro__ }}", "'__class__'"),
		("{{ doc._private }}", "'_private'"),
		("{{ doc.update({}) }}", "'update'"),
		("{{ doc.items[0].update({'qty': 0}) }}", "'update'"),
		('{{ "{0.__class__}".format(doc) }}', "'__class__'"),
		("{{ cycler.__init__.__globals__ }}", "'__init__'"),
		("{{ frappe.utils.flt.__globals__ }}", "'__globals__'"),
		("{{ (doc|attr('__class__')) }}", "'__class__'"),
	],
)
@pytest.mark.parametrize("field", ["subject", "message"])
def test_template_escapes_are_refused(make_rule, make_event, ctx, todo, template, text, field):
	doc = {**todo, "items": [{"qty": 1}]}
	data = make_rule(rule_name="Escape", audience=TO_SUPPORT, **{field: template})
	stage, problem = refusal(data, make_event(doc=doc), ctx)
	assert (stage, problem.rule, problem.field) == ("evaluate", "Escape", field)
	assert "refused by the sandbox" in problem.problem
	assert text in problem.problem


def test_a_mutation_attempt_never_changes_what_the_next_rule_sees(new_rule, make_event, ctx, todo):
	original = {**todo, "items": [{"qty": 1}]}
	event = make_event(doc=original)
	attempts = [
		new_rule(rule_name="A", audience=TO_SUPPORT, condition="doc.update({'status': 'Hacked'}) or True"),
		new_rule(rule_name="B", audience=TO_SUPPORT, message="{{ doc.update({'status': 'Hacked'}) }}"),
		new_rule(rule_name="C", audience=TO_SUPPORT, condition="doc.items[0].setdefault('qty', 99) or True"),
	]
	for rule in attempts:
		outcome = evaluate(rule, event, ctx)
		assert outcome.error is not None
		assert not outcome.fired
	watcher = new_rule(
		rule_name="D",
		audience=TO_SUPPORT,
		condition="doc.status == 'Closed' and 'status2' not in doc",
		message="{{ doc.status }} {{ doc.items[0].qty }}",
	)
	outcome = evaluate(watcher, event, ctx)
	assert outcome.fired
	assert outcome.deliveries[0].message["message"] == "Closed 1"
	assert original == {**todo, "items": [{"qty": 1}]}


def test_a_field_named_like_a_dict_method_is_the_field(new_rule, make_event, ctx, todo):
	doc = {**todo, "items": [{"qty": 6}], "values": "v", "keys": "k"}
	rule = new_rule(
		audience=TO_SUPPORT,
		condition="any(r.qty > 5 for r in doc.items) and doc.values == 'v'",
		message="{{ doc.items|length }} {{ doc.keys }} {% for r in doc.items %}{{ r.qty }}{% endfor %}",
	)
	outcome = evaluate(rule, make_event(doc=doc), ctx)
	assert delivered_to(outcome) == [SUPPORT]
	assert outcome.deliveries[0].message["message"] == "1 k 6"
