"""Rule events and the Frappe document hooks that trigger them.

A rule listens to one event label. A user action (insert, save, submit ...) can trigger
several labels at once (a save is both "Save" and "Value Change"), but every label is
raised by exactly one hook per action, so one action fires a rule at most once.

Three kinds of labels: document events (raised by the hooks of a user action), time events
(raised by the scheduler when a date of the document comes near or has passed, see
`engine/due.py`) and Method (raised by every call of the document method or hook the rule
names, as Frappe's Notification does it).
"""

import re

NEW = "New"
SAVE = "Save"
SUBMIT = "Submit"
CANCEL = "Cancel"
DELETE = "Delete"
UPDATE_AFTER_SUBMIT = "Update After Submit"
VALUE_CHANGE = "Value Change"
DAYS_BEFORE = "Days Before"
DAYS_AFTER = "Days After"
MINUTES_BEFORE = "Minutes Before"
MINUTES_AFTER = "Minutes After"
METHOD = "Method"

#: Events raised by the hooks of a user action on the document.
DOCUMENT_EVENTS = (NEW, SAVE, SUBMIT, CANCEL, DELETE, UPDATE_AFTER_SUBMIT, VALUE_CHANGE)
#: Events raised by the scheduler, on a Date field (days) or a Datetime field (minutes).
DAY_EVENTS = (DAYS_BEFORE, DAYS_AFTER)
MINUTE_EVENTS = (MINUTES_BEFORE, MINUTES_AFTER)
TIME_EVENTS = (*DAY_EVENTS, *MINUTE_EVENTS)
#: Every event a rule can listen to, in the order the form offers them.
EVENTS = (*DOCUMENT_EVENTS, *TIME_EVENTS, METHOD)

#: The Frappe method name that stands for each label (accepted wherever a label is).
METHOD_FOR_EVENT = {
	NEW: "after_insert",
	SAVE: "on_update",
	SUBMIT: "on_submit",
	CANCEL: "on_cancel",
	DELETE: "on_trash",
	UPDATE_AFTER_SUBMIT: "on_update_after_submit",
	VALUE_CHANGE: "on_change",
}
EVENT_FOR_METHOD = {method: label for label, method in METHOD_FOR_EVENT.items()}

#: The labels one user action raises, keyed by the label (or method) that names the action.
#: Inserting is never a Value Change; every later write of an existing document can be.
ACTION_EVENTS = {
	NEW: (NEW,),
	SAVE: (SAVE, VALUE_CHANGE),
	SUBMIT: (SUBMIT, VALUE_CHANGE),
	CANCEL: (CANCEL, VALUE_CHANGE),
	DELETE: (DELETE,),
	UPDATE_AFTER_SUBMIT: (UPDATE_AFTER_SUBMIT, VALUE_CHANGE),
	VALUE_CHANGE: (VALUE_CHANGE,),
	**{label: (label,) for label in TIME_EVENTS},
}

#: The document methods Frappe v15 runs (`Document.run_method`) for each user action, in
#: order: what a Method rule can listen to without any other app's help.
ACTION_METHODS = {
	NEW: (
		"before_insert",
		"before_validate",
		"validate",
		"before_save",
		"after_insert",
		"on_update",
		"on_change",
	),
	SAVE: ("before_validate", "validate", "before_save", "on_update", "on_change"),
	SUBMIT: ("before_validate", "validate", "before_submit", "on_update", "on_submit", "on_change"),
	CANCEL: ("before_cancel", "on_cancel", "on_change"),
	DELETE: ("on_trash", "on_change", "after_delete"),
	UPDATE_AFTER_SUBMIT: ("before_update_after_submit", "on_update_after_submit", "on_change"),
	VALUE_CHANGE: ("on_change",),
}

#: The document hooks RT Studio listens to on a site (hooks.py names each of them): those
#: that raise document events, and further lifecycle methods a Method rule may name.
HOOKS = (
	*METHOD_FOR_EVENT.values(),
	"before_validate",
	"validate",
	"before_save",
	"before_submit",
	"before_cancel",
	"before_update_after_submit",
	"after_delete",
)

#: How Frappe names document methods (`validate`, `on_update`): labels are Title Case.
METHOD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

#: Methods a Method rule cannot name: the document has no name yet when they run, so a
#: message could not say which document it is about (nor could anyone's read access be checked).
NAMELESS_METHODS = frozenset({"before_insert", "before_naming", "autoname"})


def normalize_event(name: str | None) -> str | None:
	"""The label for a label or a Frappe method name; None when it is neither."""
	if not name:
		return None
	name = name.strip()
	if name in ACTION_EVENTS:
		return name
	for label in EVENTS:
		if label.lower() == name.lower():
			return label
	return EVENT_FOR_METHOD.get(name)


def events_for_action(name: str) -> tuple[str, ...]:
	"""Labels raised by the action a label or method name stands for (empty if unknown)."""
	label = normalize_event(name)
	return ACTION_EVENTS.get(label, ()) if label else ()


def methods_for_action(name: str) -> tuple[str, ...]:
	"""The document methods Frappe runs for the action a label (or its method) stands for; any
	other identifier is taken as one method a Method rule may name (`("validate",)`)."""
	label = normalize_event(name)
	if label in ACTION_METHODS:
		return ACTION_METHODS[label]
	name = (name or "").strip()
	return (name,) if label is None and METHOD_NAME.match(name) else ()


def events_for_hook(method: str, *, in_insert: bool, action: str | None) -> tuple[str, ...]:
	"""Labels to evaluate when Frappe runs `method` on a document.

	`in_insert` is the document's `flags.in_insert`; `action` is its `_action` ("save",
	"submit", "cancel", "update_after_submit") while a save is running, or None when
	`on_change` comes from `db_set`. Insert runs after_insert, on_update and on_change;
	submit runs on_update, on_submit and on_change: each label is taken from one of them only.
	"""
	if method == "after_insert":
		return (NEW,)
	if method == "on_update":
		return (SAVE, VALUE_CHANGE) if action == "save" and not in_insert else ()
	if method == "on_submit":
		return (SUBMIT,) if in_insert else (SUBMIT, VALUE_CHANGE)
	if method == "on_cancel":
		return (CANCEL, VALUE_CHANGE)
	if method == "on_update_after_submit":
		return (UPDATE_AFTER_SUBMIT, VALUE_CHANGE)
	if method == "on_trash":
		return (DELETE,)
	if method == "on_change":
		return (VALUE_CHANGE,) if action is None and not in_insert else ()
	return ()


#: DocTypes that never trigger rules: RT Studio's own and Frappe's logs, which are written
#: as a side effect of other work (a rule on them could feed itself).
IGNORED_DOCTYPES = frozenset(
	{
		"Realtime Rule",
		"Realtime Rule Audience",
		"Realtime Channel",
		"Realtime Channel Member",
		"Realtime Channel Publish Role",
		"Realtime Mute",
		"Realtime Rule Due Log",
		"Realtime Rule Schedule",
		"Error Log",
		"Notification Log",
		"Version",
		"Activity Log",
		"Access Log",
		"Route History",
		"Scheduled Job Log",
		"Email Queue",
		"Email Queue Recipient",
		"Submission Queue",
		"Prepared Report",
		"Deleted Document",
		"DocType",
		"Custom Field",
		"Property Setter",
		"Session Default Settings",
	}
)
