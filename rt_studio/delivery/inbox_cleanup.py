"""The inbox's daily clean-up: how long items are kept, and how many per user.

Rows are found with plain (non-locking) SELECTs on indexed columns and deleted by primary key in
batches of BATCH, each committed: the table is never locked beyond the rows of one batch, so
deliveries and the desk go on while a large inbox is trimmed. Every user who lost items hears
the new badge on all their tabs (the inbox event), after the commit.

Called by: the scheduler (`clean_up`, daily).
"""

from datetime import datetime, timedelta

import frappe
from frappe.query_builder import Order
from frappe.query_builder.functions import Count
from frappe.utils import now_datetime

from rt_studio.delivery.inbox import DOCTYPE, publish_change

#: Inbox items are kept this long (read or not): a quarter, as Frappe keeps Notification Logs
#: (its Log Settings default to 90 days).
KEEP_DAYS = 90
#: ...and archived items only this long: archiving says "done with it".
KEEP_ARCHIVED_DAYS = 30
#: ...and at most this many per user, the newest, unread ones before read or archived ones: a rule
#: that floods (a busy DocType, Everyone) fills a user's inbox for a day at most; ten pages of
#: scrolling back is past what anyone reads.
MAX_ITEMS_PER_USER = 1000
#: Rows deleted per statement and commit.
BATCH = 500


def clean_up(now: datetime | None = None) -> None:
	"""Drop inbox items older than KEEP_DAYS, archived ones older than KEEP_ARCHIVED_DAYS, and each
	user's beyond MAX_ITEMS_PER_USER (read and archived ones first, then the oldest) (daily)."""
	now = now or now_datetime()
	item = frappe.qb.DocType(DOCTYPE)
	touched: set[str] = set()
	for condition in (
		item.sent_at < now - timedelta(days=KEEP_DAYS),
		item.archived_at < now - timedelta(days=KEEP_ARCHIVED_DAYS),
	):
		while rows := frappe.qb.from_(item).select(item.name, item.user).where(condition).limit(BATCH).run():
			_delete(rows, touched)
	for user, count in (
		frappe.qb.from_(item)
		.select(item.user, Count(item.name))
		.groupby(item.user)
		.having(Count(item.name) > MAX_ITEMS_PER_USER)
		.run()
	):
		_trim(user, count - MAX_ITEMS_PER_USER, touched)
	for user in sorted(touched):
		publish_change(user, {"cleaned_up": True})
	frappe.db.commit()


def _trim(user: str, excess: int, touched: set[str]) -> None:
	"""Delete `excess` of the user's items: the oldest read or archived ones, then the oldest."""
	item = frappe.qb.DocType(DOCTYPE)
	done = item.read_at.isnotnull() | item.archived_at.isnotnull()
	for condition in (done, None):
		while excess > 0:
			query = frappe.qb.from_(item).select(item.name, item.user).where(item.user == user)
			if condition is not None:
				query = query.where(condition)
			rows = query.orderby(item.seq, order=Order.asc).limit(min(BATCH, excess)).run()
			if not rows:
				break
			_delete(rows, touched)
			excess -= len(rows)


def _delete(rows: list[tuple[str, str]], touched: set[str]) -> None:
	item = frappe.qb.DocType(DOCTYPE)
	frappe.qb.from_(item).delete().where(item.name.isin([name for name, _ in rows])).run()
	frappe.db.commit()
	touched.update(user for _, user in rows)
