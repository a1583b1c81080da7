"""Value Change transitions: a rule's From Value and To Value compared with the field's type.

An author types `10` for a Currency field that holds 10.0, `true` for a Check that holds 1,
`2024-05-31` for a Date: each is read as the kind of value the field holds (a number, a
date, a time ...), so equal values match however they are written. The type comes from the
value itself, as the site's document (`as_dict`) or the offline JSON gives it: numbers and
booleans compare as numbers, dates and datetimes as such, text as text (a date written in a
text field of an offline document is read as a date too).

`(empty)` stands for no value: From Value `(empty)` fires when the field was empty before,
To Value `(empty)` when it was cleared. A From or To Value left blank means any value.
"""

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

#: What an author writes for "no value" in From Value or To Value.
EMPTY = "(empty)"

#: Words read as a Check's value.
TRUE_WORDS = frozenset({"true", "yes", "on"})
FALSE_WORDS = frozenset({"false", "no", "off"})


def is_empty(value) -> bool:
	"""No value: None, or text that is blank."""
	return value is None or (isinstance(value, str) and not value.strip())


def matches(written: str, value) -> bool:
	"""Whether a field's `value` is the one `written` in From Value or To Value."""
	written = written.strip()
	if written.lower() == EMPTY:
		return is_empty(value)
	if is_empty(value):
		return False
	if isinstance(value, bool | int | float | Decimal):
		number = _number(written)
		return number is not None and _decimal(value) == number
	if isinstance(value, datetime):
		return _datetime(written) == value.replace(tzinfo=None)
	if isinstance(value, date):
		return _date(written) == value
	if isinstance(value, timedelta | time):
		return _time(written) == _time(value)
	text = str(value).strip()
	if text == written:
		return True
	moment = _datetime(text)
	return moment is not None and moment == _datetime(written)


def _decimal(value) -> Decimal | None:
	if isinstance(value, bool):
		return Decimal(int(value))
	if isinstance(value, float) and not math.isfinite(value):
		return None
	return Decimal(str(value))


def _number(written: str) -> Decimal | None:
	word = written.lower()
	if word in TRUE_WORDS:
		return Decimal(1)
	if word in FALSE_WORDS:
		return Decimal(0)
	try:
		number = Decimal(written.replace(",", ""))
	except InvalidOperation:
		return None
	return number if number.is_finite() else None


def _datetime(written: str) -> datetime | None:
	"""An ISO date or date and time (`2024-05-31`, `2024-05-31 14:30`), as a naive datetime."""
	try:
		moment = datetime.fromisoformat(written.strip())
	except ValueError:
		return None
	return moment.replace(tzinfo=None)


def _date(written: str) -> date | None:
	moment = _datetime(written)
	return moment.date() if moment is not None and moment.time() == time() else None


def _time(value) -> timedelta | None:
	"""A time of day as the time since midnight (Frappe gives Time fields as timedelta)."""
	if isinstance(value, timedelta):
		return value
	if isinstance(value, time):
		return timedelta(
			hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
		)
	try:
		return _time(time.fromisoformat(str(value).strip()))
	except ValueError:
		return None


#: Frappe field types whose values compare as numbers, dates, datetimes and times.
NUMBER_TYPES = frozenset({"Int", "Float", "Currency", "Percent", "Check", "Rating", "Duration"})


def written_problem(fieldtype: str, written: str) -> str | None:
	"""Why `written` can never match a value of a field of this Frappe type, or None."""
	written = written.strip()
	if not written or written.lower() == EMPTY:
		return None
	if fieldtype in NUMBER_TYPES and _number(written) is None:
		return f"{written!r} is not a number: write it as 10 or 10.5 (or true / false for a Check)"
	if fieldtype == "Date" and _date(written) is None:
		return f"{written!r} is not a date: write it as 2024-05-31"
	if fieldtype == "Datetime" and _datetime(written) is None:
		return f"{written!r} is not a date and time: write it as 2024-05-31 14:30"
	if fieldtype == "Time" and _time(written) is None:
		return f"{written!r} is not a time: write it as 14:30"
	return None


def example_before(written: str, current):
	"""The value a preview puts before the change: From Value read as written, or, when it is
	blank, something other than the current value."""
	if written.strip().lower() == EMPTY:
		return None
	if written:
		return written
	return None if current not in (None, "") else "(changed)"
