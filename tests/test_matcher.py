"""The per-event lookup: cheap when nobody listens, enabled rules only, each rule once, by name."""

from rt_studio.engine import RuleIndex
from rt_studio.engine.matcher import NO_RULES


def names(rules):
	return [rule.name for rule in rules]


def test_doctype_without_rules_returns_the_empty_singleton(new_rule):
	index = RuleIndex([new_rule(rule_name="a", document_type="ToDo")])
	assert index.match("Note", ("Save",)) == ()
	assert index.match("Note", ("Save",)) is NO_RULES
	assert index.match("Event", ("Save", "Value Change")) is NO_RULES
	assert RuleIndex([]).match("ToDo", ("New",)) is NO_RULES
	assert not index.has_rules("Note")
	assert index.has_rules("ToDo")


def test_known_doctype_without_listeners_for_the_event_is_empty(new_rule):
	index = RuleIndex([new_rule(rule_name="a", event="Save")])
	assert index.match("ToDo", ("Delete",)) is NO_RULES
	assert index.match("ToDo", ("Submit", "Value Change")) is NO_RULES


def test_disabled_rules_are_excluded(new_rule):
	index = RuleIndex([new_rule(rule_name="on", enabled=1), new_rule(rule_name="off", enabled=0)])
	assert names(index.match("ToDo", ("Save",))) == ["on"]
	assert set(index.rules) == {"on", "off"}


def test_a_doctype_with_only_disabled_rules_costs_nothing(new_rule):
	index = RuleIndex([new_rule(rule_name="off", enabled="0")])
	assert not index.has_rules("ToDo")
	assert index.match("ToDo", ("Save", "Value Change")) is NO_RULES


def test_multi_event_actions_give_each_rule_once_sorted_by_name(new_rule):
	rules = [
		new_rule(rule_name="delta", event="Save"),
		new_rule(rule_name="alpha", event="Value Change", value_changed="status"),
		new_rule(rule_name="charlie", event="Save"),
		new_rule(rule_name="bravo", event="Value Change", value_changed="priority"),
		new_rule(rule_name="echo", event="Submit"),
		new_rule(rule_name="other doctype", document_type="Note", event="Save"),
	]
	index = RuleIndex(rules)
	found = index.match("ToDo", ("Save", "Value Change"))
	assert names(found) == ["alpha", "bravo", "charlie", "delta"]
	assert isinstance(found, tuple)
	assert names(index.match("ToDo", ("Save",))) == ["charlie", "delta"]
	assert names(index.match("ToDo", ("Submit", "Value Change"))) == ["alpha", "bravo", "echo"]


def test_a_rule_given_twice_by_name_counts_once(new_rule):
	index = RuleIndex([new_rule(rule_name="same", subject="old"), new_rule(rule_name="same", subject="new")])
	found = index.match("ToDo", ("Save", "Value Change"))
	assert names(found) == ["same"]
	assert found[0].subject.source == "new"
