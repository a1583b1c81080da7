"""What a rule names must exist on this site: the fields its trigger and filters use, its method.

The engine checks a rule's shape anywhere, offline too; these checks need the site's DocTypes
and hooks. Each problem names the rule, the field and the fix, like the engine's.
"""

import frappe

from rt_studio.engine.errors import Problem
from rt_studio.engine.events import DAY_EVENTS, METHOD, MINUTE_EVENTS, VALUE_CHANGE

#: Fields every document has besides its DocType's own.
STANDARD_FIELDS = frozenset(
	{"name", "owner", "creation", "modified", "modified_by", "docstatus", "idx", "parent"}
)
#: Standard fields that hold a date and time: a time rule may count from them, as from a
#: Datetime field (Notification offers them too).
STANDARD_DATETIMES = ("creation", "modified")
#: The handler apps name in their doc_events for a method RT Studio should hear.
HANDLER = "rt_studio.handler.on_document_event"


def known(meta, fieldname: str) -> bool:
	return fieldname in STANDARD_FIELDS or bool(meta.get_field(fieldname))


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
	table, _dot, field = doc.value_changed.partition(".")
	if not field:
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
