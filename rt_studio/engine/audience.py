"""Who a rule's audience rows name, before any verdict is given."""

import json
from collections.abc import Iterable, Mapping

from rt_studio.engine import rules as r
from rt_studio.engine.docview import private_value
from rt_studio.engine.interfaces import Directory, DocumentEvent
from rt_studio.engine.user_names import user_key

#: Users whose read access to a channel's reference document is decided together.
READERS_CHUNK = 500


def doc_room(doctype: str, docname: str) -> str:
	"""Frappe's room for everyone who has the document open (joined with a read check)."""
	return f"doc:{doctype}/{docname}"


def assigned_users(doc: Mapping) -> list[str]:
	"""Users in the document's `_assign` column (a JSON list, as Frappe stores it)."""
	raw = private_value(doc, "_assign")
	if not raw:
		return []
	try:
		users = json.loads(raw) if isinstance(raw, str) else list(raw)
	except ValueError:
		return []
	return [u for u in users if isinstance(u, str) and u]


def commenters(doc: Mapping) -> list[str]:
	"""Users in the document's `_comments` column (a JSON list of {"by": ...})."""
	raw = private_value(doc, "_comments")
	if not raw:
		return []
	try:
		comments = json.loads(raw) if isinstance(raw, str) else list(raw)
	except ValueError:
		return []
	return [c.get("by") for c in comments if isinstance(c, Mapping) and c.get("by")]


def field_users(doc: Mapping, path: str) -> list[str]:
	"""Values of `field`, or of `table.field` across the child rows."""
	table, _, field = path.partition(".")
	if not field:
		value = doc.get(table)
		return [value] if isinstance(value, str) and value else []
	rows = doc.get(table) or ()
	if not isinstance(rows, list | tuple):
		raise LookupError(f"{table!r} is not a table field: use fieldname or table_field.field")
	return [
		row.get(field)
		for row in rows
		if isinstance(row, Mapping) and isinstance(row.get(field), str) and row.get(field)
	]


def channel_members(channel: r.Channel, directory: Directory, limit: int | None = None) -> list[str]:
	"""Members of a channel now: its users, users of its roles, readers of its reference document.

	With `limit`, a channel whose members may be more than `limit` can answer with any
	`limit + 1` candidates instead of deciding who they are (the caller only wants to know
	that there are too many).
	"""
	members: dict[str, None] = {}
	for kind, value in channel.members:
		if kind == "User":
			members[value] = None
		else:
			members.update(dict.fromkeys(directory.users_with_role(value, limit=_more(limit))))
	if channel.reference_doctype and channel.reference_name:
		candidates = list(directory.all_users(limit=_more(limit)))
		if limit is not None and len(candidates) > limit:
			return candidates
		for start in range(0, len(candidates), READERS_CHUNK):
			chunk = candidates[start : start + READERS_CHUNK]
			readers = directory.readers(chunk, channel.reference_doctype, channel.reference_name, None)
			members.update((user, None) for user in chunk if user in readers)
	return list(members)


def _more(limit: int | None) -> int | None:
	"""Enough users to tell that there are more than `limit`."""
	return None if limit is None else limit + 1


def row_users(
	row: r.AudienceRow, event: DocumentEvent, directory: Directory, limit: int | None = None
) -> Iterable[str]:
	"""The users one audience row names for `event` (Document Viewers is a room and handled apart).

	With `limit`, a row that may name more than `limit` users names any `limit + 1` of them.
	"""
	doc, doctype, docname, actor = event.doc, event.doctype, event.docname, event.actor
	kind = row.audience_type
	if kind == r.OWNER:
		return [doc.get("owner")] if doc.get("owner") else []
	if kind == r.ACTOR:
		return [actor] if actor else []
	if kind == r.ASSIGNEES:
		return directory.assignees(doctype, docname, doc)
	if kind == r.FOLLOWERS:
		users = [doc.get("owner")] if doc.get("owner") else []
		users += list(directory.assignees(doctype, docname, doc))
		users += list(directory.followers(doctype, docname, doc))
		return users
	if kind == r.USER_FIELD:
		return field_users(doc, row.user_field)
	if kind == r.ROLE:
		return directory.users_with_role(row.role, limit=_more(limit))
	if kind == r.USER:
		return [row.user]
	if kind == r.CHANNEL:
		channel = directory.get_channel(row.channel)
		if channel is None:
			raise LookupError(f"Realtime Channel {row.channel!r} does not exist: choose an existing channel")
		if not channel.enabled:
			return []
		return channel_members(channel, directory, limit)
	if kind == r.EVERYONE:
		return directory.all_users(limit=_more(limit))
	return []
