"""Value Change: did the watched field change as the rule asks, on the document or in its rows?

`value_changed` names a field of the document (`status`) or a field of a child table's rows
(`items.qty`). A row counts as changed when it was added, removed, or its field changed;
rows are matched by their name (by their position when they have none, as in hand-written
JSON). `from_value` / `to_value` restrict the transition: an added row changes from "" and a
removed row to "". Templates and conditions get the changed rows as `changed_rows`.
"""

from collections.abc import Mapping

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
	return _transition_reason(rule, field, as_text(before.get(field)), as_text(doc.get(field))), ()


def _transition_reason(rule, field: str, old: str, new: str) -> str | None:
	if old == new:
		return f"{field} did not change"
	if rule.from_value and old != rule.from_value:
		return f"{field} changed from {old!r}, the rule wants from {rule.from_value!r}"
	if rule.to_value and new != rule.to_value:
		return f"{field} changed to {new!r}, the rule wants to {rule.to_value!r}"
	return None


def _rows_reason(rule, table: str, field: str, doc: Mapping, before: Mapping) -> tuple[str | None, tuple]:
	changes = row_changes(table, field, doc, before)
	if not changes:
		return f"no {table} row was added, removed or changed its {field}", ()
	wanted = tuple(c for c in changes if _transition_reason(rule, field, c.old, c.new) is None)
	if not wanted:
		first = changes[0]
		return f"{table} row {first.idx}: {_transition_reason(rule, field, first.old, first.new)}", ()
	return None, wanted


def row_changes(table: str, field: str, doc: Mapping, before: Mapping) -> tuple[ReadOnlyDoc, ...]:
	"""Every row of `table` added, removed, or with `field` changed, in the document's order
	(removed rows last): each `{change, row, idx, old, new}`, values as text."""
	old_rows = _rows_by_key(before.get(table))
	new_rows = _rows_by_key(doc.get(table))
	changes = []
	for key, row in new_rows.items():
		old_row = old_rows.get(key)
		old = as_text(old_row.get(field)) if old_row is not None else ""
		new = as_text(row.get(field))
		if old_row is None:
			changes.append(_change(ADDED, row, old, new))
		elif old != new:
			changes.append(_change(CHANGED, row, old, new))
	for key, row in old_rows.items():
		if key not in new_rows:
			changes.append(_change(REMOVED, row, as_text(row.get(field)), ""))
	return tuple(changes)


def _rows_by_key(rows) -> dict:
	if not isinstance(rows, list | tuple):
		return {}
	keyed = {}
	for position, row in enumerate(rows, 1):
		if isinstance(row, Mapping):
			keyed[row.get("name") or f"#{row.get('idx') or position}"] = row
	return keyed


def _change(kind: str, row: Mapping, old: str, new: str) -> ReadOnlyDoc:
	return ReadOnlyDoc(change=kind, row=row, idx=row.get("idx"), old=old, new=new)
