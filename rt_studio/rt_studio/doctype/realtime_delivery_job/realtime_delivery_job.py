"""A large audience's delivery, durable in MariaDB: written and advanced by
rt_studio.delivery.delivery_jobs (never through this controller); see that module."""

import frappe
from frappe.model.document import Document


class RealtimeDeliveryJob(Document):
	pass


def on_doctype_update():
	"""The recovery sweep reads the unfinished jobs by status and age, and clears old finished ones."""
	frappe.db.add_index("Realtime Delivery Job", ["status", "modified"], index_name="status_modified")
