# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document

from rt_studio import rule_checks, standard_rules
from rt_studio.engine.dry_run import dry_run_problems
from rt_studio.engine.errors import Problem
from rt_studio.engine.rules import USER_FIELD, parse_rule
from rt_studio.engine.values import written_problem


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
		problems = self.collect_problems()
		if problems:
			lines = "".join(
				f"<li>{frappe.bold(p.field)}: {frappe.utils.escape_html(p.problem)}</li>" for p in problems
			)
			frappe.throw(
				_("Rule {0} cannot be saved:").format(frappe.bold(self.rule_name)) + f"<ul>{lines}</ul>",
				title=_("Invalid Realtime Rule"),
			)

	def collect_problems(self) -> list[Problem]:
		"""Every problem at once, each naming the field and the fix (also used by import and the
		form's live check)."""
		rule, problems = parse_rule(self.as_dict())
		if not self.document_type or not frappe.db.exists("DocType", self.document_type):
			if self.document_type:
				problems.append(
					Problem(self.rule_name, "document_type", f"DocType {self.document_type} does not exist")
				)
			return problems
		problems += self.document_type_problems()
		problems += self.fieldname_problems()
		problems += rule_checks.trigger_problems(self)
		problems += rule_checks.filter_problems(self, rule)
		if not problems:
			problems += self.dry_run_problems(rule)
		return problems

	def document_type_problems(self) -> list[Problem]:
		from rt_studio.handler import IGNORED_DOCTYPES

		meta = frappe.get_meta(self.document_type)
		if self.document_type in IGNORED_DOCTYPES:
			return [Problem(self.rule_name, "document_type", "RT Studio does not watch this DocType")]
		if meta.istable:
			return [Problem(self.rule_name, "document_type", "is a child table: choose its parent DocType")]
		if self.event in ("Submit", "Cancel", "Update After Submit") and not meta.is_submittable:
			return [
				Problem(
					self.rule_name, "event", f"{self.document_type} is not submittable: choose Save or New"
				)
			]
		return []

	def fieldname_problems(self) -> list[Problem]:
		"""User fields and payload fields must exist on the DocType."""
		meta = frappe.get_meta(self.document_type)
		problems = []

		def known(fieldname: str) -> bool:
			return rule_checks.known(meta, fieldname)

		if self.event == "Value Change" and self.value_changed:
			watched = self.watched_field(meta)
			if watched is not None:  # a missing field: rule_checks.trigger_problems says so
				problems += self.transition_problems(watched)
		for field in [f.strip() for f in (self.fields or "").replace("\n", ",").split(",") if f.strip()]:
			if not known(field):
				problems.append(
					Problem(self.rule_name, "fields", f"{self.document_type} has no field {field}")
				)
		for row in self.audience:
			if row.audience_type != USER_FIELD or not row.user_field:
				continue
			table, _dot, field = row.user_field.partition(".")
			where = f"audience row {row.idx}: user_field"
			if not field:
				if not known(table):
					problems.append(
						Problem(self.rule_name, where, f"{self.document_type} has no field {table}")
					)
				continue
			problem = rule_checks.table_field_problem(meta, self.document_type, table, field)
			if problem:
				problems.append(Problem(self.rule_name, where, problem))
		return problems

	def watched_field(self, meta) -> str | None:
		"""The field type of `value_changed` (`field`, or `table.field` of a child table's rows),
		"" for a standard field, None when there is no such field."""
		table, _dot, field = self.value_changed.partition(".")
		if field:
			table_df = meta.get_field(table)
			if not table_df or table_df.fieldtype not in frappe.model.table_fields:
				return None
			meta, table = frappe.get_meta(table_df.options), field
		if table in ("creation", "modified"):
			return "Datetime"
		if table in rule_checks.STANDARD_FIELDS:
			return ""
		df = meta.get_field(table)
		return df.fieldtype if df else None

	def transition_problems(self, fieldtype: str) -> list[Problem]:
		"""From Value and To Value must be values the watched field can hold (they compare as its type)."""
		problems = []
		for field in ("from_value", "to_value"):
			why = written_problem(fieldtype, self.get(field) or "")
			if why:
				problems.append(
					Problem(self.rule_name, field, f"{why} ({self.value_changed} is a {fieldtype} field)")
				)
		return problems

	def dry_run_problems(self, rule) -> list[Problem]:
		"""Like Notification: run the rule's code once on an empty document of its DocType, under
		the site's budget, so a runaway loop or a refused operation shows now and not in a save."""
		from rt_studio.site import frappe_utils, rule_budget_ms

		sample = frappe.new_doc(self.document_type).as_dict()
		return dry_run_problems(rule, sample, frappe_utils(), rule_budget_ms())

	def on_update(self):
		standard_rules.export(self)

	def before_export(self, export: dict):
		standard_rules.before_export(export)

	def on_trash(self):
		from rt_studio import mutes, trace

		standard_rules.on_trash(self)
		trace.clear(self.name)
		# nobody has muted a rule made again under this name
		mutes.forget_target(rule=self.name)
		# a rule made again under this name sends its time messages again
		frappe.db.delete("Realtime Rule Due Log", {"rule": self.name})

	def clear_cache(self):
		"""Frappe calls this after every save and delete: every process reloads the rules."""
		from rt_studio import cache

		super().clear_cache()
		cache.invalidate()
