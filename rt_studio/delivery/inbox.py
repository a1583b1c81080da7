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
(`forget_document`, when a document of a DocType with rules is deleted), the scheduler (escalate_due every minute,
clean_up daily) and the inbox API (rt_studio.desk.inbox).
"""

import json
from datetime import datetime, timedelta
from html import unescape

import frappe
from frappe.query_builder import Order
from frappe.query_builder.functions import Count, Max
from frappe.utils import escape_html, get_url_to_form, get_url_to_list, now_datetime, strip_html

from rt_studio.delivery.mutes import SiteMutes
from rt_studio.engine.due import LONGEST_HOLD
from rt_studio.engine.mutes import rule_target
from rt_studio.engine.rules import SIGNAL_DISPLAYS
from rt_studio.save import cache, transaction

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
#: Due escalations decided per transaction: a backlog (after downtime) goes out in commits of this
#: size, each holding row locks only on its own items for a couple of hundred emails' worth of work.
ESCALATE_CHUNK = 200
#: Inbox items are kept this long (read or not): a quarter, as Frappe keeps Notification Logs
#: (its Log Settings default to 90 days).
KEEP_DAYS = 90
#: ...and archived items only this long: archiving says "done with it".
KEEP_ARCHIVED_DAYS = 30
#: ...and at most this many per user, the newest: a rule that floods (a busy DocType, Everyone)
#: fills a user's inbox for a day at most; ten pages of scrolling back is past what anyone reads.
MAX_ITEMS_PER_USER = 1000

SENT, MUTED, NO_EMAIL, NO_PERMISSION, NO_EMAIL_ACCOUNT = (
	"Sent",
	"Muted",
	"No Email",
	"No Permission",
	"No Email Account",
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


def escalate_due(now: datetime | None = None) -> None:
	"""Email every message still unread and not archived whose rule's Email If Not Read Within has
	passed since it was sent (scheduled every minute; `now`, in the site's time zone, lets tests
	set the clock).

	Each item is decided once: sent, or why not (the user muted the rule, has no email or may no
	longer read the document). A rule whose send window is closed waits for it to open; a message
	whose email is more than LONGEST_HOLD overdue (the rule was disabled meanwhile, the scheduler
	was off) is left alone. Items are claimed with SKIP LOCKED, so two runs at once never email
	the same message twice; a read committed before the claim prevents the email.
	"""
	now = now or now_datetime()
	no_account = False
	for rule in cache.get_index().rules.values():
		if not (rule.enabled and rule.escalate_after_minutes) or not _window_open(rule, now):
			continue
		due_since = now - timedelta(minutes=rule.escalate_after_minutes)
		while items := _claim_due(rule.name, due_since - LONGEST_HOLD, due_since):
			for item in items:
				no_account = _escalate(item, rule, now) == NO_EMAIL_ACCOUNT or no_account
			frappe.db.commit()
	if no_account:
		frappe.log_error(
			title="RT Studio: unread messages were not emailed",
			message="The site has no outgoing Email Account: set one up in Email Account (Default "
			"Outgoing) so rules that email unread messages can send them.",
		)


def _window_open(rule, now: datetime) -> bool:
	return rule.send_window is None or rule.send_window.next_open(now) == now


def _claim_due(rule: str, sent_after: datetime, sent_before: datetime) -> list:
	item = frappe.qb.DocType(DOCTYPE)
	return (
		frappe.qb.from_(item)
		.select(item.name, item.user, item.payload)
		.where(item.rule == rule)
		.where(item.sent_at > sent_after)
		.where(item.sent_at <= sent_before)
		.where(item.escalated_at.isnull())
		.where(item.read_at.isnull())
		.where(item.archived_at.isnull())
		.orderby(item.sent_at)
		.limit(ESCALATE_CHUNK)
		.for_update(skip_locked=True)
		.run(as_dict=True)
	)


def _escalate(item, rule, now: datetime) -> str:
	"""Send the item's email or record why not."""
	message = json.loads(item.payload)
	outcome = _why_not(item.user, message, rule)
	if outcome is None:
		try:
			_send_email(item.user, message)
			outcome = SENT
		except frappe.OutgoingEmailError:
			outcome = NO_EMAIL_ACCOUNT
	frappe.db.set_value(
		DOCTYPE, item.name, {"escalated_at": now, "escalation": outcome}, update_modified=False
	)
	return outcome


def _why_not(user: str, message: dict, rule) -> str | None:
	if not rule.critical and SiteMutes().muted(rule_target(rule.name), [user]):
		return MUTED
	facts = frappe.db.get_value("User", user, ["enabled", "email"], as_dict=True)
	if not facts or not facts.enabled or not facts.email:
		return NO_EMAIL
	if message.get("docname") and not _may_read(user, message["doctype"], message["docname"]):
		return NO_PERMISSION
	return None


def _may_read(user: str, doctype: str, docname: str) -> bool:
	# a missing document is checked first: has_permission would report it to the desk as an error
	return bool(frappe.db.exists(doctype, docname)) and bool(
		frappe.has_permission(doctype, "read", doc=docname, user=user)
	)


def _send_email(user: str, message: dict) -> None:
	"""The rule's subject and message, as delivered, in one Email Queue row for the user."""
	subject = unescape(strip_html(message.get("subject") or "")) or message.get("rule") or ""
	body = message.get("message") or ""
	doctype, docname = message.get("doctype"), message.get("docname")
	if docname:
		url, label = get_url_to_form(doctype, docname), f"{doctype} {docname}"
	elif doctype:
		url, label = get_url_to_list(doctype), doctype
	else:
		url = label = None
	if url:
		body += f'<p><a href="{escape_html(url)}">{escape_html(frappe._("Open {0}").format(label))}</a></p>'
	frappe.sendmail(
		recipients=[frappe.db.get_value("User", user, "email")],
		subject=subject,
		message=body,
		reference_doctype=doctype if docname else None,
		reference_name=docname,
		delayed=True,
	)


def clean_up() -> None:
	"""Drop inbox items older than KEEP_DAYS, archived ones older than KEEP_ARCHIVED_DAYS, and each
	user's beyond their newest MAX_ITEMS_PER_USER (daily)."""
	now = now_datetime()
	item = frappe.qb.DocType(DOCTYPE)
	frappe.qb.from_(item).delete().where(item.sent_at < now - timedelta(days=KEEP_DAYS)).run()
	frappe.qb.from_(item).delete().where(item.archived_at < now - timedelta(days=KEEP_ARCHIVED_DAYS)).run()
	crowded = (
		frappe.qb.from_(item)
		.select(item.user)
		.groupby(item.user)
		.having(Count(item.name) > MAX_ITEMS_PER_USER)
		.run(pluck=True)
	)
	for user in crowded:
		oldest_kept = (
			frappe.qb.from_(item)
			.select(item.seq)
			.where(item.user == user)
			.orderby(item.seq, order=Order.desc)
			.limit(1)
			.offset(MAX_ITEMS_PER_USER - 1)
			.run()[0][0]
		)
		frappe.qb.from_(item).delete().where(item.user == user).where(item.seq < oldest_kept).run()
	frappe.db.commit()
