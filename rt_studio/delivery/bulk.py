"""Multi-row INSERTs written just before a commit (the inbox, the bell) that cannot fail by chance
or by size.

- By size: a statement holds at most MAX_ROWS rows and about MAX_STATEMENT_BYTES of values, so a
  rule that renders 100,000 characters for a thousand recipients becomes several statements
  instead of one that MariaDB refuses (its default `max_allowed_packet` is 16 MB; past it the
  server drops the connection and the transaction with it).
- By chance: row names are 80 random bits each (`new_names`, 16 characters), never repeated
  within a transaction's rows; the chance that one of a thousand new names meets one of ten
  million rows already in the table is about 1 in 10^14. (Frappe's "hash" names share their first four characters for
  a tenth of a second and draw 30 random bits after them: about one batch of 1,000 names in 1,500
  holds a duplicate, and one duplicate fails the whole INSERT.)
- Values longer than their column are cut to it (`cut`), as MariaDB's strict mode would refuse
  the whole statement.

Each statement is written by hand with placeholders only: building it with the query builder
(as `frappe.db.bulk_insert` does) costs more than the database takes to run it.
"""

import secrets
from collections.abc import Iterator, Sequence

import frappe

#: Rows per statement at most.
MAX_ROWS = 1000
#: Bytes of values per statement, about: a quarter of MariaDB's default max_allowed_packet (16 MB),
#: leaving room for the statement's own text and a server configured below the default.
MAX_STATEMENT_BYTES = 4 * 1024 * 1024
#: Random bytes per row name (written as 16 base-32 characters): see the module's docstring.
NAME_BYTES = 10
#: What a TEXT column (Frappe's Small Text and Text) holds, in bytes.
TEXT_BYTES = 65535
#: Bytes a value is counted for besides its own: the placeholder's quoting and separators.
OVERHEAD_BYTES = 8


def new_names(count: int) -> list[str]:
	"""`count` distinct random row names (lower-case base 32, as Frappe's own names)."""
	names: set[str] = set()
	while len(names) < count:
		names.update(_random_name() for _ in range(count - len(names)))
	return list(names)


def _random_name() -> str:
	value = int.from_bytes(secrets.token_bytes(NAME_BYTES), "big")
	digits = "0123456789abcdefghijklmnopqrstuv"
	out = []
	for _ in range(NAME_BYTES * 8 // 5):
		value, digit = divmod(value, 32)
		out.append(digits[digit])
	return "".join(out)


def cut(text: str | None, limit: int = TEXT_BYTES) -> str:
	"""`text` cut to at most `limit` bytes of UTF-8 (never inside a character), marked with an ellipsis."""
	text = text or ""
	if len(text) * 4 <= limit:  # cannot be longer than the limit: no need to encode
		return text
	data = text.encode()
	if len(data) <= limit:
		return text
	return data[: limit - 3].decode(errors="ignore") + "…"


def statements(rows: Sequence[tuple]) -> Iterator[Sequence[tuple]]:
	"""The rows in runs that each fit one statement (MAX_ROWS, about MAX_STATEMENT_BYTES)."""
	start, size = 0, 0
	for i, row in enumerate(rows):
		row_bytes = sum(_size(value) for value in row)
		if i > start and (i - start >= MAX_ROWS or size + row_bytes > MAX_STATEMENT_BYTES):
			yield rows[start:i]
			start, size = i, 0
		size += row_bytes
	if start < len(rows):
		yield rows[start:]


def _size(value) -> int:
	if isinstance(value, str):
		# a character is 1 to 4 bytes: count exactly only when it may matter
		return (len(value.encode()) if len(value) > 256 else len(value) * 4) + OVERHEAD_BYTES
	return 24 + OVERHEAD_BYTES


def insert(doctype: str, columns: Sequence[str], parts: Sequence[Sequence[tuple]]) -> int:
	"""Insert rows (values in the order of `columns`) into the DocType's table, one statement per
	part (`statements(rows)`); the number of statements."""
	names = ", ".join(f"`{column}`" for column in columns)
	one = f"({', '.join(['%s'] * len(columns))})"
	for part in parts:
		frappe.db.sql(
			f"insert into `tab{doctype}` ({names}) values {', '.join([one] * len(part))}",
			[_plain(value) for row in part for value in row],
		)
	return len(parts)


def _plain(value):
	"""A str subclass as a plain str: the driver quotes a markupsafe `Markup` (a channel post's
	subject) by concatenating it with quote characters, which Markup escapes into `&#39;`."""
	return str.__str__(value) if isinstance(value, str) and type(value) is not str else value
