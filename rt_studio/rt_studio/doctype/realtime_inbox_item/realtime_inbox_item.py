"""One message in one user's inbox: written in bulk by rt_studio.delivery.inbox (never through this
controller) and changed only by the inbox API of rt_studio.desk.inbox, for the session user's own items."""

import frappe
from frappe.model.document import Document


class RealtimeInboxItem(Document):
	pass


def on_doctype_update():
	"""The indexes the inbox reads by: a user's items in `seq` order (one row per delivery), the
	unread count, the escalation job's items of one rule sent in a time range, a deleted
	document's items, and the daily clean-up's old and archived items (found by index, deleted by
	name in batches)."""
	frappe.db.add_unique("Realtime Inbox Item", ["user", "seq"], constraint_name="user_seq")
	frappe.db.add_index("Realtime Inbox Item", ["user", "read_at", "archived_at"], index_name="user_unread")
	frappe.db.add_index("Realtime Inbox Item", ["rule", "sent_at"], index_name="rule_sent_at")
	frappe.db.add_index(
		"Realtime Inbox Item", ["reference_doctype", "reference_name"], index_name="reference"
	)
	frappe.db.add_index("Realtime Inbox Item", ["sent_at"], index_name="sent_at")
	frappe.db.add_index("Realtime Inbox Item", ["archived_at"], index_name="archived_at")
