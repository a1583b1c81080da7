"""The bell (display "Notification Log"): Frappe's Notification Logs for a whole audience in bulk.

Frappe's own insert (`frappe.get_doc({...}).insert()`) costs four queries or more per recipient:
ten thousand recipients, forty thousand queries (benchmarks/site.py, part 3). Here
`outbox.publish` only queues the rows of this transaction; just before its commit (Frappe's
`before_commit`, or a chunk's commit in the delivery job of a large audience) they are written
with one multi-row INSERT per 1,000 rows or 4 MB (bulk.py), one query for who switched
notifications off and one UPDATE per BULK_ROWS recipients. A transaction that rolls back writes
none.

What a user sees is what Frappe's insert gives, effect by effect
(frappe/desk/doctype/notification_log/notification_log.py), and nothing for a user whose
Notification Settings have "Enabled" unchecked (as Frappe's `make_notification_logs`):
- the row: `read` 0, `type` "Alert", owner and modified_by the session user, `_seen` empty
  (Frappe's `reset_seen` skips a new document);
- `after_insert`'s realtime "notification" event to each recipient after the commit: queued in
  the outbox, so it goes out in the outbox's pipelined round trips;
- `set_notifications_as_unseen`: `seen` = 0 on the recipients' Notification Settings (one UPDATE)
  and their cached settings documents dropped (one Redis call, again after the commit, as
  `frappe.db.set_value` does);
- the email: Frappe sends none for type Alert (`is_email_notifications_enabled_for_type` returns
  False for it), and neither does this.
What differs: the row's name is 16 random characters (bulk.new_names), not Frappe's 10 whose
first four repeat for a tenth of a second (about one batch of 1,000 in 2,000 would hold a
duplicate); a subject longer than its column is cut to it (Frappe's insert would fail). No
document hook of Notification Log runs (its doc_events, Frappe Notifications, Webhooks and
Server Scripts on Notification Log, which Frappe's insert would run per row), and Frappe's
`doc_update`/`list_update` events for each new row are not published (they refresh a
Notification Log form or list someone has open; the bell does not use them). Rows are written
at the commit, so code in the same transaction does not see them before it.
"""

import frappe
from frappe.query_builder import DocType
from frappe.realtime import get_user_room
from frappe.utils import now

from rt_studio import transaction
from rt_studio.delivery import bulk

#: Recipients per UPDATE of their Notification Settings (the INSERTs are bounded by bulk.py).
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
	"""A Notification Log for `user` about `message`, written just before this transaction commits
	unless the user switched notifications off; Frappe's "notification" event (the bell's refresh)
	then joins `outbox`, published after the commit."""
	_rows().append((user, message, outbox))


def _rows() -> list:
	return transaction.state("rt_studio_bell", list, before_commit=write_queued)


def write_queued(rows: list[tuple[str, dict, list]]) -> None:
	"""Write the queued rows (runs just before the commit), in a savepoint: a statement error is
	logged and the commit goes on without them; an error that aborts the transaction (a deadlock)
	fails the commit, and nothing is sent (transaction.guarded_write)."""
	if not rows:
		return
	with transaction.guarded_write("RT Studio: could not write Notification Logs"):
		written = write([(user, message) for user, message, _outbox in rows])
	for user, _message, outbox in rows:
		if user in written:
			outbox.append(("notification", {}, get_user_room(user)))


def write(rows: list[tuple[str, dict]]) -> set[str]:
	"""Insert the Notification Logs and mark their recipients' bells unseen (bulk.py bounds each
	INSERT by rows and bytes; one UPDATE per BULK_ROWS recipients). Users whose Notification
	Settings say "Enabled" off get none, as Frappe's `make_notification_logs` skips them. Returns
	the users who got one."""
	switched_off = notifications_off(sorted({user for user, _message in rows}))
	rows = [(user, message) for user, message in rows if user not in switched_off]
	stamp, actor = now(), frappe.session.user
	values = [
		(
			name,
			stamp,
			stamp,
			actor,
			actor,
			0,
			0,
			bulk.cut(message.get("subject") or message.get("message")),
			message.get("message"),
			user,
			"Alert",
			message.get("doctype"),
			message.get("docname"),
			message.get("actor"),
			0,
		)
		for name, (user, message) in zip(bulk.new_names(len(rows)), rows, strict=True)
	]
	if values:
		bulk.insert("Notification Log", COLUMNS, list(bulk.statements(values)))
	users = sorted({user for user, _message in rows})
	for start in range(0, len(users), BULK_ROWS):
		mark_unseen(users[start : start + BULK_ROWS])
	return set(users)


def notifications_off(users: list[str]) -> set[str]:
	"""The users whose Notification Settings have "Enabled" unchecked (no settings: enabled, as
	Frappe's `is_notifications_enabled`), BULK_ROWS per query."""
	settings = DocType("Notification Settings")
	off = set()
	for start in range(0, len(users), BULK_ROWS):
		off.update(
			frappe.qb.from_(settings)
			.select(settings.name)
			.where(settings.name.isin(users[start : start + BULK_ROWS]))
			.where(settings.enabled == 0)
			.run(pluck=True)
		)
	return off


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
