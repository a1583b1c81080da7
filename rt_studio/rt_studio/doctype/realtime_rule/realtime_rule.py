# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

"""The Realtime Rule controller: validation through rt_studio/files/rule_checks.py, standard
rules written to their module on save, and what a deleted rule takes along (its trace, due
logs and mutes); every change invalidates the rule cache of every process."""

import frappe
from frappe import _
from frappe.model.document import Document

from rt_studio.engine.errors import Problem
from rt_studio.files import rule_checks, standard_rules


class RealtimeRule(Document):
	"""A no-code rule: on an event of a DocType, send a realtime message to an audience."""

	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from rt_studio.rt_studio.doctype.realtime_rule_audience.realtime_rule_audience import (
			RealtimeRuleAudience,
		)

		alert_seconds: DF.Int
		audience: DF.Table[RealtimeRuleAudience]
		condition: DF.Code | None
		condition_type: DF.Literal["Python", "Filters"]
		critical: DF.Check
		date_changed: DF.Literal[None]
		datetime_changed: DF.Literal[None]
		days_in_advance: DF.Int
		display: DF.Literal[
			"Alert",
			"Sticky",
			"Notification Log",
			"Refresh Form",
			"Refresh List",
			"Refresh Dashboard",
			"Custom",
		]
		document_type: DF.Link
		enabled: DF.Check
		event: DF.Literal[
			"New",
			"Save",
			"Submit",
			"Cancel",
			"Delete",
			"Update After Submit",
			"Value Change",
			"Days Before",
			"Days After",
			"Minutes Before",
			"Minutes After",
			"Method",
		]
		event_name: DF.Data | None
		exclude_actor: DF.Check
		fields: DF.SmallText | None
		filters: DF.JSON | None
		from_value: DF.Data | None
		indicator: DF.Literal["blue", "green", "orange", "red", "gray"]
		is_standard: DF.Check
		last_error: DF.SmallText | None
		last_error_on: DF.Datetime | None
		message: DF.Code | None
		method: DF.Data | None
		minutes_offset: DF.Int
		module: DF.Link | None
		rate_limit_count: DF.Int
		rate_limit_seconds: DF.Int
		rule_name: DF.Data
		send_after: DF.Data | None
		send_before: DF.Data | None
		send_days: DF.Data | None
		subject: DF.Data | None
		to_value: DF.Data | None
		value_changed: DF.Autocomplete | None
	# end: auto-generated types

	def validate(self):
		standard_rules.validate(self)
		self.last_error = None
		self.last_error_on = None
		rule_checks.throw_problems(
			self.collect_problems(),
			_("Rule {0} cannot be saved:").format(frappe.bold(frappe.utils.escape_html(self.rule_name))),
			_("Invalid Realtime Rule"),
		)

	def collect_problems(self) -> list[Problem]:
		"""Every problem at once, each naming the field and the fix (also used by import and the
		form's live check)."""
		return rule_checks.rule_problems(self)

	def on_update(self):
		standard_rules.export(self)

	def before_export(self, export: dict):
		standard_rules.before_export(export)

	def on_trash(self):
		from rt_studio.delivery import mutes, trace

		standard_rules.on_trash(self)
		trace.clear(self.name)
		# nobody has muted a rule made again under this name
		mutes.forget_target(rule=self.name)
		# a rule made again under this name sends its time messages again
		frappe.db.delete("Realtime Rule Due Log", {"rule": self.name})

	def clear_cache(self):
		"""Frappe calls this after every save and delete: every process reloads the rules."""
		from rt_studio import rule_cache as cache

		super().clear_cache()
		cache.invalidate()


@frappe.whitelist(methods=["POST"])
def reload_rules() -> None:
	"""The list's "Reload Rules": apply rule changes made without the form (`frappe.db.set_value`,
	a patch, SQL) in every process now, not at the next minute's check."""
	from rt_studio import rule_cache as cache

	frappe.only_for("System Manager")
	cache.reload()
