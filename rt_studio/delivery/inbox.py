"""Each user's inbox: every message a rule or channel delivered to them, kept with when it was seen,
read or archived, and the email sent when a message stays unread (the rule's escalation).

Rows are Realtime Inbox Items in MariaDB (durable, unlike the replay log in Redis), written in
bulk just before the commit that sends their messages, right after `delivery_log` numbered them
(both are `before_commit` callbacks, which Frappe runs in the order they were armed, and the outbox
always queues a message in the delivery log first):
one INSERT per transaction that delivers (per 1,000 messages or 4 MB: delivery/bulk.py), nothing
for a save that delivers nothing, nothing for a transaction that rolls back. The inbox's order and cursor is the
message's `seq`. Kept: messages to a user (not to a room) whose display is read by a person,
not the signals for the desk or custom code (`rules.SIGNAL_DISPLAYS`); the desk runtime applies
the same test (`keptInInbox` in public/js/runtime/logic.js) to count a new message as unread.

A message that could not be numbered (Redis failed at that moment) is not sent at all: its commit
fails (delivery_log.stamp_queued).
A statement error while writing the rows is recorded in the Error Log and the commit goes on; an
error that aborts the transaction (a deadlock) fails the commit, and nothing is sent.

Called by: the outbox (`remember`, for every message to a user), the save handler
(`forget_document`, when a document of a DocType with rules is deleted) and the inbox API
(rt_studio.desk.inbox). The email for an unread message is escalation.py's; the daily clean-up
inbox_cleanup.py's.
"""

import json
from datetime import datetime

import frappe
from frappe.query_builder.functions import Max
from frappe.utils import now_datetime

from rt_studio import transaction
from rt_studio.delivery import bulk
from rt_studio.engine.rules import SIGNAL_DISPLAYS

DOCTYPE = "Realtime Inbox Item"
#: The socket event that tells every tab of a user the inbox changed (unread count, states).
INBOX_EVENT = "rt_studio_inbox"
#: Columns written per message.
FIELDS = (
	"name",
	"user",
	"seq",
	"rule",
	"channel",
	"reference_doctype",
	"reference_name",
	"subject",
	"payload",
	"sent_at",
	"creation",
	"modified",
	"owner",
	"modified_by",
)


def kept(message: dict) -> bool:
	"""Whether a message to a user goes to their inbox: a rule's or channel's, meant to be read."""
	return (
		bool(message.get("rule") or message.get("channel")) and message.get("display") not in SIGNAL_DISPLAYS
	)


def remember(user: str, message: dict) -> None:
	"""Queue the message (as `delivery_log.record` returned it, numbered before the commit) for
	the user's inbox."""
	if kept(message):
		transaction.state("rt_studio_inbox", list, before_commit=keep).append((user, message))


def keep(entries: list[tuple[str, dict]]) -> None:
	"""Write an inbox row for each numbered (user, message) that is `kept` (just before the commit).

	In a savepoint: a statement error is logged and the commit goes on without the rows (the
	messages still go out live and in `missed`); an error that aborts the transaction (a deadlock)
	propagates, and the save fails with nothing sent (transaction.guarded_write)."""
	parts = list(bulk.statements(_rows(entries)))
	if parts:
		title = "RT Studio: could not keep delivered messages in the inbox"
		with transaction.guarded_write(title, statements=len(parts)):
			bulk.insert(DOCTYPE, FIELDS, parts)


def _rows(entries: list[tuple[str, dict]]) -> list[tuple]:
	numbered = [(user, message) for user, message in entries if message.get("seq") is not None]
	rows = []
	for name, (user, message) in zip(bulk.new_names(len(numbered)), numbered, strict=True):
		# as text: the driver escapes a string several times faster than a datetime
		sent_at = str(_sent_at(message))
		rows.append(
			(
				name,
				user,
				message["seq"],
				message.get("rule"),
				message.get("channel"),
				message.get("doctype"),
				message.get("docname"),
				bulk.cut(message.get("subject")),
				json.dumps(message, default=str, separators=(",", ":"), ensure_ascii=False),
				sent_at,
				sent_at,
				sent_at,
				"Administrator",
				"Administrator",
			)
		)
	return rows


def _sent_at(message: dict) -> datetime:
	"""When the message was made, in the site's time zone as Frappe stores datetimes (its `sent_at`
	carries the site's offset; asking the clock here would cost a job a Redis read for the zone)."""
	try:
		return datetime.fromisoformat(message["sent_at"]).replace(tzinfo=None)
	except (KeyError, TypeError, ValueError):
		return now_datetime()


def forget_document(doctype: str, docname: str) -> None:
	"""A document is being deleted: its messages leave every inbox (they could no longer be
	opened, and would only be counted unread). Inside the deleting transaction; the message a
	Delete rule sends about it comes after and stays. The names are found with a plain SELECT and
	deleted by primary key, and only when there are any: a DELETE by the non-unique reference index
	takes next-key (gap) locks that a concurrent inbox INSERT then waits on (deadlocks between
	concurrent deletes)."""
	item = frappe.qb.DocType(DOCTYPE)
	names = (
		frappe.qb.from_(item)
		.select(item.name)
		.where(item.reference_doctype == doctype)
		.where(item.reference_name == str(docname))
		.run(pluck=True)
	)
	if names:
		frappe.qb.from_(item).delete().where(item.name.isin(names)).run()


def badge(user: str) -> dict:
	"""The desk's badge: `unread`, the user's items neither read nor archived, counted when the
	newest of them had `latest` as its seq (a tab adds the messages it receives after that)."""
	item = frappe.qb.DocType(DOCTYPE)
	latest = frappe.qb.from_(item).select(Max(item.seq)).where(item.user == user).run()[0][0] or 0
	unread = frappe.db.count(
		DOCTYPE, {"user": user, "read_at": ("is", "not set"), "archived_at": ("is", "not set")}
	)
	return {"unread": unread, "latest": int(latest)}


def publish_change(user: str, change: dict) -> dict:
	"""Tell every tab of `user` (after the commit) what changed and the new badge (returned)."""
	state = badge(user)
	frappe.publish_realtime(INBOX_EVENT, {**change, **state}, user=user, after_commit=True)
	return state
