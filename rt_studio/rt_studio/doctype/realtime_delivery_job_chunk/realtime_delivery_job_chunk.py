"""One committed chunk of a Realtime Delivery Job (written by rt_studio.delivery.delivery_jobs)."""

from frappe.model.document import Document


class RealtimeDeliveryJobChunk(Document):
	pass
