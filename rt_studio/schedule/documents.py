"""Which documents a time rule has due in an interval, read from the watched date alone.

Called by the scheduler entry (`rt_studio.schedule.run_time_rules`) and by the backtest's
time rules (desk/backtest.py), so both find the same documents for the same interval.
"""

from datetime import datetime

import frappe

from rt_studio.engine import due


def due_documents(rule, since: datetime, now: datetime) -> list[tuple[str, datetime]]:
	"""(name, due time) of the documents whose message is to be sent in (since, now], read from
	the watched date alone (a document is loaded only when its message is due)."""
	field = due.watched_field(rule)
	low, high = due.field_range(rule, since, now)
	rows = frappe.get_all(
		rule.document_type,
		filters=[[field, ">=", low], [field, "<=", high]],
		fields=["name", field],
		order_by=f"`{field}` asc",
		as_list=True,
	)
	found = ((name, due.due_in(rule, {field: value}, since, now)) for name, value in rows)
	return [(name, due_at) for name, due_at in found if due_at is not None]
