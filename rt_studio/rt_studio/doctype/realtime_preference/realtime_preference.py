"""One user's preference for one rule or channel, or their default (naming neither), which also
holds their quiet hours and digest: written by rt_studio.desk.preferences for the session user only
and read, cached, by rt_studio.delivery.preferences. Named by a digest of (user, rule, channel)
(rt_studio.delivery.preferences.name_of), so a second row for the same target cannot exist (the primary key decides races)."""

import frappe
from frappe import _
from frappe.model.document import Document


class RealtimePreference(Document):
	def validate(self):
		if self.rule and self.channel:
			frappe.throw(_("A preference names one rule, one channel, or neither (the default)"))
