"""Filters conditions: a rule's no-code condition, with the meaning Frappe's list view gives it.

A rule with `condition_type` Filters holds the list Frappe's filter editor writes:
`[[doctype, fieldname, operator, value], ...]`, every one of which must hold. Each filter
means here what it means in a list view of the same DocType, where it becomes SQL on
MariaDB (`frappe.model.db_query.prepare_filter_condition`):

- values are compared as the field's type: numbers as numbers, dates as dates, times as
  times, text without regard to case, accents or trailing spaces (MariaDB's
  `utf8mb4_unicode_ci`, which Frappe's tables use);
- an empty number is 0; empty text is ""; an empty date is earlier than any date for `<`,
  `<=` and `!=`, and matches neither `=`, `>`, `>=` nor `between`;
- `like` is SQL's: `%` any text, `_` one character, the whole value must match (no escapes:
  Frappe doubles backslashes, so a list view cannot escape `%` either);
- `is` is `set` (not empty) or `not set`; a number is never "not set" (its column is never
  NULL) and 0 is not "set" either;
- `between` takes two dates (a Datetime field includes the whole last day); `timespan`
  takes Frappe's names ("today", "this week", "last month" ...), counted from the clock;
- a filter on a child table's field holds when one row of that table meets every filter on
  that table; a document without such rows joins one missing row, as SQL's left join does
  (its numbers are NULL: only `is not set` and `not in` hold for them).

`rt_studio/tests/test_no_code.py` checks all of this on a site against `frappe.get_all`.

What only a site knows (each field's type, the first day of the week) comes from a `Meta`;
without one (offline) a field's type is read from the values themselves.
"""

import functools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from rt_studio.engine import budget
from rt_studio.engine.docview import as_text, moment_of

OPERATORS = ("=", "!=", ">", "<", ">=", "<=", "like", "not like", "in", "not in", "is", "between", "timespan")
#: Operators of Frappe's filter editor that need the database (tree walks): not for rules.
TREE_OPERATORS = (
	"descendants of",
	"descendants of (inclusive)",
	"not descendants of",
	"ancestors of",
	"not ancestors of",
)
TIMESPANS = (
	"last week",
	"last month",
	"last quarter",
	"last 6 months",
	"last year",
	"yesterday",
	"today",
	"tomorrow",
	"this week",
	"this month",
	"this quarter",
	"this year",
	"next week",
	"next month",
	"next quarter",
	"next 6 months",
	"next year",
)
#: Filters one rule may hold: far more than a person composes in the editor, few enough that
#: checking them costs nothing next to the rest of an evaluation.
MAX_FILTERS = 50
#: Values one `in` filter may list: a long pick list, and still a small set to look up.
MAX_IN_VALUES = 1000
#: Characters of one filter value (a `like` pattern, one listed value).
MAX_VALUE_LENGTH = 1000

NUMBER, DATE, DATETIME, TIME, TEXT = "number", "date", "datetime", "time", "text"
#: How Frappe stores each fieldtype, as far as comparing goes (others are text).
KIND_OF_FIELDTYPE = {
	"Int": NUMBER,
	"Check": NUMBER,
	"Float": NUMBER,
	"Currency": NUMBER,
	"Percent": NUMBER,
	"Rating": NUMBER,
	"Duration": NUMBER,
	"Date": DATE,
	"Datetime": DATETIME,
	"Time": TIME,
}
#: Fields every document has, with their kind.
STANDARD_KINDS = {"docstatus": NUMBER, "idx": NUMBER, "creation": DATETIME, "modified": DATETIME}
FIELDNAME = re.compile(r"^[a-z_][a-z0-9_]*$", re.IGNORECASE)


class FilterError(ValueError):
	"""A filter that cannot be read; the message says what to write instead."""


@dataclass(frozen=True, slots=True, eq=False)
class Filter:
	"""One filter: `doctype` is the rule's DocType or one of its child table DocTypes.

	Compared and hashed by identity (a rule's filters are parsed once): the checker keys its
	per-evaluation caches on them, once per child row.
	"""

	doctype: str
	fieldname: str
	operator: str
	value: object

	def label(self, document_type: str) -> str:
		"""As the list view's filter tag reads: `Items qty > 5`, `status = Open`."""
		field = self.fieldname if self.doctype == document_type else f"{self.doctype} {self.fieldname}"
		value = self.value
		if isinstance(value, tuple):
			value = ", ".join(as_text(v) for v in value)
		return f"{field} {self.operator} {as_text(value)}".rstrip()


# ---------------------------------------------------------------- reading


def parse_filters(raw, document_type: str) -> tuple[Filter, ...]:
	"""The filters of a rule from what the form, a fixture or the API holds.

	Accepts Frappe's shapes: a list of `[doctype, fieldname, operator, value]` (a fifth item,
	the editor's `hidden` flag, is ignored), `[fieldname, operator, value]`, or a dict
	`{fieldname: value}` / `{fieldname: [operator, value]}`, and any of them as JSON text.
	Raises FilterError naming the filter and the fix.
	"""
	items = _items(raw)
	if len(items) > MAX_FILTERS:
		raise FilterError(f"{len(items)} filters: keep it to {MAX_FILTERS} or fewer")
	return tuple(_filter(item, index, document_type) for index, item in enumerate(items, 1))


def _items(raw) -> list:
	if raw is None or raw == "":
		return []
	if isinstance(raw, str):
		try:
			raw = json.loads(raw)
		except ValueError as e:
			raise FilterError(f"not valid JSON ({e}): use the filter editor") from None
	if isinstance(raw, Mapping):
		return [
			[key, *(value if isinstance(value, list | tuple) else ["=", value])] for key, value in raw.items()
		]
	if not isinstance(raw, list | tuple):
		raise FilterError('must be a list of filters such as [["ToDo", "status", "=", "Open"]]')
	return list(raw)


def _filter(item, index: int, document_type: str) -> Filter:
	where = f"filter {index}"
	if not isinstance(item, list | tuple) or len(item) not in (3, 4, 5):
		raise FilterError(f"{where}: write it as [doctype, fieldname, operator, value]")
	doctype, fieldname, operator, value = ((document_type, *item) if len(item) == 3 else item)[:4]
	if not isinstance(fieldname, str) or not FIELDNAME.match(fieldname):
		raise FilterError(f"{where}: {fieldname!r} is not a fieldname")
	if doctype is not None and not isinstance(doctype, str):
		raise FilterError(f"{where}: {doctype!r} is not a DocType")
	operator = "=" if operator in (None, "") else str(operator).strip().lower()
	if operator in TREE_OPERATORS:
		raise FilterError(f"{where}: {operator!r} needs the database: list the names with 'in' instead")
	if operator not in OPERATORS:
		raise FilterError(f"{where}: {operator!r} is not an operator: use one of {', '.join(OPERATORS)}")
	return Filter(
		(doctype or "").strip() or document_type, fieldname, operator, _value(operator, value, where)
	)


def _value(operator: str, value, where: str):
	if operator in ("in", "not in"):
		values = value.split(",") if isinstance(value, str) else value
		if values is None:
			values = []
		if not isinstance(values, list | tuple):
			raise FilterError(f"{where}: {operator} takes a list, or values separated by commas")
		if len(values) > MAX_IN_VALUES:
			raise FilterError(f"{where}: {len(values)} values: keep it to {MAX_IN_VALUES} or fewer")
		return tuple(_scalar(v.strip() if isinstance(v, str) else v, where) for v in values)
	if operator == "is":
		text = str(value or "").strip().lower()
		if text not in ("set", "not set"):
			raise FilterError(f"{where}: is takes 'set' or 'not set', not {value!r}")
		return text
	if operator == "between":
		bounds = value.split(",") if isinstance(value, str) else value
		if not isinstance(bounds, list | tuple) or not 1 <= len(bounds) <= 2:
			raise FilterError(f"{where}: between takes two values [from, to]")
		return tuple(_scalar(b.strip() if isinstance(b, str) else b, where) for b in bounds)
	if operator == "timespan":
		text = str(value or "").strip().lower()
		if text not in TIMESPANS:
			raise FilterError(f"{where}: {value!r} is not a timespan: use one of {', '.join(TIMESPANS)}")
		return text
	return _scalar(value, where)


def _scalar(value, where: str):
	if value is None or isinstance(value, bool | int | float):
		return value
	if isinstance(value, str):
		if len(value) > MAX_VALUE_LENGTH:
			raise FilterError(f"{where}: the value is longer than {MAX_VALUE_LENGTH} characters")
		return value
	raise FilterError(f"{where}: {value!r} is not a value a filter compares with")


# ---------------------------------------------------------------- evaluating


@dataclass(frozen=True, slots=True)
class Failed:
	"""The first filter that does not hold, and why (for preview and the trace)."""

	index: int
	filter: Filter
	label: str
	reason: str

	def __str__(self) -> str:
		return f"filter {self.index} ({self.label}) failed: {self.reason}"


class OfflineMeta:
	"""No site: a field's type is read from its values, weeks start on Sunday (Frappe's default)."""

	first_day_of_week = 6

	def fieldtype(self, doctype: str, fieldname: str) -> str | None:
		return None


def failing_filter(
	filters: tuple[Filter, ...], doc: Mapping, document_type: str, today: date, meta=None
) -> Failed | None:
	"""None when every filter holds for the document; otherwise the first that does not."""
	checker = _Checker(today, meta or OfflineMeta())
	child_groups: dict[str, list[tuple[int, Filter]]] = {}
	for index, f in enumerate(filters, 1):
		if f.doctype != document_type:
			child_groups.setdefault(f.doctype, []).append((index, f))
		elif not checker.holds(f, doc.get(f.fieldname)):
			reason = f"{f.fieldname} is {_shown(doc.get(f.fieldname))}"
			return Failed(index, f, f.label(document_type), reason)
	for doctype, group in child_groups.items():
		rows = [row for row in _child_rows(doc) if row.get("doctype") == doctype] or [ABSENT_ROW]
		if any(_row_meets(checker, group, row) for row in rows):
			continue
		for index, f in group:
			if not any(_row_meets(checker, [(index, f)], row) for row in rows):
				return Failed(index, f, f.label(document_type), f"no {doctype} row has it")
		index, f = group[0]
		together = " and ".join(str(i) for i, _f in group)
		return Failed(index, f, f.label(document_type), f"no {doctype} row meets filters {together} at once")
	return None


#: The value of a field of a child row that does not exist: SQL's left join gives NULL there,
#: which a number column otherwise never holds (Frappe makes them NOT NULL, default 0).
ABSENT = object()
#: The one row a document without rows of a child table joins to.
ABSENT_ROW = {"doctype": None}


def _row_meets(checker: "_Checker", group: list[tuple[int, Filter]], row: Mapping) -> bool:
	budget.tick()  # a table may have thousands of rows: the rule's time budget holds
	if row is ABSENT_ROW:
		return all(checker.holds(f, ABSENT) for _i, f in group)
	return all(checker.holds(f, row.get(f.fieldname)) for _i, f in group)


def _child_rows(doc: Mapping):
	for value in doc.values():
		if isinstance(value, list | tuple):
			yield from (row for row in value if isinstance(row, Mapping))


def _shown(value) -> str:
	text = as_text(value)
	return repr(text[:60] + ("…" if len(text) > 60 else "")) if text else "empty"


class _Checker:
	"""Decides one filter against one value, as SQL would on MariaDB."""

	def __init__(self, today: date, meta):
		self.today = today
		self.meta = meta
		#: {(filter, kind): the listed values of an `in` filter, cast}: each row looks up a set.
		self._sets: dict[tuple[Filter, str], frozenset] = {}
		#: {(filter, kind): the filter's value read as that kind}: read once, not once per row.
		self._values: dict[tuple[Filter, str], object] = {}
		#: {filter: its field's kind, "" when only the values tell}: asked once per evaluation.
		self._kinds: dict[Filter, str] = {}

	def _wanted(self, f: Filter, kind: str):
		"""The filter's value as values of this kind compare with it (a datetime for dates)."""
		key = (f, kind)
		if key not in self._values:
			self._values[key] = moment_of(f.value) if kind in (DATE, DATETIME) else _cast(kind, f.value)
		return self._values[key]

	def _listed(self, f: Filter, kind: str) -> frozenset:
		"""The listed values cast; for numbers without "" (it matches only a missing row)."""
		key = (f, kind)
		if key not in self._sets:
			values = (v for v in f.value if kind != NUMBER or v not in (None, ""))
			self._sets[key] = frozenset(_cast(kind, v) for v in values)
		return self._sets[key]

	def holds(self, f: Filter, value) -> bool:
		if value is ABSENT:
			kind = self.kind(f, None)
			if kind == NUMBER:
				return _absent_number(f)
			value = None
		kind = self.kind(f, value)
		op = f.operator
		if op == "is":
			if kind == NUMBER and f.value == "not set":
				return value is None or value == ""  # never 0: SQL reads ifnull(qty, '') as text
			return _is_set(kind, value) == (f.value == "set")
		if op in ("like", "not like"):
			if value is None:
				return op == "not like" and not sql_like("", as_text(f.value))
			matched = sql_like(as_text(value), as_text(f.value))
			return matched if op == "like" else not matched
		if op in ("in", "not in"):
			found = _cast(kind, value) in self._listed(f, kind)
			return found if op == "in" else not found
		if op in ("between", "timespan"):
			return self._between(f, kind, value)
		return _compare(kind, op, value, self._wanted(f, kind))

	def kind(self, f: Filter, value) -> str:
		known = self._kinds.get(f)
		if known is None:
			fieldtype = self.meta.fieldtype(f.doctype, f.fieldname)
			if fieldtype:
				known = KIND_OF_FIELDTYPE.get(fieldtype, TEXT)
			else:
				known = STANDARD_KINDS.get(f.fieldname, "")
			self._kinds[f] = known  # "" when only the values can tell (offline)
		return known or _inferred_kind(value, f)

	def _between(self, f: Filter, kind: str, value) -> bool:
		if f.operator == "timespan":
			low, high = timespan_range(f.value, self.today, self.meta.first_day_of_week)
		else:
			low = f.value[0] if f.value and f.value[0] not in (None, "") else self.today
			high = f.value[1] if len(f.value) > 1 and f.value[1] not in (None, "") else self.today
		if kind in (NUMBER, TEXT) and f.operator == "between":
			mine, low, high = (_cast(kind, v) for v in (value, low, high))
			return _ordered(low, mine) and _ordered(mine, high)
		moment = moment_of(value)
		if moment is None:
			return False
		start, end = moment_of(low), moment_of(high)
		if start is None or end is None:
			return False
		if kind == DATE:
			return start.date() <= moment.date() <= end.date()
		if _is_date_only(high):
			end = end + timedelta(days=1) - timedelta(microseconds=1)
		return start <= moment <= end


def _absent_number(f: Filter) -> bool:
	"""A number filter on a child row that does not exist: NULL, or "" where Frappe adds ifnull."""
	if f.operator == "is":
		return f.value == "not set"
	if f.operator in ("in", "not in"):
		found = any(v in (None, "") for v in f.value)
		return found if f.operator == "in" else not found
	if f.operator == "not like":
		return not sql_like("", as_text(f.value))
	return False


def _inferred_kind(value, f: Filter) -> str:
	"""A field's kind read from its value and the filter's, when no site tells its fieldtype.

	Offline documents are JSON: dates are ISO text there, compared as dates only where order
	matters (`<`, `between` ...) and both sides read as dates.
	"""
	for probe in (value, _first(f.value)):
		if isinstance(probe, bool | int | float | Decimal):
			return NUMBER
		if isinstance(probe, datetime):
			return DATETIME
		if isinstance(probe, date):
			return DATE
		if isinstance(probe, time | timedelta):
			return TIME
	ordered = f.operator in ("between", "timespan", ">", "<", ">=", "<=")
	if ordered and isinstance(value, str) and moment_of(value) is not None:
		wanted = f.value if isinstance(f.value, tuple) else (f.value,)
		if f.operator == "timespan" or all(v in (None, "") or moment_of(v) is not None for v in wanted):
			return DATE if _is_date_only(value) else DATETIME
	return TEXT


def _first(value):
	return value[0] if isinstance(value, tuple) and value else value


def _is_set(kind: str, value) -> bool:
	if value is None or (isinstance(value, str) and not value.strip()):
		return False
	if kind == NUMBER:
		return _number(value) != 0
	return True


def _compare(kind: str, op: str, value, other) -> bool:
	"""`value op other`, `other` being the filter's value already read as `_wanted` reads it."""
	if kind in (DATE, DATETIME):
		mine = moment_of(value)
		if other is None:
			return False
		if mine is None:
			# SQL: ifnull(date, '0001-01-01') for <, <= and !=; a NULL never equals or exceeds
			return op in ("<", "<=", "!=")
		if kind == DATE:
			mine, other = mine.date(), other.date()
	else:
		mine = _cast(kind, value)
	if op == "=":
		return mine == other
	if op == "!=":
		return mine != other
	if op in (">", ">="):
		return _ordered(other, mine) and (op == ">=" or mine != other)
	return _ordered(mine, other) and (op == "<=" or mine != other)


def _ordered(low, high) -> bool:
	"""low <= high for values of one kind (None, an empty date, sorts first)."""
	if low is None:
		return True
	if high is None:
		return False
	try:
		return low <= high
	except TypeError:
		return str(low) <= str(high)


def _cast(kind: str, value):
	"""A value as SQL compares it for a column of this kind (NULL as ifnull's fallback)."""
	if kind == NUMBER:
		return _number(value)
	if kind in (DATE, DATETIME):
		moment = moment_of(value)
		if moment is None:
			return None
		return moment.date() if kind == DATE else moment
	if kind == TIME:
		return _seconds(value)
	return _text(value)


def _text(value) -> str:
	"""Text as MariaDB's utf8mb4_unicode_ci compares it: no case, no accents, no trailing spaces."""
	return folded(as_text(value).rstrip(" "))


def folded(text: str) -> str:
	"""Without case and accents (`Émile` is `emile`), as the collation compares characters."""
	if not text.isascii():
		decomposed = unicodedata.normalize("NFKD", text)
		text = "".join(char for char in decomposed if not unicodedata.combining(char))
	return text.casefold()


def _number(value) -> float:
	if value is None or value == "":
		return 0.0
	if isinstance(value, bool):
		return float(value)
	if isinstance(value, int | float | Decimal):
		return float(value)
	text = str(value).strip().replace(",", "")
	if text.lower() in ("yes", "true"):
		return 1.0
	try:
		return float(Decimal(text))
	except (InvalidOperation, ValueError):
		return 0.0  # SQL reads text that is no number as 0


def _seconds(value) -> float:
	if isinstance(value, timedelta):
		return value.total_seconds()
	if isinstance(value, time):
		return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
	if isinstance(value, datetime):
		return _seconds(value.time())
	try:
		return _seconds(time.fromisoformat(str(value).strip()))
	except ValueError:
		return 0.0


def _is_date_only(value) -> bool:
	if isinstance(value, datetime):
		return False
	if isinstance(value, date):
		return True
	return isinstance(value, str) and len(value.strip()) == 10


def sql_like(text: str, pattern: str) -> bool:
	"""SQL LIKE without regard to case or accents: `%` any text, `_` one character.

	Matched piece by piece between the `%`s, leftmost first (which is exact for LIKE), so a
	pattern like `%a%a%a%b` costs a few scans of the text, never an exponential search.
	"""
	pieces = _like_pieces(folded(pattern))
	text = folded(text)
	if len(pieces) == 1:
		return _piece_at(text, 0, pieces[0]) and len(text) == len(pieces[0])
	first, *middle, last = pieces
	if not _piece_at(text, 0, first):
		return False
	position = len(first)
	for piece in middle:
		found = _find_piece(text, piece, position)
		if found < 0:
			return False
		position = found + len(piece)
	return len(text) - len(last) >= position and _piece_at(text, len(text) - len(last), last)


@functools.lru_cache(maxsize=256)  # a rule's few patterns, split once and not once per row
def _like_pieces(pattern: str) -> tuple:
	"""The pattern split at each `%`; each piece a list of characters (None for `_`).

	No escapes: Frappe doubles every backslash of a filter value before MariaDB sees it, so a
	list view cannot escape `%` or `_` either, and a backslash is an ordinary character.
	"""
	pieces: list[list[str | None]] = [[]]
	for char in pattern:
		if char == "%":
			pieces.append([])
		else:
			pieces[-1].append(None if char == "_" else char)
	return tuple(pieces)


def _piece_at(text: str, start: int, piece: list) -> bool:
	if start < 0 or start + len(piece) > len(text):
		return False
	return all(c is None or text[start + i] == c for i, c in enumerate(piece))


def _find_piece(text: str, piece: list, start: int) -> int:
	if None not in piece:
		return text.find("".join(piece), start)
	literal = max((run for run in "".join(c or "\0" for c in piece).split("\0")), key=len)
	if not literal:
		return start if start + len(piece) <= len(text) else -1
	offset = "".join(c or "\0" for c in piece).index(literal)
	found = text.find(literal, start + offset)
	while found >= 0:
		if _piece_at(text, found - offset, piece):
			return found - offset
		found = text.find(literal, found + 1)
	return -1


# ---------------------------------------------------------------- timespans


def timespan_range(timespan: str, today: date, first_day_of_week: int = 6) -> tuple[date, date]:
	"""The dates a timespan covers, as Frappe's `get_timespan_date_range` counts them.

	`first_day_of_week` is 0 for Monday ... 6 for Sunday (System Settings; Sunday by default).
	"""
	if timespan in ("yesterday", "today", "tomorrow"):
		day = today + timedelta(days={"yesterday": -1, "today": 0, "tomorrow": 1}[timespan])
		return day, day
	when, _space, unit = timespan.partition(" ")
	step = {"last": -1, "this": 0, "next": 1}[when]
	if unit == "week":
		start = _week_start(today + timedelta(days=7 * step), first_day_of_week)
		return start, start + timedelta(days=6)
	if unit == "month":
		start = _month_start(today, step)
		return start, _month_start(start, 1) - timedelta(days=1)
	if unit == "quarter":
		start = _month_start(_quarter_start(today), 3 * step)
		return start, _month_start(start, 3) - timedelta(days=1)
	if unit == "6 months":
		# as Frappe: from the start of the quarter 6 months back to the end of the last quarter
		if step < 0:
			start = _month_start(_quarter_start(today), -6)
			return start, _quarter_start(today) - timedelta(days=1)
		start = _month_start(_quarter_start(today), 3)
		return start, _month_start(start, 6) - timedelta(days=1)
	return date(today.year + step, 1, 1), date(today.year + step, 12, 31)


def _week_start(day: date, first_day_of_week: int) -> date:
	return day - timedelta(days=(day.weekday() - first_day_of_week) % 7)


def _month_start(day: date, months: int) -> date:
	total = day.year * 12 + day.month - 1 + months
	return date(total // 12, total % 12 + 1, 1)


def _quarter_start(day: date) -> date:
	return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
