"""Value Change: did the watched field change as the rule asks, on the document or in its rows?

`value_changed` names a field of the document (`status`) or a field of a child table's rows
(`items.qty`). A row counts as changed when it was added, removed, or its field changed;
rows are matched by their name (by their position when they have none, as in hand-written
JSON). `from_value` / `to_value` restrict the transition, compared as the field's type
(`values.matches`): an added row changes from no value and a removed row to none ("(empty)").
Templates and conditions get the changed rows as `changed_rows`.
"""

from collections.abc import Mapping

from rt_studio.engine import values
from rt_studio.engine.docview import ReadOnlyDoc, as_text

ADDED, REMOVED, CHANGED = "added", "removed", "changed"


def value_change(rule, doc: Mapping, before: Mapping | None) -> tuple[str | None, tuple]:
	"""(None when the field changed as the rule asks, else why not; the changed rows)."""
	field = rule.value_changed
	if before is None:
		return f"no earlier version of the document to compare {field} with", ()
	table, _dot, row_field = field.partition(".")
	if row_field:
		return _rows_reason(rule, table, row_field, doc, before)
	return _transition_reason(rule, field, before.get(field), doc.get(field)), ()


def _transition_reason(rule, field: str, old_value, new_value) -> str | None:
	old, new = as_text(old_value), as_text(new_value)
	if old == new:
		return f"{field} did not change"
	if rule.from_value and not values.matches(rule.from_value, old_value):
		return f"{field} changed from {old!r}, the rule wants from {rule.from_value!r}"
	if rule.to_value and not values.matches(rule.to_value, new_value):
		return f"{field} changed to {new!r}, the rule wants to {rule.to_value!r}"
	return None


def _rows_reason(rule, table: str, field: str, doc: Mapping, before: Mapping) -> tuple[str | None, tuple]:
	pairs = _row_pairs(table, field, doc, before)
	if not pairs:
		return f"no {table} row was added, removed or changed its {field}", ()
	wanted = tuple(
		_change(*pair) for pair in pairs if _transition_reason(rule, field, pair[2], pair[3]) is None
	)
	if not wanted:
		_kind, row, old, new = pairs[0]
		return f"{table} row {row.get('idx')}: {_transition_reason(rule, field, old, new)}", ()
	return None, wanted


def _row_pairs(table: str, field: str, doc: Mapping, before: Mapping) -> list[tuple]:
	"""(change, row, old value, new value) of each changed row, the values as the rows hold them."""
	old_rows = _rows_by_key(before.get(table))
	new_rows = _rows_by_key(doc.get(table))
	pairs = []
	for key, row in new_rows.items():
		old_row = old_rows.get(key)
		if old_row is None:
			pairs.append((ADDED, row, None, row.get(field)))
		elif as_text(old_row.get(field)) != as_text(row.get(field)):
			pairs.append((CHANGED, row, old_row.get(field), row.get(field)))
	for key, row in old_rows.items():
		if key not in new_rows:
			pairs.append((REMOVED, row, row.get(field), None))
	return pairs


def _rows_by_key(rows) -> dict:
	if not isinstance(rows, list | tuple):
		return {}
	keyed = {}
	for position, row in enumerate(rows, 1):
		if isinstance(row, Mapping):
			keyed[row.get("name") or f"#{row.get('idx') or position}"] = row
	return keyed


def _change(kind: str, row: Mapping, old, new) -> ReadOnlyDoc:
	return ReadOnlyDoc(change=kind, row=row, idx=row.get("idx"), old=as_text(old), new=as_text(new))


def simulated_before(rule, doc: Mapping) -> dict:
	"""The document as it was before a change the rule watches, for preview and test fire on a
	document that is not being changed: the watched field (in every row, for `table.field`)
	held From Value, or another value (`values.example_before`)."""
	before = dict(doc)
	table, _dot, field = rule.value_changed.partition(".")
	if not field:
		before[table] = values.example_before(rule.from_value, doc.get(table))
		return before
	rows = doc.get(table)
	if isinstance(rows, list | tuple):
		before[table] = [
			{**row, field: values.example_before(rule.from_value, row.get(field))}
			if isinstance(row, Mapping)
			else row
			for row in rows
		]
	return before
