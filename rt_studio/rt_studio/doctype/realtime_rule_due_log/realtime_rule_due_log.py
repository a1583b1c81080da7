"""A message a time rule came to send: written only by rt_studio.schedule, keyed so it is sent once."""

from frappe.model.document import Document


class RealtimeRuleDueLog(Document):
	pass
