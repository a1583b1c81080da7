"""Read-only views of documents for conditions and templates.

Conditions and templates see the document as data: attribute access like Frappe's
`_dict` (`doc.status`, a missing field is None), child tables as tuples of rows, and no
way to change anything, so one rule can never alter what the next rule sees.

Private columns (`_assign`, `_comments`, `_liked_by` ...) are not in the view at all: they
are kept beside it for the engine's own use (assignees, commenters), so no path of a
condition or template (`doc.get('_x')`, `keys()`, `%` formatting, `dictsort`, `tojson`,
`{{ doc }}`) can reach them. Text values are plain `str`: a markup object put into a
document by other code is escaped like any other value.
"""

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal


class ReadOnlyDoc(dict):
	"""A dict with attribute access whose contents cannot be changed."""

	__slots__ = ("_private",)

	def __getattr__(self, key: str):
		if key.startswith("_"):
			raise AttributeError(key)
		return self.get(key)

	def _refuse(self, *args, **kwargs):
		raise TypeError("documents are read-only in conditions and templates")

	__setitem__ = __delitem__ = __setattr__ = __delattr__ = _refuse
	clear = pop = popitem = setdefault = update = __ior__ = _refuse

	def __reduce__(self):
		"""Pickle as a copy built whole: a background job carries the document (child rows
		included) to a worker, and pickle's default for a dict subclass would fill it item by item."""
		return (_rebuild, (dict(self), getattr(self, "_private", {})))


def _rebuild(visible: dict, private: dict) -> ReadOnlyDoc:
	doc = ReadOnlyDoc(visible)
	ReadOnlyDoc._private.__set__(doc, private)
	return doc


#: Values freeze() returns as they are, checked by exact type before any ABC isinstance.
SCALARS = frozenset({str, int, float, bool, type(None), datetime, date, time, timedelta, Decimal})


def freeze(value):
	"""A read-only copy of a document dict (child tables included), private keys set apart."""
	if type(value) in SCALARS:
		return value
	if isinstance(value, ReadOnlyDoc):
		return value
	if isinstance(value, str):
		return str(value)  # a Markup (or other str subclass) would skip escaping
	if isinstance(value, Mapping):
		visible, private = {}, {}
		for key, item in value.items():
			if type(key) is str and key[:1] != "_":
				visible[key] = item if type(item) in SCALARS else freeze(item)
			else:
				private[key] = item
		return _rebuild(visible, private)
	if isinstance(value, list | tuple):
		return tuple(freeze(v) for v in value)
	return value


def without(doc: ReadOnlyDoc | None, hidden: frozenset[str]) -> ReadOnlyDoc | None:
	"""The document as a reader sees it who may not read the `hidden` fields (`field`, or
	`table.field` for that field of every child row): those fields are not there at all."""
	if doc is None or not hidden:
		return doc
	own = {path for path in hidden if "." not in path}
	in_rows: dict[str, set[str]] = {}
	for path in hidden:
		table, _, field = path.partition(".")
		if field:
			in_rows.setdefault(table, set()).add(field)
	visible = {}
	for key, value in doc.items():
		if key in own:
			continue
		if key in in_rows and isinstance(value, tuple):
			value = tuple(
				without(row, frozenset(in_rows[key])) if isinstance(row, ReadOnlyDoc) else row
				for row in value
			)
		visible[key] = value
	return _rebuild(visible, getattr(doc, "_private", {}))


def private_value(doc: Mapping, key: str):
	"""A private column (`_assign` ...) of a document: kept beside a frozen view, in a plain dict."""
	if isinstance(doc, ReadOnlyDoc):
		return getattr(doc, "_private", {}).get(key)
	return doc.get(key)


def as_text(value) -> str:
	"""A field value as the text a user types in from_value / to_value.

	10, 10.0 and Decimal("10.00") are all "10"; dates are ISO; None is "".
	"""
	if value is None:
		return ""
	if isinstance(value, bool):
		return "1" if value else "0"
	if isinstance(value, int | float | Decimal):
		if not math.isfinite(value):
			return str(value)
		if value == int(value):
			return str(int(value))
		return str(float(value))
	if isinstance(value, datetime | date | time):
		return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
	return str(value)


def to_json_value(value):
	"""A field value as something `json.dumps` and socket.io can carry."""
	if value is None or isinstance(value, str | int | float | bool):
		return value
	if isinstance(value, Decimal):
		return float(value)
	if isinstance(value, datetime | date | time):
		return value.isoformat()
	if isinstance(value, timedelta):
		return str(value)
	if isinstance(value, Mapping):
		return {k: to_json_value(v) for k, v in value.items() if not str(k).startswith("_")}
	if isinstance(value, list | tuple):
		return [to_json_value(v) for v in value]
	return str(value)


def moment_of(value) -> datetime | None:
	"""A Date or Datetime value (a date, a datetime or ISO text) as a naive datetime; None when
	it is empty or not a date (a site's values are in its own time zone: any offset is dropped)."""
	if value is None or value == "":
		return None
	if isinstance(value, datetime):
		return value.replace(tzinfo=None)
	if isinstance(value, date):
		return datetime(value.year, value.month, value.day)
	if not isinstance(value, str):
		return None
	try:
		return datetime.fromisoformat(value.strip()).replace(tzinfo=None)
	except ValueError:
		return None
