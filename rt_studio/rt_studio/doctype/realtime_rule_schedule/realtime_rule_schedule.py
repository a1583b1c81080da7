"""When the scheduler last ran the time rules: written only by rt_studio.schedule."""

from frappe.model.document import Document


class RealtimeRuleSchedule(Document):
	pass
