"""Backtest on the site: the events of the last days, rebuilt from the document history.

What Frappe keeps is what can be replayed:
- New: the documents created in the period, as they were when created (their later Version
  records undone);
- Save, Submit, Cancel, Update After Submit, Value Change: the Version records of the period,
  each with the document before and after it (only for DocTypes that track changes);
- Delete: the Deleted Document records of the period;
- Days/Minutes Before/After: the messages that came due in the period, from the documents'
  current dates and values (earlier values of those dates are not looked up);
- Method: nothing records which methods ran, so it cannot be replayed.

Values in a Version are as the form showed them (a date as 31-05-2024, a currency as
"₹ 1,200.00"): they are read back with the site's date and number formats. The engine then
evaluates every event as live firing would (`engine.backtest.replay`) and sends nothing.
"""

import json
from collections.abc import Iterator
from copy import deepcopy
from datetime import datetime, timedelta
from time import monotonic

import frappe
from frappe.utils import flt, get_datetime, getdate, now_datetime

from rt_studio.engine import due
from rt_studio.engine.evaluate import Event
from rt_studio.engine.events import (
	CANCEL,
	DELETE,
	METHOD,
	NEW,
	SAVE,
	SUBMIT,
	TIME_EVENTS,
	UPDATE_AFTER_SUBMIT,
	VALUE_CHANGE,
)
from rt_studio.schedule.documents import due_documents

#: The longest period a backtest replays: a month of history is what people ask about, and it
#: stays quick to rebuild.
MAX_DAYS = 31
#: Events one backtest replays (the most recent ones when there are more): a busy DocType's
#: week, evaluated within seconds.
MAX_EVENTS = 1000
#: Seconds a backtest may spend rebuilding and evaluating before it reports what it has: the
#: request that asks for it should answer well within a web worker's timeout.
MAX_SECONDS = 30

NUMBER_TYPES = ("Int", "Float", "Currency", "Percent", "Check", "Rating", "Duration")


def history(rule, since: datetime, now: datetime) -> tuple[list[tuple], list[str], bool]:
	"""([(time, Event, Document)] oldest first, what could not be rebuilt, whether it was cut)."""
	notes: list[str] = []
	if rule.event == METHOD:
		return [], ["Method events leave no record of which methods ran: nothing to replay"], False
	if rule.event in TIME_EVENTS:
		notes.append(
			f"{rule.event}: replayed from the documents' current {due.watched_field(rule)} and values"
		)
		events = _due_messages(rule, since, now)
	elif rule.event == NEW:
		events = _creations(rule, since, now)
	elif rule.event == DELETE:
		events = _deletions(rule, since, now)
	else:
		if not frappe.get_meta(rule.document_type).track_changes:
			notes.append(
				f"{rule.document_type} does not track changes (Track Changes is off in its DocType): "
				"saves leave no Version to replay"
			)
		events = _versions(rule, since, now)
	events.sort(key=lambda e: e[0])
	cut = len(events) > MAX_EVENTS
	if cut:
		notes.append(f"{len(events)} events in the period: only the latest {MAX_EVENTS} were replayed")
	return events[-MAX_EVENTS:], notes, cut


# ---------------------------------------------------------------- creations and deletions


def _creations(rule, since: datetime, now: datetime) -> list[tuple]:
	names = frappe.get_all(
		rule.document_type,
		filters=[["creation", ">", since], ["creation", "<=", now]],
		pluck="name",
		order_by="creation desc",
		limit_page_length=MAX_EVENTS + 1,
	)
	events = []
	for name in names:
		doc = frappe.get_doc(rule.document_type, name)
		state = doc.as_dict(convert_dates_to_str=False)
		for version in _versions_of(rule.document_type, name, doc.creation):
			state = undo(state, version.data, rule.document_type)
		event = Event(rule.document_type, name, NEW, state, None, doc.owner)
		events.append((doc.creation, event, _document(state, doc)))
	return events


def _deletions(rule, since: datetime, now: datetime) -> list[tuple]:
	rows = frappe.get_all(
		"Deleted Document",
		filters={"deleted_doctype": rule.document_type, "creation": ["between", [since, now]]},
		fields=["deleted_name", "data", "owner", "creation"],
		order_by="creation desc",
		limit_page_length=MAX_EVENTS + 1,
	)
	events = []
	for row in rows:
		state = json.loads(row.data)
		event = Event(rule.document_type, row.deleted_name, DELETE, state, None, row.owner)
		events.append((row.creation, event, _document(state)))
	return events


# ---------------------------------------------------------------- saves from Version records


def _versions(rule, since: datetime, now: datetime) -> list[tuple]:
	"""One event per Version of the period that raises the rule's event."""
	changed = frappe.get_all(
		"Version",
		filters={"ref_doctype": rule.document_type, "creation": ["between", [since, now]]},
		pluck="docname",
		distinct=True,
		limit_page_length=MAX_EVENTS + 1,
	)
	events = []
	for name in changed:
		current = _current_state(rule.document_type, name)
		if current is None:
			continue
		state = current
		for version in _versions_of(rule.document_type, name, since):
			before = undo(state, version.data, rule.document_type)
			label = _label(before, state, version.data)
			if label and (rule.event == label or (rule.event == VALUE_CHANGE and label != NEW)):
				event = Event(rule.document_type, name, rule.event, state, before, version.owner)
				events.append((version.creation, event, _document(state)))
			state = before
	return events


def _versions_of(doctype: str, name: str, after: datetime) -> list:
	"""The document's Version records after `after`, newest first, with their data parsed."""
	rows = frappe.get_all(
		"Version",
		filters={"ref_doctype": doctype, "docname": name, "creation": [">", after]},
		fields=["data", "owner", "creation"],
		order_by="creation desc",
	)
	for row in rows:
		row.data = json.loads(row.data or "{}")
	return [
		row
		for row in rows
		if row.data.get("changed")
		or row.data.get("added")
		or row.data.get("removed")
		or row.data.get("row_changed")
	]


def _current_state(doctype: str, name: str) -> dict | None:
	if frappe.db.exists(doctype, name):
		return frappe.get_doc(doctype, name).as_dict(convert_dates_to_str=False)
	deleted = frappe.db.get_value(
		"Deleted Document", {"deleted_doctype": doctype, "deleted_name": name}, "data"
	)
	return json.loads(deleted) if deleted else None


def _label(before: dict, after: dict, data: dict) -> str | None:
	"""The event a Version stands for, from the docstatus before and after it."""
	if any(change[0] == "name" for change in data.get("changed") or ()):
		return None  # a rename
	old, new = int(before.get("docstatus") or 0), int(after.get("docstatus") or 0)
	return {(0, 0): SAVE, (0, 1): SUBMIT, (1, 2): CANCEL, (1, 1): UPDATE_AFTER_SUBMIT}.get((old, new))


def undo(state: dict, data: dict, doctype: str) -> dict:
	"""The document as it was before the change one Version records."""
	before = deepcopy(state)
	meta = frappe.get_meta(doctype)
	for fieldname, old, _new in data.get("changed") or ():
		if fieldname in ("name", "docstatus"):
			before[fieldname] = old
		else:
			before[fieldname] = read_formatted(meta.get_field(fieldname), old)
	for table, row in data.get("added") or ():
		before[table] = [r for r in before.get(table) or [] if r.get("name") != row.get("name")]
	for table, row in data.get("removed") or ():
		rows = list(before.get(table) or [])
		rows.insert(max(int(row.get("idx") or 1) - 1, 0), row)
		before[table] = rows
	for table, _index, rowname, changes in data.get("row_changed") or ():
		child = _child_meta(meta, table)
		for row in before.get(table) or []:
			if row.get("name") == rowname:
				for fieldname, old, _new in changes:
					row[fieldname] = read_formatted(child.get_field(fieldname) if child else None, old)
	return before


def _child_meta(meta, table: str):
	df = meta.get_field(table)
	return frappe.get_meta(df.options) if df and df.options else None


def read_formatted(df, value):
	"""A value as a Version holds it (as the form showed it) read back as the field's type."""
	if value is None or value == "" or df is None or not isinstance(value, str):
		return value
	if df.fieldtype in NUMBER_TYPES:
		return _number(value)
	if df.fieldtype == "Date":
		return _moment(value, with_time=False)
	if df.fieldtype == "Datetime":
		return _moment(value, with_time=True)
	return value


def _number(text: str) -> float:
	decimal, group = _separators()
	digits = "".join(c for c in text if c.isdigit() or c in (decimal, group, "-"))
	return flt(digits.replace(group, "").replace(decimal, "."))


def _separators() -> tuple[str, str]:
	"""(decimal, group) separators of the site's number format, e.g. ('.', ',') for #,###.##."""
	number_format = frappe.db.get_default("number_format") or "#,###.##"
	decimal = "," if number_format in ("#.###,##", "# ###,##", "#'###,##") else "."
	group = {"#.###,##": ".", "# ###,##": " ", "#'###.##": "'", "#'###,##": "'", "#,###": ","}.get(
		number_format, "," if decimal == "." else "."
	)
	return decimal, group


def _moment(text: str, with_time: bool):
	"""A date (or datetime) written in the site's date format, as the form shows it."""
	date_format = (frappe.db.get_default("date_format") or "yyyy-mm-dd").replace("yyyy", "%Y")
	date_format = date_format.replace("dd", "%d").replace("mm", "%m")
	for pattern in (f"{date_format} %H:%M:%S", f"{date_format} %H:%M") if with_time else (date_format,):
		try:
			moment = datetime.strptime(text.strip(), pattern)
			return moment if with_time else moment.date()
		except ValueError:
			continue
	return get_datetime(text) if with_time else getdate(text)


# ---------------------------------------------------------------- time rules


def _due_messages(rule, since: datetime, now: datetime) -> list[tuple]:
	"""The messages the scheduler would have sent in (since, now], at their send times."""
	events = []
	for name, due_at in due_documents(rule, since, now)[: MAX_EVENTS + 1]:
		doc = frappe.get_doc(rule.document_type, name)
		state = doc.as_dict(convert_dates_to_str=False)
		event = Event(rule.document_type, name, rule.event, state, None, actor="")
		events.append((due.send_at(rule, due_at), event, doc))
	return events


def _document(state: dict, current=None):
	"""A Document of the state, for read-permission checks as of that state (or the current one)."""
	try:
		return frappe.get_doc(deepcopy(state))
	except Exception:
		return current


def period(days: int) -> tuple[datetime, datetime]:
	"""The last `days` days up to now, in the site's time zone."""
	now = now_datetime()
	return now - timedelta(days=days), now


def timed(events: list[tuple], context_for, stopped: list) -> Iterator[tuple]:
	"""(time, event, context) for each event until MAX_SECONDS have passed; the time of the
	first event left out goes into `stopped`."""
	stop_at = monotonic() + MAX_SECONDS
	for at, event, doc in events:
		if monotonic() > stop_at:
			stopped.append(at)
			return
		yield at, event, context_for(doc)
