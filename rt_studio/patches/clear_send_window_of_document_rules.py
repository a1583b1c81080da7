"""Clear the send window Frappe filled in on rules that are not time rules.

`send_after` / `send_before` were Time fields at first, and Frappe gives every Time field of
a new document the current time: each rule saved then holds a window a few milliseconds
long. Only time rules use a window, so the values are cleared on every other rule.
"""

import frappe

from rt_studio.engine.events import TIME_EVENTS


def execute():
	frappe.db.sql(
		"""update `tabRealtime Rule` set send_after = null, send_before = null
		where event not in %(events)s""",
		{"events": TIME_EVENTS},
	)
