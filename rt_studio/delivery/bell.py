"""The bell (display "Notification Log"): Frappe's Notification Logs for a whole audience in bulk.

Frappe's own insert (`frappe.get_doc({...}).insert()`) costs four queries or more per recipient:
ten thousand recipients, forty thousand queries (benchmarks/site.py, part 3). Here
`outbox.publish` only queues the rows of this transaction; just before its commit (Frappe's
`before_commit`, or a chunk's commit in the delivery job of a large audience) they are written
with one multi-row INSERT per BULK_ROWS rows and one UPDATE per BULK_ROWS recipients. A
transaction that rolls back writes none.

What a user sees is what Frappe's insert gives, effect by effect
(frappe/desk/doctype/notification_log/notification_log.py):
- the row: a name made as Frappe names a Notification Log (`make_autoname("hash")`), `read` 0,
  `type` "Alert", owner and modified_by the session user, `_seen` empty (Frappe's `reset_seen`
  skips a new document);
- `after_insert`'s realtime "notification" event to each recipient after the commit: queued in
  the outbox, so it goes out in the outbox's pipelined round trips;
- `set_notifications_as_unseen`: `seen` = 0 on the recipients' Notification Settings (one UPDATE)
  and their cached settings documents dropped (one Redis call, again after the commit, as
  `frappe.db.set_value` does);
- the email: Frappe sends none for type Alert (`is_email_notifications_enabled_for_type` returns
  False for it), and neither does this.
What differs: no document hook of Notification Log runs (its doc_events, Frappe Notifications,
Webhooks and Server Scripts on Notification Log, which Frappe's insert would run per row), and
Frappe's `doc_update`/`list_update` events for each new row are not published (they refresh a
Notification Log form or list someone has open; the bell does not use them). Rows are written
at the commit, so code in the same transaction does not see them before it.
"""

import frappe
from frappe.model.naming import make_autoname
from frappe.query_builder import DocType
from frappe.realtime import get_user_room
from frappe.utils import now

from rt_studio import transaction

#: Rows per INSERT (and recipients per UPDATE): a thousand rows of a few hundred bytes make a
#: statement of a few hundred KB, far below MariaDB's default max_allowed_packet (16 MB).
BULK_ROWS = 1000

COLUMNS = (
	"name",
	"creation",
	"modified",
	"owner",
	"modified_by",
	"docstatus",
	"idx",
	"subject",
	"email_content",
	"for_user",
	"type",
	"document_type",
	"document_name",
	"from_user",
	"read",
)


def queue(user: str, message: dict, outbox: list) -> None:
	"""A Notification Log for `user` about `message`, written just before this transaction commits;
	Frappe's "notification" event (the bell's refresh) joins `outbox`, published after the commit."""
	_rows().append((user, message))
	outbox.append(("notification", {}, get_user_room(user)))


def _rows() -> list:
	return transaction.state("rt_studio_bell", list, before_commit=write_queued)


def write_queued(rows: list[tuple[str, dict]]) -> None:
	"""Write the queued rows (runs just before the commit): an error is logged, never raised, so it
	cannot abort the user's commit."""
	if not rows:
		return
	try:
		write(rows)
	except Exception:
		frappe.log_error(title="RT Studio: could not write Notification Logs")


def write(rows: list[tuple[str, dict]]) -> None:
	"""Insert the Notification Logs and mark their recipients' bells unseen, BULK_ROWS at a time."""
	stamp, actor = now(), frappe.session.user
	for start in range(0, len(rows), BULK_ROWS):
		part = rows[start : start + BULK_ROWS]
		values = [
			(
				make_autoname("hash", "Notification Log"),
				stamp,
				stamp,
				actor,
				actor,
				0,
				0,
				message.get("subject") or message.get("message"),
				message.get("message"),
				user,
				"Alert",
				message.get("doctype"),
				message.get("docname"),
				message.get("actor"),
				0,
			)
			for user, message in part
		]
		frappe.db.bulk_insert("Notification Log", COLUMNS, values, chunk_size=BULK_ROWS)
		mark_unseen(sorted({user for user, _message in part}))


def mark_unseen(users: list[str]) -> None:
	"""`set_notifications_as_unseen` for many users: one UPDATE, and their cached Notification
	Settings dropped now and after the commit or rollback (as `frappe.clear_document_cache`)."""
	settings = DocType("Notification Settings")
	frappe.qb.update(settings).set(settings.seen, 0).where(settings.name.isin(users)).run()
	keys = [frappe.get_document_cache_key("Notification Settings", user) for user in users]

	def forget():
		frappe.cache.delete_value(keys)

	forget()
	frappe.db.after_commit.add(forget)
	frappe.db.after_rollback.add(forget)
