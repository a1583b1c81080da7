"""A user's mute of one rule or channel: written only by rt_studio.delivery.mutes (mute / unmute)."""

import frappe
from frappe import _
from frappe.model.document import Document


class RealtimeMute(Document):
	def validate(self):
		if bool(self.rule) == bool(self.channel):
			frappe.throw(_("A mute names one rule or one channel"))
