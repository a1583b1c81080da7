"""Each document room's recent messages, numbered, so a form that lost its socket can catch up.

Messages to Document Viewers go to Frappe's `doc:<doctype>/<docname>` room (engine/audience.py
`doc_room`), which every open form of the document joined with a read check. Like a user's
deliveries (delivery_log.py, whose numbering and Lua script this reuses), each such message gets
`seq`, an integer that increases per room, and `room`, the room's name (so the desk tells it from
a user's number), and a copy in the room's log in Redis: numbered just before the commit,
published after it, nothing for a transaction that rolls back. `missed_room(doctype, docname,
since)` returns the copies above `since` to a user who may read the document, oldest first.

A form learns the room's number when it loads (`add_room_seq`, Frappe's `onload` hook: the
document's `__onload.rt_studio_room_seq`), so after a reconnect it asks only for what came after
it opened. Cost: nothing for a DocType without rules; one Redis GET per form load of a DocType
with rules; one script call per committing transaction that sends to rooms (in the same round
trip as the users' numbering).
"""

import frappe

from rt_studio import rule_cache as cache
from rt_studio.delivery import delivery_log
from rt_studio.engine.audience import doc_room

#: A room's log keeps at least its last 50 messages (a form back after a long pause still gets
#: a screenful)...
KEEP_LAST = 50
#: ...and every message of the last hour: a form that reconnects does so within minutes.
KEEP_SECONDS = 3600
#: Hard bound per room, so a rule gone wrong on one document cannot grow Redis without limit.
MAX_KEPT = 500
#: A room nobody sent to for a day is dropped: Redis holds the rooms of recently changed documents.
IDLE_SECONDS = 24 * 3600
#: Prefix of the rooms that are logged: a document's. Other rooms are published as they are.
DOC_ROOM_PREFIX = "doc:"


def log_of(room: str) -> delivery_log.Log:
	return delivery_log.Log(
		frappe.cache.make_key(f"rt_studio:room_seq:{room}"),
		frappe.cache.make_key(f"rt_studio:room_missed:{room}"),
		(KEEP_LAST, KEEP_SECONDS, MAX_KEPT, IDLE_SECONDS),
	)


def record(room: str, message: dict) -> dict:
	"""The message to publish to `room` after the commit: a document's room numbers and logs it."""
	if not room.startswith(DOC_ROOM_PREFIX):
		return message
	return delivery_log.record(log_of(room), {**message, "room": room})


def current_seq(room: str) -> int:
	"""The room's latest `seq`, 0 when nothing was sent to it lately (its next number is higher)."""
	return int(frappe.cache.get(log_of(room).counter) or 0)


def read(room: str, since: int) -> list[dict]:
	"""The room's logged messages with `seq` above `since`, oldest first."""
	return delivery_log.read_log(log_of(room).entries, since, MAX_KEPT)


def add_room_seq(doc, method=None) -> None:
	"""Frappe's `onload` hook: the form gets its room's number to ask `missed_room` from."""
	if cache.get_index().has_rules(doc.doctype) and not doc.is_new():
		doc.set_onload("rt_studio_room_seq", current_seq(doc_room(doc.doctype, doc.name)))


@frappe.whitelist()
def missed_room(doctype: str, docname: str, since: int = 0) -> list[dict]:
	"""The messages sent to the viewers of a document with `seq` above `since`, oldest first, for a
	user who may read it. Kept: at least the last KEEP_LAST and those of the last KEEP_SECONDS, up
	to MAX_KEPT; none of a document nothing was sent about for IDLE_SECONDS."""
	try:
		allowed = frappe.has_permission(doctype, "read", docname)
	except frappe.DoesNotExistError:  # no such DocType or document: told apart from a refusal by nobody
		frappe.clear_last_message()
		allowed = False
	if not allowed:
		raise frappe.PermissionError(frappe._("You may not read {0} {1}").format(doctype, docname))
	return read(doc_room(doctype, docname), frappe.utils.cint(since))
