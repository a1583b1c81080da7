"""A channel post's idempotency key: written only by rt_studio.delivery.idempotency, named by the key's digest."""

import frappe
from frappe.model.document import Document


class RealtimePublishKey(Document):
	pass


def on_doctype_update():
	# the clean-up of expired keys (rt_studio.delivery.idempotency.claim) reads by creation
	frappe.db.add_index("Realtime Publish Key", ["creation"])
