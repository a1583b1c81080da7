"""Rules and channels read from fixture-shaped dicts, validated and compiled once.

A dict here is what `bench export-fixtures` writes for a Realtime Rule or a Realtime
Channel: the document's fields plus its child tables as lists of dicts. Compiling turns it
into an immutable object whose condition and templates are ready to run; every problem is
reported at once, naming the rule, the field and the fix.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rt_studio.engine import due
from rt_studio.engine.errors import Problem, RuleError
from rt_studio.engine.events import (
	DAY_EVENTS,
	EVENTS,
	METHOD,
	MINUTE_EVENTS,
	NAMELESS_METHODS,
	TIME_EVENTS,
	VALUE_CHANGE,
	normalize_event,
)
from rt_studio.engine.fields import FieldReader
from rt_studio.engine.filters import FilterError, parse_filters
from rt_studio.engine.interfaces import Channel
from rt_studio.engine.sandbox import SandboxError, compile_condition
from rt_studio.engine.templates import CompiledTemplate

RULE_DOCTYPE = "Realtime Rule"
CHANNEL_DOCTYPE = "Realtime Channel"

#: Fields of a Realtime Rule that record what happened to it, not what it says: they change
#: no version of the rule and travel in no export.
RUNTIME_FIELDS = ("last_error", "last_error_on")

OWNER, ACTOR, ASSIGNEES, FOLLOWERS = "Owner", "Actor", "Assignees", "Followers"
USER_FIELD, ROLE, USER, CHANNEL = "User Field", "Role", "User", "Channel"
DOCUMENT_VIEWERS, EVERYONE = "Document Viewers", "Everyone"

#: Audience types, in the order the form offers them.
AUDIENCE_TYPES = (
	OWNER,
	ACTOR,
	ASSIGNEES,
	FOLLOWERS,
	USER_FIELD,
	ROLE,
	USER,
	CHANNEL,
	DOCUMENT_VIEWERS,
	EVERYONE,
)

#: The field an audience row needs for its type, and what to tell an author who left it empty.
AUDIENCE_REQUIRES = {
	USER_FIELD: ("user_field", "name the field that holds the user, or table_field.field for child rows"),
	ROLE: ("role", "choose the role whose users receive it"),
	USER: ("user", "choose the user who receives it"),
	CHANNEL: ("channel", "choose the Realtime Channel whose members receive it"),
}

DISPLAYS = (
	"Alert",
	"Sticky",
	"Notification Log",
	"Refresh Form",
	"Refresh List",
	"Refresh Dashboard",
	"Custom",
)
INDICATORS = ("blue", "green", "orange", "red", "gray")
#: Condition types: a Python expression, or filters as a list view has them (no code).
PYTHON, FILTERS = "Python", "Filters"
CONDITION_TYPES = (PYTHON, FILTERS)
DEFAULT_EVENT_NAME = "rt_studio"
#: Displays that are signals for the desk or for custom code, not something a person reads: their
#: messages are not kept in the inbox and never escalate.
SIGNAL_DISPLAYS = ("Refresh Form", "Refresh List", "Refresh Dashboard", "Custom")
#: The longest wait before an unread message is emailed: a week; a longer wait is not an escalation.
MAX_ESCALATION_MINUTES = 7 * 24 * 60
DEFAULT_CHANNEL_EVENT_NAME = "rt_studio_channel"

#: A field a rule may name: never a private column (`_assign`, `_comments` ...).
FIELDNAME = re.compile(r"^[a-z][a-z0-9_]*$", re.IGNORECASE)
USER_FIELD_PATH = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$", re.IGNORECASE)
EVENT_NAME = re.compile(r"^[A-Za-z0-9_:.\-]{1,140}$")

#: Socket events Frappe's desk and socket.io itself act on (read in Frappe v15's desk code,
#: frappe/public/js, and its realtime server; eval_js from later versions): a rule or channel
#: publishing under one of these names would drive the desk, e.g. show raw HTML in a msgprint.
FRAPPE_SOCKET_EVENTS = frozenset(
	{
		"msgprint", "eval_js", "progress", "list_update", "doc_update", "docinfo_update",
		"doc_viewers", "notification", "energy_point_alert", "indicator_hide", "version-update",
		"build_event", "report_generated", "task_progress", "task_status_change", "setup_task",
		"data_import_progress", "data_import_refresh", "delete_message", "new_message",
		"update_message", "publish_message", "global_search_settings", "import_google_calendar",
		"import_google_contacts", "upload_to_google_drive", "recorder-analysis-complete",
		"update_user_permissions", "doctype_subscribe", "doctype_unsubscribe", "doc_subscribe",
		"doc_unsubscribe", "doc_open", "doc_close", "task_subscribe", "task_unsubscribe",
		"progress_subscribe", "open_in_editor", "ping", "pong", "connect", "connect_error",
		"disconnect", "disconnecting", "error", "message", "newListener", "removeListener",
	}
)  # fmt: skip
#: Prefixes of Frappe's per-task event names (`task_complete:<id>`).
FRAPPE_SOCKET_EVENT_PREFIXES = ("task_complete:", "task_")


@dataclass(frozen=True, slots=True)
class AudienceRow:
	audience_type: str
	user_field: str = ""
	role: str = ""
	user: str = ""
	channel: str = ""
	condition: object = None
	condition_source: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
	name: str
	enabled: bool
	document_type: str
	event: str
	value_changed: str
	from_value: str
	to_value: str
	condition: object
	condition_source: str
	audience: tuple[AudienceRow, ...]
	exclude_actor: bool
	subject: CompiledTemplate | None
	message: CompiledTemplate | None
	fields: tuple[str, ...]
	display: str
	indicator: str
	alert_seconds: int
	event_name: str
	rate_limit_count: int
	rate_limit_seconds: int
	version: str = ""
	condition_type: str = PYTHON
	#: With condition_type Filters: the parsed filters (`engine.filters.Filter`), all must hold.
	filters: tuple = ()
	date_changed: str = ""
	days_in_advance: int = 0
	datetime_changed: str = ""
	minutes_offset: int = 0
	method: str = ""
	send_after: str = ""
	send_before: str = ""
	send_days: str = ""
	critical: bool = False
	is_standard: bool = False
	module: str = ""
	#: For time events: when messages may go out (`engine.due.SendWindow`), None = any time.
	#: For a rule that escalates: when its emails may go out.
	send_window: object = None
	#: Minutes after which a message still unread in the inbox is emailed (0 = never).
	escalate_after_minutes: int = 0
	#: Also show a browser (system) notification while the desk tab is hidden.
	browser_notification: bool = False


def _lax_text(data: Mapping, key: str) -> str:
	"""A field read as text whatever its type (a Time column arrives as a timedelta)."""
	value = data.get(key)
	return "" if value is None else str(value).strip()


def event_name_problem(event_name: str) -> str | None:
	"""Why `event_name` cannot carry RT Studio messages, or None when it can."""
	if not EVENT_NAME.match(event_name):
		return f"{event_name!r} is not a socket event name: use letters, digits and _"
	if event_name in FRAPPE_SOCKET_EVENTS or event_name.startswith(FRAPPE_SOCKET_EVENT_PREFIXES):
		return f"{event_name!r} is one of Frappe's own socket events: choose another name, e.g. rt_studio"
	return None


def _condition(source: str, name: str, field: str, problems: list[Problem]):
	if not source:
		return None
	try:
		return compile_condition(source)
	except SandboxError as e:
		problems.append(Problem(name, field, f"{e}: write a Python expression such as doc.status == 'Open'"))
		return None


def _template(source: str, name: str, field: str, problems: list[Problem]) -> CompiledTemplate | None:
	if not source:
		return None
	try:
		return CompiledTemplate(source)
	except SandboxError as e:
		problems.append(Problem(name, field, f"{e}: check the {{{{ }}}} and {{% %}} tags"))
		return None


def _audience_row(row: Mapping, index: int, name: str, problems: list[Problem]) -> AudienceRow | None:
	where = f"audience row {index}: "
	read = FieldReader(row, name, problems, where)
	kind = read.text("audience_type")
	if kind not in AUDIENCE_TYPES:
		read.problem(
			"audience_type", f"{kind!r} is not an audience type: use one of {', '.join(AUDIENCE_TYPES)}"
		)
		return None
	values = {key: read.text(key) for key in ("user_field", "role", "user", "channel")}
	if kind in AUDIENCE_REQUIRES:
		field, fix = AUDIENCE_REQUIRES[kind]
		if not values[field]:
			read.problem(field, f"is required for audience type {kind}: {fix}")
			return None
	if kind == USER_FIELD and not USER_FIELD_PATH.match(values["user_field"]):
		read.problem(
			"user_field", f"{values['user_field']!r} is not a fieldname: use fieldname or table_field.field"
		)
		return None
	source = read.text("condition")
	condition = _condition(source, name, f"{where}condition", problems)
	if source and condition is None:
		return None
	return AudienceRow(audience_type=kind, condition=condition, condition_source=source, **values)


def _rule_name(read: FieldReader) -> str:
	name = read.text("rule_name") or read.text("name")
	if not name:
		read.problem("rule_name", "is required: give the rule a unique name")
	read.name = name
	return name


def _trigger(read: FieldReader) -> dict:
	"""The DocType, the event and, for Value Change, the watched field and transition."""
	document_type = read.text("document_type")
	if not document_type:
		read.problem("document_type", "is required: choose the DocType whose events trigger the rule")
	raw_event = read.text("event")
	event = normalize_event(raw_event)
	if event not in EVENTS:
		read.problem("event", f"{raw_event!r} is not an event: use one of {', '.join(EVENTS)}")
	value_changed = read.text("value_changed")
	if event == VALUE_CHANGE:
		if not value_changed:
			read.problem("value_changed", "is required for event Value Change: name the field to watch")
		elif not USER_FIELD_PATH.match(value_changed):
			read.problem(
				"value_changed", f"{value_changed!r} is not a fieldname: use fieldname or table_field.field"
			)
	return {
		"document_type": document_type,
		"event": event,
		"value_changed": value_changed,
		"from_value": read.text("from_value", scalar=True),
		"to_value": read.text("to_value", scalar=True),
	}


def _audience(read: FieldReader) -> tuple[AudienceRow, ...]:
	before = len(read.problems)
	audience = tuple(
		row
		for index, data in read.rows("audience", "audience")
		if (row := _audience_row(data, index, read.name, read.problems))
	)
	if not audience and len(read.problems) == before:
		read.problem("audience", "is empty: add at least one row, for example Owner")
	return audience


def _texts(read: FieldReader) -> dict:
	"""Subject, message and the payload fields."""
	fields = tuple(f.strip() for f in read.text("fields").replace("\n", ",").split(",") if f.strip())
	for field in fields:
		if not FIELDNAME.match(field):
			read.problem("fields", f"{field!r} is not a fieldname: list fieldnames separated by commas")
	return {
		"subject": _template(read.text("subject"), read.name, "subject", read.problems),
		"message": _template(read.text("message"), read.name, "message", read.problems),
		"fields": fields,
	}


def _choice(read: FieldReader, key: str, choices: tuple[str, ...], default: str, what: str) -> str:
	value = read.text(key) or default
	if value not in choices:
		read.problem(key, f"{value!r} is not {what}: use one of {', '.join(choices)}")
	return value


def _delivery(read: FieldReader, default_event_name: str) -> dict:
	"""The socket event name and the rate limit (rules and channels alike)."""
	event_name = read.text("event_name") or default_event_name
	why_not = event_name_problem(event_name)
	if why_not:
		read.problem("event_name", why_not)
	rate_count = read.number("rate_limit_count", 0)
	rate_seconds = read.number("rate_limit_seconds", 60)
	if rate_count and not rate_seconds:
		read.problem("rate_limit_seconds", "must be more than 0 when rate_limit_count is set")
	return {"event_name": event_name, "rate_limit_count": rate_count, "rate_limit_seconds": rate_seconds}


def parse_rule(data: Mapping) -> tuple[Rule | None, list[Problem]]:
	"""Validate and compile one rule dict; the rule is None when any problem was found."""
	problems: list[Problem] = []
	read = FieldReader(data, "", problems)
	name = _rule_name(read)
	trigger = _trigger(read)
	inbox = _inbox(read)
	rule = {
		"name": name,
		"enabled": read.flag("enabled", True),
		**trigger,
		**_condition_fields(read, trigger["document_type"]),
		"audience": _audience(read),
		"exclude_actor": read.flag("exclude_actor", True),
		**_texts(read),
		"display": _choice(read, "display", DISPLAYS, "Alert", "a display"),
		"indicator": _choice(read, "indicator", INDICATORS, "blue", "an indicator"),
		"alert_seconds": read.number("alert_seconds", 5),
		**_delivery(read, DEFAULT_EVENT_NAME),
		"version": _lax_text(data, "modified"),
		**_time_fields(read, trigger["event"]),
		"method": _method(read, trigger["event"]),
		**_send_window(read, trigger["event"], escalates=inbox["escalate_after_minutes"] > 0),
		**inbox,
		"critical": read.flag("critical", False),
		"is_standard": read.flag("is_standard", False),
		"module": _lax_text(read.data, "module"),
	}
	if problems:
		return None, problems
	return Rule(**rule), []


def _condition_fields(read: FieldReader, document_type: str) -> dict:
	"""The condition of either type: the other type's field is kept by the form but not used."""
	condition_type = read.text("condition_type") or PYTHON
	fields = {"condition_type": condition_type, "condition": None, "condition_source": "", "filters": ()}
	if condition_type == PYTHON:
		source = read.text("condition")
		fields.update(
			condition=_condition(source, read.name, "condition", read.problems), condition_source=source
		)
	elif condition_type == FILTERS:
		try:
			fields["filters"] = parse_filters(read.data.get("filters"), document_type)
		except FilterError as e:
			read.problem("filters", str(e))
	else:
		read.problem(
			"condition_type",
			f"{condition_type!r} is not a condition type: use {' or '.join(CONDITION_TYPES)}",
		)
	return fields


def _time_fields(read: FieldReader, event: str | None) -> dict:
	"""The date field and days of Days Before/After, the datetime field and minutes of Minutes ..."""
	fields = {
		"date_changed": _lax_text(read.data, "date_changed"),
		"days_in_advance": read.number("days_in_advance", 0),
		"datetime_changed": _lax_text(read.data, "datetime_changed"),
		"minutes_offset": read.number("minutes_offset", 0),
	}
	for events, field, count, limit, kind in (
		(DAY_EVENTS, "date_changed", "days_in_advance", due.MAX_DAYS, "Date"),
		(MINUTE_EVENTS, "datetime_changed", "minutes_offset", due.MAX_MINUTES, "Datetime"),
	):
		if event not in events:
			continue
		if not fields[field]:
			read.problem(field, f"is required for event {event}: choose the {kind} field to count from")
		elif not FIELDNAME.match(fields[field]):
			read.problem(field, f"{fields[field]!r} is not a fieldname")
		if fields[count] > limit:
			read.problem(count, f"{fields[count]} is more than {limit}: enter {limit} or less")
	return fields


def _method(read: FieldReader, event: str | None) -> str:
	method = _lax_text(read.data, "method")
	if event != METHOD:
		return method
	if not method:
		read.problem("method", "is required for event Method: name the document method, such as validate")
	elif not FIELDNAME.match(method):
		read.problem("method", f"{method!r} is not a method name, such as on_update")
	elif method in NAMELESS_METHODS:
		read.problem(
			"method",
			f"{method} runs before the document has a name: choose validate, after_insert or a later method",
		)
	return method


def _inbox(read: FieldReader) -> dict:
	"""The email escalation of unread messages and the browser notification."""
	minutes = read.number("escalate_after_minutes", 0)
	if minutes > MAX_ESCALATION_MINUTES:
		read.problem(
			"escalate_after_minutes",
			f"{minutes} minutes is more than a week: enter at most {MAX_ESCALATION_MINUTES}, or 0 for never",
		)
	elif minutes and _lax_text(read.data, "display") in SIGNAL_DISPLAYS:
		read.problem(
			"escalate_after_minutes",
			f"display {_lax_text(read.data, 'display')!r} sends a signal, not a message to read: "
			"choose Alert, Sticky or Notification Log, or set 0",
		)
	return {
		"escalate_after_minutes": minutes,
		"browser_notification": read.flag("browser_notification", False),
	}


def _send_window(read: FieldReader, event: str | None, escalates: bool) -> dict:
	"""The send window of a time rule and of an escalating rule's emails (other rules send at once:
	their window is not used)."""
	texts = {field: _lax_text(read.data, field) for field in ("send_after", "send_before", "send_days")}
	window = None
	if (event in TIME_EVENTS or escalates) and any(texts.values()):
		try:
			window = due.send_window(texts["send_after"], texts["send_before"], texts["send_days"])
		except ValueError as e:
			field, _colon, problem = str(e).partition(": ")
			read.problem(field, problem)
	return {**texts, "send_window": window}


def compile_rule(data: Mapping) -> Rule:
	"""The compiled rule, or RuleError listing every problem."""
	rule, problems = parse_rule(data)
	if problems:
		raise RuleError(problems)
	return rule


def _members(read: FieldReader) -> tuple[tuple[str, str], ...]:
	members = []
	for index, row in read.rows("members", "member"):
		member = FieldReader(row, read.name, read.problems, f"members row {index}: ")
		kind = member.text("member_type") or "User"
		field = {"User": "user", "Role": "role"}.get(kind)
		if not field:
			member.problem("member_type", f"{kind!r} is not User or Role")
		elif not member.text(field):
			member.problem(field, f"is required for member type {kind}")
		else:
			members.append((kind, member.text(field)))
	return tuple(members)


def _publish_roles(read: FieldReader) -> tuple[str, ...]:
	"""Roles as Table MultiSelect rows ({"role": ...}) or, hand-written, as a list of names."""
	value = read.data.get("publish_roles")
	if isinstance(value, list) and all(isinstance(role, str) for role in value):
		return tuple(role.strip() for role in value if role.strip())
	roles = []
	for index, row in read.rows("publish_roles", "publish role"):
		role = FieldReader(row, read.name, read.problems, f"publish_roles row {index}: ").text("role")
		if role:
			roles.append(role)
	return tuple(roles)


def parse_channel(data: Mapping) -> tuple[Channel | None, list[Problem]]:
	"""Validate one channel dict; the channel is None when any problem was found."""
	problems: list[Problem] = []
	read = FieldReader(data, "", problems)
	read.name = name = read.text("channel_name") or read.text("name")
	if not name:
		read.problem("channel_name", "is required: give the channel a unique name")
	members = _members(read)
	reference_doctype, reference_name = read.text("reference_doctype"), read.text("reference_name")
	if bool(reference_doctype) != bool(reference_name):
		read.problem("reference_name", "set both reference_doctype and reference_name, or neither")
	channel = {
		"name": name,
		"enabled": read.flag("enabled", True),
		"description": read.text("description"),
		"members": members,
		"reference_doctype": reference_doctype,
		"reference_name": reference_name,
		"publish_roles": _publish_roles(read),
		**_delivery(read, DEFAULT_CHANNEL_EVENT_NAME),
	}
	if problems:
		return None, problems
	return Channel(**channel), []
