"""A user's mute of one rule or channel: written by rt_studio.desk.muting (mute / unmute) and
rt_studio.delivery.mutes (removed with its rule or channel, and when it has ended)."""

import frappe
from frappe import _
from frappe.model.document import Document


class RealtimeMute(Document):
	def validate(self):
		if bool(self.rule) == bool(self.channel):
			frappe.throw(_("A mute names one rule or one channel"))
