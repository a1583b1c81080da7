"""Rule events and the Frappe document hooks that trigger them.

A rule listens to one event label. A user action (insert, save, submit ...) can trigger
several labels at once (a save is both "Save" and "Value Change"), but every label is
raised by exactly one hook per action, so one action fires a rule at most once.
"""

NEW = "New"
SAVE = "Save"
SUBMIT = "Submit"
CANCEL = "Cancel"
DELETE = "Delete"
UPDATE_AFTER_SUBMIT = "Update After Submit"
VALUE_CHANGE = "Value Change"

#: Every event a rule can listen to, in the order the form offers them.
EVENTS = (NEW, SAVE, SUBMIT, CANCEL, DELETE, UPDATE_AFTER_SUBMIT, VALUE_CHANGE)

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
}

#: The document hooks RT Studio listens to on a site.
HOOKS = tuple(METHOD_FOR_EVENT.values())


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
