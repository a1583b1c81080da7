"""Event semantics: which Frappe hook raises which rule event, and one action fires a rule once."""

from collections import Counter

import pytest
from conftest import SUPPORT, audience

from rt_studio.engine import (
	Event,
	RuleIndex,
	evaluate,
	events_for_action,
	events_for_hook,
	normalize_event,
	parse_rule,
)
from rt_studio.engine.events import DOCUMENT_EVENTS, HOOKS, METHOD, NAMELESS_METHODS, methods_for_action

NEW, SAVE, SUBMIT, CANCEL, DELETE, UAS, VC = DOCUMENT_EVENTS


# ---------------------------------------------------------------- events_for_hook, hook by hook


def test_after_insert_is_new_only():
	# Frappe runs after_insert with flags.in_insert already reset to False
	assert events_for_hook("after_insert", in_insert=False, action="save") == (NEW,)
	assert events_for_hook("after_insert", in_insert=True, action="save") == (NEW,)


def test_on_update_during_insert_raises_nothing():
	assert events_for_hook("on_update", in_insert=True, action="save") == ()


def test_on_change_during_insert_raises_nothing():
	assert events_for_hook("on_change", in_insert=True, action="save") == ()


def test_on_update_of_a_save_is_save_and_value_change():
	assert events_for_hook("on_update", in_insert=False, action="save") == (SAVE, VC)


def test_on_change_inside_a_save_raises_nothing():
	for action in ("save", "submit", "cancel", "update_after_submit"):
		assert events_for_hook("on_change", in_insert=False, action=action) == ()


def test_submit_on_update_raises_nothing_on_submit_raises_submit_and_value_change():
	assert events_for_hook("on_update", in_insert=False, action="submit") == ()
	assert events_for_hook("on_submit", in_insert=False, action="submit") == (SUBMIT, VC)


def test_insert_of_a_submitted_document_is_submit_without_value_change():
	assert events_for_hook("on_update", in_insert=True, action="submit") == ()
	assert events_for_hook("on_submit", in_insert=True, action="submit") == (SUBMIT,)


def test_on_cancel():
	assert events_for_hook("on_cancel", in_insert=False, action="cancel") == (CANCEL, VC)


def test_on_trash_is_delete():
	assert events_for_hook("on_trash", in_insert=False, action=None) == (DELETE,)


def test_on_update_after_submit():
	assert events_for_hook("on_update_after_submit", in_insert=False, action="update_after_submit") == (
		UAS,
		VC,
	)


def test_on_change_from_db_set_is_value_change():
	assert events_for_hook("on_change", in_insert=False, action=None) == (VC,)


@pytest.mark.parametrize("method", ["validate", "before_save", "on_submitted", "after_delete", ""])
def test_other_hooks_raise_nothing(method):
	assert events_for_hook(method, in_insert=False, action="save") == ()


# ---------------------------------------------------------------- normalize_event, events_for_action


@pytest.mark.parametrize(
	"name, label",
	[
		("New", NEW),
		("Save", SAVE),
		("Value Change", VC),
		("Update After Submit", UAS),
		("save", SAVE),
		("SUBMIT", SUBMIT),
		("  value change ", VC),
		("update after submit", UAS),
		("after_insert", NEW),
		("on_update", SAVE),
		("on_submit", SUBMIT),
		("on_cancel", CANCEL),
		("on_trash", DELETE),
		("on_update_after_submit", UAS),
		("on_change", VC),
	],
)
def test_normalize_event(name, label):
	assert normalize_event(name) == label


@pytest.mark.parametrize("name", [None, "", "  ", "Saved", "before_save", "on update", "validate"])
def test_normalize_event_unknown_is_none(name):
	assert normalize_event(name) is None


@pytest.mark.parametrize(
	"name, labels",
	[
		("New", (NEW,)),
		("after_insert", (NEW,)),
		("Save", (SAVE, VC)),
		("on_update", (SAVE, VC)),
		("Submit", (SUBMIT, VC)),
		("Cancel", (CANCEL, VC)),
		("Delete", (DELETE,)),
		("Update After Submit", (UAS, VC)),
		("Value Change", (VC,)),
		("on_change", (VC,)),
		("bogus", ()),
		("", ()),
	],
)
def test_events_for_action(name, labels):
	assert events_for_action(name) == labels


def test_insert_is_never_a_value_change():
	assert VC not in events_for_action("New")


# ---------------------------------------------------------------- one user action fires a rule once

#: The hooks Frappe v15 runs for each user action: (method, flags.in_insert, doc._action).
INSERT = [("after_insert", False, "save"), ("on_update", True, "save"), ("on_change", True, "save")]
INSERT_SUBMITTED = [
	("after_insert", False, "submit"),
	("on_update", True, "submit"),
	("on_submit", True, "submit"),
	("on_change", True, "submit"),
]
SAVE_HOOKS = [("on_update", False, "save"), ("on_change", False, "save")]
SUBMIT_HOOKS = [
	("on_update", False, "submit"),
	("on_submit", False, "submit"),
	("on_change", False, "submit"),
]
CANCEL_HOOKS = [("on_cancel", False, "cancel"), ("on_change", False, "cancel")]
UAS_HOOKS = [
	("on_update_after_submit", False, "update_after_submit"),
	("on_change", False, "update_after_submit"),
]
DELETE_HOOKS = [("on_trash", False, None)]
DB_SET = [("on_change", False, None)]


@pytest.fixture
def index(new_rule):
	to_support = audience(("User", {"user": SUPPORT}))
	rules = [
		new_rule(rule_name=f"on {event}", event=event, audience=to_support) for event in DOCUMENT_EVENTS[:-1]
	]
	rules.append(new_rule(rule_name="status changed", event=VC, value_changed="status", audience=to_support))
	rules.append(
		new_rule(rule_name="docstatus changed", event=VC, value_changed="docstatus", audience=to_support)
	)
	return RuleIndex(rules)


def run_action(index, ctx, hooks, doc, before):
	"""Call the engine the way the site's handler does for every hook of one action."""
	fired = Counter()
	for method, in_insert, action in hooks:
		events = events_for_hook(method, in_insert=in_insert, action=action)
		for rule in index.match("ToDo", events):
			outcome = evaluate(rule, Event("ToDo", "TD-1", rule.event, doc, before, "actor@example.com"), ctx)
			if outcome.fired:
				fired[rule.name] += 1
	return dict(fired)


def doc(**values):
	return {"doctype": "ToDo", "name": "TD-1", "status": "Open", "docstatus": 0, **values}


def test_insert_fires_new_once_and_nothing_else(index, ctx):
	assert run_action(index, ctx, INSERT, doc(), None) == {"on New": 1}


def test_insert_of_submitted_document_fires_new_and_submit_once(index, ctx):
	assert run_action(index, ctx, INSERT_SUBMITTED, doc(docstatus=1), None) == {"on New": 1, "on Submit": 1}


def test_save_fires_save_and_value_change_once(index, ctx):
	fired = run_action(index, ctx, SAVE_HOOKS, doc(status="Closed"), doc())
	assert fired == {"on Save": 1, "status changed": 1}


def test_save_without_change_fires_only_save(index, ctx):
	assert run_action(index, ctx, SAVE_HOOKS, doc(), doc()) == {"on Save": 1}


def test_submit_fires_submit_and_docstatus_change_once_and_never_save(index, ctx):
	fired = run_action(index, ctx, SUBMIT_HOOKS, doc(docstatus=1), doc())
	assert fired == {"on Submit": 1, "docstatus changed": 1}


def test_cancel_fires_cancel_and_docstatus_change_once(index, ctx):
	fired = run_action(index, ctx, CANCEL_HOOKS, doc(docstatus=2), doc(docstatus=1))
	assert fired == {"on Cancel": 1, "docstatus changed": 1}


def test_update_after_submit_fires_once(index, ctx):
	fired = run_action(index, ctx, UAS_HOOKS, doc(docstatus=1, status="Closed"), doc(docstatus=1))
	assert fired == {"on Update After Submit": 1, "status changed": 1}


def test_delete_fires_delete_once(index, ctx):
	assert run_action(index, ctx, DELETE_HOOKS, doc(), None) == {"on Delete": 1}


def test_db_set_fires_value_change_once(index, ctx):
	assert run_action(index, ctx, DB_SET, doc(status="Closed"), doc()) == {"status changed": 1}


# ---------------------------------------------------------------- Method: a document method or hook


@pytest.fixture
def method_index(new_rule):
	to_support = audience(("User", {"user": SUPPORT}))
	methods = ("validate", "on_update", "on_submit", "on_payment_authorized")
	rules = [new_rule(rule_name=f"method {m}", event=METHOD, method=m, audience=to_support) for m in methods]
	rules.append(new_rule(rule_name="off", event=METHOD, method="validate", enabled=0, audience=to_support))
	return RuleIndex(rules)


def run_methods(index, ctx, action, doc, before):
	"""Call the engine as the site's handler does for every method Frappe runs for one action."""
	fired = Counter()
	for method in methods_for_action(action):
		for rule in index.match_method("ToDo", method):
			outcome = evaluate(
				rule, Event("ToDo", "TD-1", METHOD, doc, before, "actor@example.com", method), ctx
			)
			if outcome.fired:
				fired[rule.name] += 1
	return dict(fired)


def test_method_rules_fire_once_for_each_run_of_their_method(method_index, ctx):
	assert run_methods(method_index, ctx, "New", doc(), None) == {"method validate": 1, "method on_update": 1}
	assert run_methods(method_index, ctx, "Save", doc(), doc()) == {
		"method validate": 1,
		"method on_update": 1,
	}
	assert run_methods(method_index, ctx, "Submit", doc(docstatus=1), doc()) == {
		"method validate": 1,
		"method on_update": 1,
		"method on_submit": 1,
	}
	assert run_methods(method_index, ctx, "Cancel", doc(docstatus=2), doc(docstatus=1)) == {}


def test_a_method_of_an_app_fires_its_rules(method_index, ctx):
	assert methods_for_action("on_payment_authorized") == ("on_payment_authorized",)
	assert run_methods(method_index, ctx, "on_payment_authorized", doc(), None) == {
		"method on_payment_authorized": 1
	}


def test_disabled_method_rules_are_not_matched(method_index):
	assert [r.name for r in method_index.match_method("ToDo", "validate")] == ["method validate"]
	assert method_index.match_method("ToDo", "before_save") == ()
	assert method_index.match_method("Note", "validate") == ()


def test_a_method_rule_does_not_fire_for_another_method(method_index, ctx):
	[rule] = method_index.match_method("ToDo", "validate")
	outcome = evaluate(rule, Event("ToDo", "TD-1", METHOD, doc(), None, "a@x.com", "on_update"), ctx)
	assert not outcome.fired
	assert outcome.reason == "the rule listens to method validate, not on_update"


@pytest.mark.parametrize(
	"name, methods",
	[
		("Save", ("before_validate", "validate", "before_save", "on_update", "on_change")),
		("on_update", ("before_validate", "validate", "before_save", "on_update", "on_change")),
		("Delete", ("on_trash", "on_change", "after_delete")),
		("validate", ("validate",)),
		("Days Before", ()),
		("Saved", ()),
		("", ()),
	],
)
def test_methods_for_action(name, methods):
	assert methods_for_action(name) == methods


@pytest.mark.parametrize(
	"method, text",
	[
		("", "R: method: is required for event Method: name the document method, such as validate"),
		("on update", "R: method: 'on update' is not a method name, such as on_update"),
		(
			"before_insert",
			"R: method: before_insert runs before the document has a name: choose validate, after_insert "
			"or a later method",
		),
	],
)
def test_method_problems(make_rule, method, text):
	rule, problems = parse_rule(make_rule(rule_name="R", event="Method", method=method))
	assert rule is None and [str(p) for p in problems] == [text]


def test_hooks_py_names_the_handler_for_every_hook_the_engine_listens_to():
	from rt_studio import hooks

	events = dict(hooks.doc_events["*"])
	# a form's load is no rule event: it gives the form its room's number (delivery/room_log.py)
	assert events.pop("onload") == "rt_studio.delivery.room_log.add_room_seq"
	# inbox items leave or follow their document whatever the rules (delivery/inbox_references.py)
	assert events.pop("after_rename") == "rt_studio.delivery.inbox_references.after_rename"
	handler, forget = events["on_trash"]
	assert forget == "rt_studio.delivery.inbox_references.on_trash"
	events["on_trash"] = handler
	assert set(events) == set(HOOKS)
	assert set(events.values()) == {"rt_studio.handler.on_document_event"}
	assert not NAMELESS_METHODS & set(HOOKS)
