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
#: Version records one backtest reads at most, newest first, looking for MAX_EVENTS events of the
#: rule's kind (a Submit rule on a DocType saved far more often than it is submitted).
MAX_VERSIONS = 20 * MAX_EVENTS
#: Version records read per query.
VERSION_PAGE = 500
#: Seconds a backtest may spend rebuilding and evaluating before it reports what it has: the
#: request that asks for it should answer well within a web worker's timeout.
MAX_SECONDS = 30

NUMBER_TYPES = ("Int", "Float", "Currency", "Percent", "Check", "Rating", "Duration")


def history(rule, since: datetime, now: datetime) -> tuple[list[tuple], list[str], dict | None]:
	"""([(time, Event, Document)] oldest first, what could not be rebuilt, the cut or None).

	At most MAX_EVENTS events, the latest of the period; when there were more, or when the
	Version records read stopped before the start of the period, the cut says how many were
	replayed and from when (`{"limit", "replayed", "from"}`)."""
	notes: list[str] = []
	looked_back_to = None
	if rule.event == METHOD:
		return [], ["Method events leave no record of which methods ran: nothing to replay"], None
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
		events, looked_back_to = _versions(rule, since, now)
	events.sort(key=lambda e: e[0])
	if len(events) > MAX_EVENTS:
		events = events[-MAX_EVENTS:]
		notes.append(
			f"More than {MAX_EVENTS} events in the period: only the latest {MAX_EVENTS} were replayed, "
			f"those from {events[0][0]:%Y-%m-%d %H:%M:%S} on"
		)
	elif looked_back_to is not None:
		notes.append(
			f"More than {MAX_VERSIONS} changes in the period: only those from "
			f"{looked_back_to:%Y-%m-%d %H:%M:%S} on were looked at"
		)
	else:
		return events, notes, None
	start = looked_back_to if looked_back_to is not None else events[0][0]
	return events, notes, {"limit": MAX_EVENTS, "replayed": len(events), "from": start}


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


def _versions(rule, since: datetime, now: datetime) -> tuple[list[tuple], datetime | None]:
	"""One event per Version of the period that raises the rule's event, the latest first, up to
	MAX_EVENTS + 1 (one more tells that the period was cut), however many documents changed; and
	the time the reading stopped at when MAX_VERSIONS records came first (else None).

	Each document is rebuilt backwards from its current state, one Version at a time, newest
	first: the state after a Version is the state before the next newer one."""
	events: list[tuple] = []
	after: dict[str, dict | None] = {}  # each document as it was after the Version read last
	for read, version in enumerate(_newest_versions(rule.document_type, since)):
		if read == MAX_VERSIONS:
			return events, version.creation
		name = version.docname
		if name not in after:
			after[name] = _current_state(rule.document_type, name)
		state = after[name]
		if state is None:
			continue
		before = after[name] = undo(state, version.data, rule.document_type)
		label = _label(before, state, version.data)
		if version.creation > now or not label:
			continue
		if rule.event == label or (rule.event == VALUE_CHANGE and label != NEW):
			event = Event(rule.document_type, name, rule.event, state, before, version.owner)
			events.append((version.creation, event, _document(state)))
			if len(events) > MAX_EVENTS:
				break
	return events, None


def _newest_versions(doctype: str, since: datetime) -> Iterator:
	"""The DocType's Version records after `since` that change something, newest first, read a
	page at a time (a record that a new one pushed onto the next page is not read twice)."""
	seen: set[str] = set()
	start = 0
	while True:
		rows = frappe.get_all(
			"Version",
			filters={"ref_doctype": doctype, "creation": [">", since]},
			fields=["name", "docname", "data", "owner", "creation"],
			order_by="creation desc, name desc",
			limit_start=start,
			limit_page_length=VERSION_PAGE,
		)
		for row in rows:
			if row.name in seen:
				continue
			seen.add(row.name)
			row.data = json.loads(row.data or "{}")
			if _changes_something(row.data):
				yield row
		if len(rows) < VERSION_PAGE:
			return
		start += VERSION_PAGE


def _changes_something(data: dict) -> bool:
	return bool(data.get("changed") or data.get("added") or data.get("removed") or data.get("row_changed"))


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
	return [row for row in rows if _changes_something(row.data)]


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
	# (oldest first: the latest MAX_EVENTS + 1)
	for name, due_at in due_documents(rule, since, now)[-(MAX_EVENTS + 1) :]:
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
