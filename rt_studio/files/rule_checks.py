"""What a rule names must exist on this site: its DocType, the fields its trigger, audience,
payload and filters use, its method; and its code must run within the budget on an empty
document. The one place for these checks: the rule's controller (save), the import of rule
files and the form's live check all call `rule_problems`, and `throw_problems` shows any
list of problems (rules, channels, conversions, imports) the same way.

The engine checks a rule's shape anywhere, offline too; these checks need the site's DocTypes
and hooks. Each problem names the rule, the field and the fix, like the engine's.
"""

import frappe
from frappe import _

from rt_studio.engine.dry_run import dry_run_problems
from rt_studio.engine.errors import Problem
from rt_studio.engine.events import (
	CANCEL,
	DAY_EVENTS,
	IGNORED_DOCTYPES,
	METHOD,
	MINUTE_EVENTS,
	SUBMIT,
	UPDATE_AFTER_SUBMIT,
	VALUE_CHANGE,
)
from rt_studio.engine.rules import USER_FIELD, parse_rule
from rt_studio.engine.values import written_problem

#: Fields every document has besides its DocType's own.
STANDARD_FIELDS = frozenset(
	{"name", "owner", "creation", "modified", "modified_by", "docstatus", "idx", "parent"}
)
#: Standard fields that hold a date and time: a time rule may count from them, as from a
#: Datetime field (Notification offers them too).
STANDARD_DATETIMES = ("creation", "modified")
#: The handler apps name in their doc_events for a method RT Studio should hear.
HANDLER = "rt_studio.handler.on_document_event"
#: Events only a submittable DocType raises.
SUBMIT_EVENTS = (SUBMIT, CANCEL, UPDATE_AFTER_SUBMIT)


def throw_problems(problems: list[Problem], heading: str, title: str, name_rules: bool = False) -> None:
	"""Refuse with every problem at once, each field in bold and each text escaped; with
	`name_rules` (a file of several rules), each line names its rule too."""
	if not problems:
		return

	def label(p: Problem) -> str:
		where = f"{p.rule}: {p.field}" if name_rules and p.rule and p.field else p.field or p.rule
		return frappe.bold(frappe.utils.escape_html(where))

	lines = "".join(f"<li>{label(p)}: {frappe.utils.escape_html(p.problem)}</li>" for p in problems)
	frappe.throw(heading + f"<ul>{lines}</ul>", title=title)


def split_field(value: str) -> tuple[str, str | None]:
	"""`field` -> (field, None); `table.field` (a field of a child table's rows) -> (table, field)."""
	table, dot, field = value.partition(".")
	return (table, field) if dot else (value, None)


def known(meta, fieldname: str) -> bool:
	return fieldname in STANDARD_FIELDS or bool(meta.get_field(fieldname))


def rule_problems(doc) -> list[Problem]:
	"""Every problem of a Realtime Rule document at once, each naming the field and the fix."""
	rule, problems = parse_rule(doc.as_dict())
	if not doc.document_type or not frappe.db.exists("DocType", doc.document_type):
		if doc.document_type:
			problems.append(
				Problem(doc.rule_name, "document_type", f"DocType {doc.document_type} does not exist")
			)
		return problems
	problems += document_type_problems(doc)
	problems += fieldname_problems(doc)
	problems += trigger_problems(doc)
	problems += filter_problems(doc, rule)
	if not problems:
		problems += code_problems(doc, rule)
	return problems


def document_type_problems(doc) -> list[Problem]:
	meta = frappe.get_meta(doc.document_type)
	if doc.document_type in IGNORED_DOCTYPES:
		return [Problem(doc.rule_name, "document_type", "RT Studio does not watch this DocType")]
	if meta.istable:
		return [Problem(doc.rule_name, "document_type", "is a child table: choose its parent DocType")]
	if doc.event in SUBMIT_EVENTS and not meta.is_submittable:
		return [
			Problem(doc.rule_name, "event", f"{doc.document_type} is not submittable: choose Save or New")
		]
	return []


def fieldname_problems(doc) -> list[Problem]:
	"""The transition of a Value Change, payload fields and user fields must fit the DocType."""
	meta = frappe.get_meta(doc.document_type)
	problems = []
	if doc.event == VALUE_CHANGE and doc.value_changed:
		watched = watched_fieldtype(meta, doc.value_changed)
		if watched is not None:  # a missing field: trigger_problems says so
			problems += transition_problems(doc, watched)
	for field in [f.strip() for f in (doc.fields or "").replace("\n", ",").split(",") if f.strip()]:
		if not known(meta, field):
			problems.append(Problem(doc.rule_name, "fields", f"{doc.document_type} has no field {field}"))
	for row in doc.audience:
		if row.audience_type == USER_FIELD and row.user_field:
			problem = field_problem(meta, doc.document_type, row.user_field)
			if problem:
				problems.append(Problem(doc.rule_name, f"audience row {row.idx}: user_field", problem))
	return problems


def field_problem(meta, doctype: str, value: str) -> str | None:
	"""Why `field` or `table.field` names no field of `doctype` or of its rows, or None."""
	table, field = split_field(value)
	if field is None:
		return None if known(meta, table) else f"{doctype} has no field {table}"
	return table_field_problem(meta, doctype, table, field)


def watched_fieldtype(meta, value: str) -> str | None:
	"""The field type of `field` or `table.field`: "" for a standard field, None when there is
	no such field."""
	table, field = split_field(value)
	if field is not None:
		table_df = meta.get_field(table)
		if not table_df or table_df.fieldtype not in frappe.model.table_fields:
			return None
		meta, table = frappe.get_meta(table_df.options), field
	if table in STANDARD_DATETIMES:
		return "Datetime"
	if table in STANDARD_FIELDS:
		return ""
	df = meta.get_field(table)
	return df.fieldtype if df else None


def transition_problems(doc, fieldtype: str) -> list[Problem]:
	"""From Value and To Value must be values the watched field can hold (they compare as its type)."""
	problems = []
	for field in ("from_value", "to_value"):
		why = written_problem(fieldtype, doc.get(field) or "")
		if why:
			problems.append(
				Problem(doc.rule_name, field, f"{why} ({doc.value_changed} is a {fieldtype} field)")
			)
	return problems


def code_problems(doc, rule) -> list[Problem]:
	"""Like Notification: run the rule's code once on an empty document of its DocType, under
	the site's budget, so a runaway loop or a refused operation shows now and not in a save."""
	from rt_studio.people.site import frappe_utils, rule_budget_ms

	sample = frappe.new_doc(doc.document_type).as_dict()
	return dry_run_problems(rule, sample, frappe_utils(), rule_budget_ms())


def trigger_problems(doc) -> list[Problem]:
	"""The watched field (of the document or of its rows), the date to count from, the method."""
	meta = frappe.get_meta(doc.document_type)
	if doc.event == VALUE_CHANGE and doc.value_changed:
		return _value_changed(doc, meta)
	if doc.event in DAY_EVENTS and doc.date_changed:
		return _date_field(doc, meta, "date_changed", ("Date", "Datetime"))
	if doc.event in MINUTE_EVENTS and doc.datetime_changed:
		return _date_field(doc, meta, "datetime_changed", ("Datetime",))
	if doc.event == METHOD and doc.method and not hears(doc.document_type, doc.method):
		return [
			Problem(
				doc.rule_name,
				"method",
				f"RT Studio does not hear {doc.method} on {doc.document_type}: choose one of "
				f"{', '.join(heard_methods(doc.document_type))}, or let the app that calls it name "
				f"{HANDLER} for {doc.method} in its hooks.py doc_events",
			)
		]
	return []


def _value_changed(doc, meta) -> list[Problem]:
	table, field = split_field(doc.value_changed)
	if field is None:
		table_df = meta.get_field(table)
		if table_df and table_df.fieldtype in frappe.model.table_fields:
			return [
				Problem(
					doc.rule_name,
					"value_changed",
					f"{table} is a table: name a field of its rows, such as {table}.{_first_field(table_df)}",
				)
			]
		if known(meta, table):
			return []
		return [Problem(doc.rule_name, "value_changed", f"{doc.document_type} has no field {table}")]
	problem = table_field_problem(meta, doc.document_type, table, field)
	return [Problem(doc.rule_name, "value_changed", problem)] if problem else []


def table_field_problem(meta, doctype: str, table: str, field: str) -> str | None:
	"""Why `table.field` names no field of the rows of a table of `doctype`, or None."""
	table_df = meta.get_field(table)
	if not table_df or table_df.fieldtype not in frappe.model.table_fields:
		return f"{table} is not a table field of {doctype}"
	if not known(frappe.get_meta(table_df.options), field):
		return f"{table_df.options} has no field {field}"
	return None


def _first_field(table_df) -> str:
	fields = [
		df.fieldname
		for df in frappe.get_meta(table_df.options).fields
		if df.fieldtype not in frappe.model.no_value_fields
	]
	return fields[0] if fields else "fieldname"


def _date_field(doc, meta, key: str, fieldtypes: tuple[str, ...]) -> list[Problem]:
	fieldname = doc.get(key)
	if fieldname in STANDARD_DATETIMES:
		return []
	field = meta.get_field(fieldname)
	if field and field.fieldtype in fieldtypes:
		return []
	what = " or ".join(fieldtypes)
	found = (
		f"{fieldname} is a {field.fieldtype} field"
		if field
		else f"{doc.document_type} has no field {fieldname}"
	)
	return [Problem(doc.rule_name, key, f"{found}: choose a {what} field (or creation, modified)")]


def hears(doctype: str, method: str) -> bool:
	"""Whether Frappe calls RT Studio's handler when `method` runs on a `doctype` document."""
	hooks = frappe.get_doc_hooks()
	return HANDLER in hooks.get(doctype, {}).get(method, []) + hooks.get("*", {}).get(method, [])


def heard_methods(doctype: str) -> list[str]:
	hooks = frappe.get_doc_hooks()
	methods = {
		m for key in ("*", doctype) for m, handlers in hooks.get(key, {}).items() if HANDLER in handlers
	}
	return sorted(methods)


def filter_problems(doc, rule) -> list[Problem]:
	"""Each filter must name a field of the rule's DocType or of one of its child tables."""
	if rule is None or not rule.filters:
		return []
	meta = frappe.get_meta(doc.document_type)
	tables = {df.options for df in meta.get_table_fields()}
	problems = []
	for index, f in enumerate(rule.filters, 1):
		if f.doctype != doc.document_type and f.doctype not in tables:
			text = f"{f.doctype} is neither {doc.document_type} nor one of its child tables"
		elif not known(frappe.get_meta(f.doctype), f.fieldname):
			text = f"{f.doctype} has no field {f.fieldname}"
		else:
			continue
		problems.append(Problem(doc.rule_name, "filters", f"filter {index}: {text}: pick the field again"))
	return problems
