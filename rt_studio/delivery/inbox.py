"""Each user's inbox: every message a rule or channel delivered to them, kept with when it was seen,
read or archived, and the email sent when a message stays unread (the rule's escalation).

Rows are Realtime Inbox Items in MariaDB (durable, unlike the replay log in Redis), written in
bulk just before the commit that sends their messages, right after `delivery_log` numbered them
(both are `before_commit` callbacks, which Frappe runs in the order they were armed, and the outbox
always queues a message in the delivery log first):
one INSERT per transaction that delivers (per 10,000 messages), nothing for a save that delivers
nothing, nothing for a transaction that rolls back. The inbox's order and cursor is the
message's `seq`. Kept: messages to a user (not to a room) whose display is read by a person,
not the signals for the desk or custom code (`rules.SIGNAL_DISPLAYS`); the desk runtime applies
the same test (`keptInInbox` in public/js/runtime/logic.js) to count a new message as unread.

A message that could not be numbered (Redis failed at that moment) is shown live but not kept.
Writing the rows never fails the commit: a failure is recorded in the Error Log.

Called by: the outbox (`remember`, for every message to a user), the save handler
(`forget_document`, when a document of a DocType with rules is deleted) and the inbox API
(rt_studio.desk.inbox). The email for an unread message is escalation.py's; the daily clean-up
inbox_cleanup.py's.
"""

import json
from datetime import datetime, timedelta
from html import unescape

import frappe
from frappe.query_builder import Order
from frappe.query_builder.functions import Count, Max
from frappe.utils import escape_html, get_url_to_form, get_url_to_list, now_datetime, strip_html

from rt_studio import rule_cache as cache
from rt_studio import transaction
from rt_studio.delivery.mutes import SiteMutes
from rt_studio.engine.due import LONGEST_HOLD
from rt_studio.engine.mutes import rule_target
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
#: Rows per INSERT: a thousand rows of a kilobyte or two stay far below MariaDB's default
#: max_allowed_packet (16 MB).
INSERT_ROWS = 1000
#: Row names are random, as Frappe's "hash" naming (generated here: the rows are written in bulk).
INBOX_NAME_LENGTH = 10


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
	"""Write an inbox row for each numbered (user, message) that is `kept` (just before the commit)."""
	try:
		rows = _rows(entries)
		for start in range(0, len(rows), INSERT_ROWS):
			_insert(rows[start : start + INSERT_ROWS])
	except Exception:
		# an exception here would abort the user's commit: the messages still go out, live
		frappe.log_error(title="RT Studio: could not keep delivered messages in the inbox")


def _insert(rows: list[tuple]) -> None:
	"""One multi-row INSERT, written by hand: building it with the query builder (as
	`frappe.db.bulk_insert` does) costs more than the database takes to run it."""
	columns = ", ".join(f"`{column}`" for column in FIELDS)
	row = f"({', '.join(['%s'] * len(FIELDS))})"
	frappe.db.sql(
		f"insert into `tab{DOCTYPE}` ({columns}) values {', '.join([row] * len(rows))}",
		[value for values in rows for value in values],
	)


def _rows(entries: list[tuple[str, dict]]) -> list[tuple]:
	rows = []
	for user, message in entries:
		if message.get("seq") is None:
			continue
		sent_at = _sent_at(message)
		rows.append(
			(
				frappe.generate_hash(length=INBOX_NAME_LENGTH),
				user,
				message["seq"],
				message.get("rule"),
				message.get("channel"),
				message.get("doctype"),
				message.get("docname"),
				message.get("subject") or "",
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
	"""A document of a DocType with rules is being deleted: its messages leave every inbox (they
	could no longer be opened, and would only be counted unread). One indexed DELETE, inside the
	deleting transaction; the message a Delete rule sends about it comes after and stays."""
	item = frappe.qb.DocType(DOCTYPE)
	frappe.qb.from_(item).delete().where(item.reference_doctype == doctype).where(
		item.reference_name == docname
	).run()


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
