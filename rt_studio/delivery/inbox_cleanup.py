"""The inbox's daily clean-up: how long items are kept, and how many per user.

Called by: the scheduler (`clean_up`, daily).
"""

from datetime import timedelta

import frappe
from frappe.query_builder import Order
from frappe.query_builder.functions import Count
from frappe.utils import now_datetime

from rt_studio.delivery.inbox import DOCTYPE

#: Inbox items are kept this long (read or not): a quarter, as Frappe keeps Notification Logs
#: (its Log Settings default to 90 days).
KEEP_DAYS = 90
#: ...and archived items only this long: archiving says "done with it".
KEEP_ARCHIVED_DAYS = 30
#: ...and at most this many per user, the newest: a rule that floods (a busy DocType, Everyone)
#: fills a user's inbox for a day at most; ten pages of scrolling back is past what anyone reads.
MAX_ITEMS_PER_USER = 1000


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
