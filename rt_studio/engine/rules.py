"""Rules and channels read from fixture-shaped dicts, validated and compiled once.

A dict here is what `bench export-fixtures` writes for a Realtime Rule or a Realtime
Channel: the document's fields plus its child tables as lists of dicts. Compiling turns it
into an immutable object whose condition and templates are ready to run; every problem is
reported at once, naming the rule, the field and the fix.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rt_studio.engine.errors import Problem, RuleError
from rt_studio.engine.events import EVENTS, VALUE_CHANGE, normalize_event
from rt_studio.engine.sandbox import CompiledTemplate, SandboxError, compile_condition

RULE_DOCTYPE = "Realtime Rule"
CHANNEL_DOCTYPE = "Realtime Channel"

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
DEFAULT_EVENT_NAME = "rt_studio"
DEFAULT_CHANNEL_EVENT_NAME = "rt_studio_channel"

FIELDNAME = re.compile(r"^[a-z_][a-z0-9_]*$", re.IGNORECASE)
USER_FIELD_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$", re.IGNORECASE)
EVENT_NAME = re.compile(r"^[A-Za-z0-9_:.\-]{1,140}$")


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
	# DESIGN.md section 8: read here as given, each checked where its feature lives
	condition_type: str = "Python"
	filters: object = None
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


@dataclass(frozen=True, slots=True, eq=False)
class Channel:
	name: str
	enabled: bool
	description: str
	members: tuple[tuple[str, str], ...]
	reference_doctype: str
	reference_name: str
	publish_roles: tuple[str, ...]
	rate_limit_count: int
	rate_limit_seconds: int
	event_name: str


def _text(data: Mapping, key: str) -> str:
	value = data.get(key)
	return "" if value is None else str(value).strip()


def _flag(data: Mapping, key: str, default: bool) -> bool:
	value = data.get(key)
	if value is None or value == "":
		return default
	return str(value).strip().lower() not in ("0", "false", "no", "off")


def _int(data: Mapping, key: str, default: int, name: str, problems: list[Problem]) -> int:
	value = data.get(key)
	if value is None or value == "":
		return default
	try:
		number = int(value)
	except (TypeError, ValueError):
		problems.append(
			Problem(name, key, f"{value!r} is not a whole number: enter a number such as {default}")
		)
		return default
	if number < 0:
		problems.append(Problem(name, key, f"{number} is negative: enter 0 or more"))
		return default
	return number


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
	where = f"audience row {index}"
	kind = _text(row, "audience_type")
	if kind not in AUDIENCE_TYPES:
		problems.append(
			Problem(
				name,
				f"{where}: audience_type",
				f"{kind!r} is not an audience type: use one of {', '.join(AUDIENCE_TYPES)}",
			)
		)
		return None
	if kind in AUDIENCE_REQUIRES:
		field, fix = AUDIENCE_REQUIRES[kind]
		if not _text(row, field):
			problems.append(
				Problem(name, f"{where}: {field}", f"is required for audience type {kind}: {fix}")
			)
			return None
	user_field = _text(row, "user_field")
	if kind == USER_FIELD and not USER_FIELD_PATH.match(user_field):
		problems.append(
			Problem(
				name,
				f"{where}: user_field",
				f"{user_field!r} is not a fieldname: use fieldname or table_field.field",
			)
		)
		return None
	source = _text(row, "condition")
	condition = _condition(source, name, f"{where}: condition", problems)
	if source and condition is None:
		return None
	return AudienceRow(
		audience_type=kind,
		user_field=user_field,
		role=_text(row, "role"),
		user=_text(row, "user"),
		channel=_text(row, "channel"),
		condition=condition,
		condition_source=source,
	)


def parse_rule(data: Mapping) -> tuple[Rule | None, list[Problem]]:
	"""Validate and compile one rule dict; the rule is None when any problem was found."""
	problems: list[Problem] = []
	name = _text(data, "rule_name") or _text(data, "name")
	if not name:
		problems.append(Problem("", "rule_name", "is required: give the rule a unique name"))
	document_type = _text(data, "document_type")
	if not document_type:
		problems.append(
			Problem(name, "document_type", "is required: choose the DocType whose events trigger the rule")
		)
	raw_event = _text(data, "event")
	event = normalize_event(raw_event)
	if event not in EVENTS:
		problems.append(
			Problem(name, "event", f"{raw_event!r} is not an event: use one of {', '.join(EVENTS)}")
		)
	value_changed = _text(data, "value_changed")
	if event == VALUE_CHANGE:
		if not value_changed:
			problems.append(
				Problem(name, "value_changed", "is required for event Value Change: name the field to watch")
			)
		elif not FIELDNAME.match(value_changed):
			problems.append(Problem(name, "value_changed", f"{value_changed!r} is not a fieldname"))
	condition_source = _text(data, "condition")
	condition = _condition(condition_source, name, "condition", problems)

	rows = data.get("audience") or []
	if not isinstance(rows, list):
		problems.append(Problem(name, "audience", "must be a list of audience rows"))
		rows = []
	if not rows:
		problems.append(Problem(name, "audience", "is empty: add at least one row, for example Owner"))
	audience = tuple(
		r
		for i, row in enumerate(rows, 1)
		if (r := _audience_row(row if isinstance(row, Mapping) else {}, i, name, problems))
	)

	subject = _template(_text(data, "subject"), name, "subject", problems)
	message = _template(data.get("message") or "", name, "message", problems)
	fields = tuple(f.strip() for f in (_text(data, "fields")).replace("\n", ",").split(",") if f.strip())
	for field in fields:
		if not FIELDNAME.match(field):
			problems.append(
				Problem(name, "fields", f"{field!r} is not a fieldname: list fieldnames separated by commas")
			)
	display = _text(data, "display") or "Alert"
	if display not in DISPLAYS:
		problems.append(
			Problem(name, "display", f"{display!r} is not a display: use one of {', '.join(DISPLAYS)}")
		)
	indicator = _text(data, "indicator") or "blue"
	if indicator not in INDICATORS:
		problems.append(
			Problem(
				name, "indicator", f"{indicator!r} is not an indicator: use one of {', '.join(INDICATORS)}"
			)
		)
	event_name = _text(data, "event_name") or DEFAULT_EVENT_NAME
	if not EVENT_NAME.match(event_name):
		problems.append(
			Problem(
				name, "event_name", f"{event_name!r} is not a socket event name: use letters, digits and _"
			)
		)
	alert_seconds = _int(data, "alert_seconds", 5, name, problems)
	rate_count = _int(data, "rate_limit_count", 0, name, problems)
	rate_seconds = _int(data, "rate_limit_seconds", 60, name, problems)
	if rate_count and not rate_seconds:
		problems.append(
			Problem(name, "rate_limit_seconds", "must be more than 0 when rate_limit_count is set")
		)
	later = _section_8_fields(data, name, problems)
	if problems:
		return None, problems
	return Rule(
		name=name,
		enabled=_flag(data, "enabled", True),
		document_type=document_type,
		event=event,
		value_changed=value_changed,
		from_value=_text(data, "from_value"),
		to_value=_text(data, "to_value"),
		condition=condition,
		condition_source=condition_source,
		audience=audience,
		exclude_actor=_flag(data, "exclude_actor", True),
		subject=subject,
		message=message,
		fields=fields,
		display=display,
		indicator=indicator,
		alert_seconds=alert_seconds,
		event_name=event_name,
		rate_limit_count=rate_count,
		rate_limit_seconds=rate_seconds,
		version=_text(data, "modified"),
		**later,
	), []


def _section_8_fields(data: Mapping, name: str, problems: list[Problem]) -> dict:
	"""Condition type, time events, method, send window, critical and standard flags as given."""
	return {
		"condition_type": _text(data, "condition_type") or "Python",
		"filters": data.get("filters"),
		"date_changed": _text(data, "date_changed"),
		"days_in_advance": _int(data, "days_in_advance", 0, name, problems),
		"datetime_changed": _text(data, "datetime_changed"),
		"minutes_offset": _int(data, "minutes_offset", 0, name, problems),
		"method": _text(data, "method"),
		"send_after": _text(data, "send_after"),
		"send_before": _text(data, "send_before"),
		"send_days": _text(data, "send_days"),
		"critical": _flag(data, "critical", False),
		"is_standard": _flag(data, "is_standard", False),
		"module": _text(data, "module"),
	}


def compile_rule(data: Mapping) -> Rule:
	"""The compiled rule, or RuleError listing every problem."""
	rule, problems = parse_rule(data)
	if problems:
		raise RuleError(problems)
	return rule


def parse_channel(data: Mapping) -> tuple[Channel | None, list[Problem]]:
	"""Validate one channel dict; the channel is None when any problem was found."""
	problems: list[Problem] = []
	name = _text(data, "channel_name") or _text(data, "name")
	if not name:
		problems.append(Problem("", "channel_name", "is required: give the channel a unique name"))
	members = []
	rows = data.get("members") or []
	for i, row in enumerate(rows if isinstance(rows, list) else [], 1):
		row = row if isinstance(row, Mapping) else {}
		kind = _text(row, "member_type") or "User"
		field = {"User": "user", "Role": "role"}.get(kind)
		if not field:
			problems.append(Problem(name, f"members row {i}: member_type", f"{kind!r} is not User or Role"))
		elif not _text(row, field):
			problems.append(Problem(name, f"members row {i}: {field}", f"is required for member type {kind}"))
		else:
			members.append((kind, _text(row, field)))
	reference_doctype, reference_name = _text(data, "reference_doctype"), _text(data, "reference_name")
	if bool(reference_doctype) != bool(reference_name):
		problems.append(
			Problem(name, "reference_name", "set both reference_doctype and reference_name, or neither")
		)
	roles = data.get("publish_roles") or []
	publish_roles = tuple(
		_text(r, "role") if isinstance(r, Mapping) else str(r).strip()
		for r in (roles if isinstance(roles, list) else [])
	)
	event_name = _text(data, "event_name") or DEFAULT_CHANNEL_EVENT_NAME
	if not EVENT_NAME.match(event_name):
		problems.append(
			Problem(
				name, "event_name", f"{event_name!r} is not a socket event name: use letters, digits and _"
			)
		)
	rate_count = _int(data, "rate_limit_count", 0, name, problems)
	rate_seconds = _int(data, "rate_limit_seconds", 60, name, problems)
	if rate_count and not rate_seconds:
		problems.append(
			Problem(name, "rate_limit_seconds", "must be more than 0 when rate_limit_count is set")
		)
	if problems:
		return None, problems
	return Channel(
		name=name,
		enabled=_flag(data, "enabled", True),
		description=_text(data, "description"),
		members=tuple(members),
		reference_doctype=reference_doctype,
		reference_name=reference_name,
		publish_roles=tuple(r for r in publish_roles if r),
		rate_limit_count=rate_count,
		rate_limit_seconds=rate_seconds,
		event_name=event_name,
	), []
