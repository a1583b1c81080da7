"""Reading a fixture document's fields strictly: a value of the wrong kind is a problem.

A rule file is written by hand as often as it is exported, so a count of `Infinity`, a
message given as a list or `enabled: []` must come back as a line that names the field and
the fix, not as a traceback and not silently turned into something else.
"""

import math
from collections.abc import Iterator, Mapping

from rt_studio.engine.errors import Problem

#: The largest whole number a field takes: an Int column of MariaDB (a larger one fails the
#: insert on a site).
MAX_WHOLE_NUMBER = 2**31 - 1

#: Values a Check field accepts, as Frappe writes them or as people type them.
FLAG_VALUES = {"1": True, "0": False, "true": True, "false": False}


class FieldReader:
	"""One document's (or child row's) fields, each problem added to `problems`."""

	def __init__(self, data: Mapping, name: str, problems: list[Problem], where: str = ""):
		self.data = data
		self.name = name
		self.problems = problems
		#: Prefix of the field label, e.g. "audience row 2: ".
		self.where = where

	def problem(self, key: str, text: str) -> None:
		self.problems.append(Problem(self.name, f"{self.where}{key}", text))

	def text(self, key: str, *, scalar: bool = False) -> str:
		"""A text field; `scalar` also takes a number or true/false (written as text)."""
		value = self.data.get(key)
		if value is None:
			return ""
		if isinstance(value, str):
			return value.strip()
		if scalar and isinstance(value, bool):
			return "1" if value else "0"
		if scalar and isinstance(value, int | float) and math.isfinite(value):
			return str(value)
		self.problem(key, f"must be text, not {_kind(value)}")
		return ""

	def flag(self, key: str, default: bool) -> bool:
		"""A Check field: 0 or 1 (true and false too)."""
		value = self.data.get(key)
		if value is None or value == "":
			return default
		if isinstance(value, bool):
			return value
		if type(value) is int and value in (0, 1):
			return bool(value)
		if isinstance(value, str) and value.strip().lower() in FLAG_VALUES:
			return FLAG_VALUES[value.strip().lower()]
		self.problem(key, f"{_shown(value)} is not 0 or 1: use 1 to switch it on, 0 to switch it off")
		return default

	def number(self, key: str, default: int) -> int:
		"""A whole number from 0 to MAX_WHOLE_NUMBER."""
		value = self.data.get(key)
		if value is None or value == "":
			return default
		number = _whole(value)
		if number is None:
			self.problem(key, f"{_shown(value)} is not a whole number: enter a number such as {default}")
			return default
		if number < 0:
			self.problem(key, f"{number} is negative: enter 0 or more")
			return default
		if number > MAX_WHOLE_NUMBER:
			self.problem(key, f"{number} is too large: enter at most {MAX_WHOLE_NUMBER:,}")
			return default
		return number

	def rows(self, key: str, label: str) -> Iterator[tuple[int, Mapping]]:
		"""A child table as (row number, row) pairs, in order; a non-list, or a row that is not
		an object, is a problem."""
		value = self.data.get(key)
		if value is None or value == "":
			return
		if not isinstance(value, list):
			self.problem(key, f"must be a list of {label} rows, not {_kind(value)}")
			return
		for index, row in enumerate(value, 1):
			if isinstance(row, Mapping):
				yield index, row
			else:
				self.problem(
					f"{key} row {index}", f"must be an object with the {label} fields, not {_kind(row)}"
				)


def _whole(value) -> int | None:
	"""`value` as a whole number, or None: no booleans, fractions, infinities or NaN."""
	if isinstance(value, bool):
		return None
	if isinstance(value, int):
		return value
	if isinstance(value, float):
		return int(value) if math.isfinite(value) and value.is_integer() else None
	if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value.strip()) <= 20:
		return int(value.strip())
	return None


def _kind(value) -> str:
	return {dict: "an object", list: "a list", bool: "true or false", str: "text"}.get(
		type(value), "a number" if isinstance(value, int | float) else type(value).__name__
	)


def _shown(value) -> str:
	"""A value as the user wrote it, shortened."""
	text = repr(value)
	return text if len(text) <= 40 else text[:37] + "..."
