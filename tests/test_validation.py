"""Validation: every problem names the rule, the field and the fix; all are reported at once."""

import pytest
from conftest import MANAGER, audience, delivered_to

from rt_studio.engine import (
	Event,
	Problem,
	RuleError,
	RuleIndex,
	compile_rule,
	evaluate,
	parse_channel,
	parse_rule,
)
from rt_studio.engine.fixtures import load_documents


def problems_of(data) -> list[Problem]:
	rule, problems = parse_rule(data)
	assert rule is None
	return problems


def only_problem(data) -> Problem:
	[problem] = problems_of(data)
	return problem


def test_a_valid_rule_has_no_problems(make_rule):
	rule, problems = parse_rule(make_rule())
	assert problems == []
	assert rule.name == "Test rule"
	assert (rule.document_type, rule.event, rule.enabled, rule.exclude_actor) == ("ToDo", "Save", True, True)


def test_missing_rule_name(make_rule):
	problem = only_problem(make_rule(rule_name=""))
	assert problem == Problem("", "rule_name", "is required: give the rule a unique name")
	assert str(problem) == "(unnamed): rule_name: is required: give the rule a unique name"


def test_name_falls_back_to_the_document_name(make_rule):
	rule, problems = parse_rule(make_rule(rule_name=None, name="From name"))
	assert problems == [] and rule.name == "From name"


def test_missing_document_type(make_rule):
	problem = only_problem(make_rule(rule_name="R", document_type=" "))
	assert str(problem) == "R: document_type: is required: choose the DocType whose events trigger the rule"


@pytest.mark.parametrize("event", ["Saved", "", "before_save"])
def test_unknown_event(make_rule, event):
	problem = only_problem(make_rule(rule_name="R", event=event))
	assert (problem.rule, problem.field) == ("R", "event")
	assert problem.problem == (
		f"{event!r} is not an event: use one of "
		"New, Save, Submit, Cancel, Delete, Update After Submit, Value Change, "
		"Days Before, Days After, Minutes Before, Minutes After, Method"
	)


def test_event_given_as_method_name_or_other_case_is_accepted(make_rule):
	assert compile_rule(make_rule(event="on_submit")).event == "Submit"
	assert compile_rule(make_rule(event="value change", value_changed="status")).event == "Value Change"


def test_value_change_without_value_changed(make_rule):
	problem = only_problem(make_rule(rule_name="R", event="Value Change"))
	assert str(problem) == "R: value_changed: is required for event Value Change: name the field to watch"


@pytest.mark.parametrize("value", ["doc.status()", "items.qty.rate", "status!"])
def test_value_changed_must_be_a_fieldname(make_rule, value):
	problem = only_problem(make_rule(rule_name="R", event="Value Change", value_changed=value))
	assert (
		str(problem) == f"R: value_changed: {value!r} is not a fieldname: use fieldname or table_field.field"
	)


@pytest.mark.parametrize(
	"condition, text",
	[
		("doc.status ==", "not a Python expression: invalid syntax"),
		("doc.status = 'Open'", "not a Python expression"),
		("doc.__dict__", '"__dict__" is an invalid attribute name'),
	],
)
def test_condition_that_does_not_compile(make_rule, condition, text):
	problem = only_problem(make_rule(rule_name="R", condition=condition))
	assert (problem.rule, problem.field) == ("R", "condition")
	assert text in problem.problem
	assert problem.problem.endswith("write a Python expression such as doc.status == 'Open'")


@pytest.mark.parametrize(
	"field, template, text",
	[
		("subject", "{{ doc.name", "unexpected end of template"),
		("message", "{% if %}x{% endif %}", "Expected an expression"),
		("message", "{% for r in doc.items %}", "Unexpected end of template"),
		("subject", "{{ x }", "unexpected '}'"),
	],
)
def test_template_that_does_not_compile(make_rule, field, template, text):
	problem = only_problem(make_rule(rule_name="R", **{field: template}))
	assert (problem.rule, problem.field) == ("R", field)
	assert problem.problem.startswith("template does not compile: ")
	assert text in problem.problem
	assert "(line 1)" in problem.problem
	assert problem.problem.endswith("check the {{ }} and {% %} tags")


@pytest.mark.parametrize("rows", [[], None, ""])
def test_empty_audience(make_rule, rows):
	problem = only_problem(make_rule(rule_name="R", audience=rows))
	assert str(problem) == "R: audience: is empty: add at least one row, for example Owner"


def test_audience_not_a_list(make_rule):
	problems = problems_of(make_rule(rule_name="R", audience="Owner"))
	assert [str(p) for p in problems] == ["R: audience: must be a list of audience rows, not text"]


def test_unknown_audience_type(make_rule):
	problem = only_problem(make_rule(rule_name="R", audience=audience("Owner", "Boss")))
	assert problem.field == "audience row 2: audience_type"
	assert problem.problem.startswith("'Boss' is not an audience type: use one of Owner, Actor, Assignees")
	assert problem.problem.endswith("Document Viewers, Everyone")


@pytest.mark.parametrize(
	"kind, field, fix",
	[
		("Role", "role", "choose the role whose users receive it"),
		("User", "user", "choose the user who receives it"),
		("Channel", "channel", "choose the Realtime Channel whose members receive it"),
		(
			"User Field",
			"user_field",
			"name the field that holds the user, or table_field.field for child rows",
		),
	],
)
def test_audience_row_without_its_field(make_rule, kind, field, fix):
	problem = only_problem(make_rule(rule_name="R", audience=audience(kind)))
	assert str(problem) == f"R: audience row 1: {field}: is required for audience type {kind}: {fix}"


def test_user_field_must_be_a_fieldname_or_table_field(make_rule):
	problem = only_problem(
		make_rule(rule_name="R", audience=audience(("User Field", {"user_field": "a.b.c"})))
	)
	assert (
		str(problem)
		== "R: audience row 1: user_field: 'a.b.c' is not a fieldname: use fieldname or table_field.field"
	)


def test_audience_row_condition_that_does_not_compile(make_rule):
	rows = audience(("User", {"user": MANAGER, "condition": "doc._secret"}))
	problem = only_problem(make_rule(rule_name="R", audience=rows))
	assert problem.field == "audience row 1: condition"
	assert '"_secret" is an invalid attribute name' in problem.problem


@pytest.mark.parametrize(
	"field, value, text",
	[
		(
			"display",
			"Popup",
			"'Popup' is not a display: use one of Alert, Sticky, Notification Log, Refresh Form",
		),
		("indicator", "purple", "'purple' is not an indicator: use one of blue, green, orange, red, gray"),
		("event_name", "has space", "'has space' is not a socket event name: use letters, digits and _"),
		(
			"fields",
			"status, doc.priority",
			"'doc.priority' is not a fieldname: list fieldnames separated by commas",
		),
	],
)
def test_bad_choices(make_rule, field, value, text):
	problem = only_problem(make_rule(rule_name="R", **{field: value}))
	assert (problem.rule, problem.field) == ("R", field)
	assert problem.problem.startswith(text)


@pytest.mark.parametrize("field", ["alert_seconds", "rate_limit_count", "rate_limit_seconds"])
def test_negative_ints(make_rule, field):
	problem = only_problem(make_rule(rule_name="R", **{field: -1}))
	assert str(problem) == f"R: {field}: -1 is negative: enter 0 or more"


def test_not_a_whole_number(make_rule):
	problem = only_problem(make_rule(rule_name="R", alert_seconds="soon"))
	assert str(problem) == "R: alert_seconds: 'soon' is not a whole number: enter a number such as 5"


def test_rate_count_without_seconds(make_rule):
	problem = only_problem(make_rule(rule_name="R", rate_limit_count=3, rate_limit_seconds=0))
	assert str(problem) == "R: rate_limit_seconds: must be more than 0 when rate_limit_count is set"
	rule = compile_rule(make_rule(rate_limit_count=3))
	assert (rule.rate_limit_count, rule.rate_limit_seconds) == (3, 60)


def test_several_problems_are_reported_at_once(make_rule):
	data = make_rule(
		rule_name="Many",
		document_type="",
		event="Saved",
		condition="doc.status ==",
		subject="{{ oops",
		audience=audience("Role"),
		indicator="pink",
		alert_seconds=-5,
	)
	with pytest.raises(RuleError) as raised:
		compile_rule(data)
	fields = [p.field for p in raised.value.problems]
	assert fields == [
		"document_type",
		"event",
		"condition",
		"audience row 1: role",
		"subject",
		"indicator",
		"alert_seconds",
	]
	assert all(p.rule == "Many" for p in raised.value.problems)
	message = str(raised.value)
	assert message.count("; Many: ") == len(fields) - 1
	assert "Many: event: 'Saved' is not an event" in message
	assert [p.as_dict()["field"] for p in raised.value.problems] == fields


def test_a_broken_rule_next_to_a_good_one(make_rule, ctx, todo):
	good = make_rule(rule_name="Good", audience=audience(("User", {"user": MANAGER})))
	broken = make_rule(rule_name="Broken", event="Whenever", audience=[])
	fixture = load_documents([broken, good, {"doctype": "Note", "name": "ignored"}], "rules.json")
	assert [rule.name for rule in fixture.rules] == ["Good"]
	assert [str(p) for p in fixture.problems] == [
		"Broken: event: 'Whenever' is not an event: use one of New, Save, Submit, Cancel, Delete, "
		"Update After Submit, Value Change, Days Before, Days After, Minutes Before, Minutes After, Method",
		"Broken: audience: is empty: add at least one row, for example Owner",
		"item 3: doctype: 'Note' is not Realtime Rule or Realtime Channel: keep other documents in a file of their own",
	]
	[rule] = RuleIndex(fixture.rules).match("ToDo", ("Save", "Value Change"))
	outcome = evaluate(rule, Event("ToDo", "TD-1", "Save", todo, None, "actor@example.com"), ctx)
	assert delivered_to(outcome) == [MANAGER]


# ---------------------------------------------------------------- channels


def test_channel_validation():
	channel, problems = parse_channel(
		{
			"channel_name": "C",
			"members": [
				{"member_type": "Team", "user": "a"},
				{"member_type": "Role"},
				"not a row",
				{"member_type": "User", "user": "u@x"},
			],
			"reference_doctype": "ToDo",
			"event_name": "bad name",
			"rate_limit_count": 2,
			"rate_limit_seconds": 0,
		}
	)
	assert channel is None
	assert [str(p) for p in problems] == [
		"C: members row 1: member_type: 'Team' is not User or Role",
		"C: members row 2: role: is required for member type Role",
		"C: members row 3: must be an object with the member fields, not text",
		"C: reference_name: set both reference_doctype and reference_name, or neither",
		"C: event_name: 'bad name' is not a socket event name: use letters, digits and _",
		"C: rate_limit_seconds: must be more than 0 when rate_limit_count is set",
	]


def test_valid_channel():
	channel, problems = parse_channel(
		{
			"name": "C",
			"members": [{"user": "u@x"}, {"member_type": "Role", "role": "R"}],
			"publish_roles": [{"role": "P"}],
		}
	)
	assert problems == []
	assert channel.members == (("User", "u@x"), ("Role", "R"))
	assert channel.publish_roles == ("P",)
	assert channel.event_name == "rt_studio_channel"
	assert channel.enabled


def test_escalation_is_at_most_a_week(make_rule):
	problem = only_problem(make_rule(escalate_after_minutes=7 * 24 * 60 + 1))
	assert problem.field == "escalate_after_minutes"
	assert "more than a week" in problem.problem


def test_escalation_needs_a_message_to_read(make_rule):
	problem = only_problem(make_rule(display="Refresh Form", escalate_after_minutes=30))
	assert problem.field == "escalate_after_minutes"
	assert "choose Alert, Sticky or Notification Log" in problem.problem


def test_an_escalating_rule_keeps_its_send_window(make_rule):
	rule, problems = parse_rule(make_rule(escalate_after_minutes=30, send_after="09:00", send_before="17:00"))
	assert problems == []
	assert (rule.escalate_after_minutes, rule.send_window.after.hour, rule.send_window.before.hour) == (
		30,
		9,
		17,
	)
	# a rule that sends at once and never escalates has no window to respect
	rule, _ = parse_rule(make_rule(send_after="09:00"))
	assert rule.send_window is None


def test_an_escalating_rule_with_a_bad_send_window_names_the_field(make_rule):
	problem = only_problem(make_rule(escalate_after_minutes=30, send_days="Caturday"))
	assert problem.field == "send_days"
