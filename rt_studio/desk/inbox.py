"""The inbox API for every desk user: their own messages, newest first, and what they did with them.

Every function works on the session user's own items only (the user is never a parameter): an
item of another user is not found, whatever `seqs` names. Items are addressed by the message's
`seq`, which is also the cursor: `inbox(before=seq)` returns older items, so a page stays the same
however many messages arrive meanwhile. A message about a document the user may no longer read is
left out when listed (checked at every call, in bulk per DocType as `frappe.has_permission`
decides: a page of 20 items over 20 documents costs 6 queries, 63 one document at a time). Each change is told to all the user's tabs
(`INBOX_EVENT` with the new unread count) after its commit. Called by the desk's Realtime
drop-down (public/js/inbox.js) through rt_studio.api.
"""

import json

import frappe
from frappe import _
from frappe.query_builder.functions import IfNull
from frappe.utils import cint, now_datetime

from rt_studio.delivery.inbox import DOCTYPE, badge, publish_change
from rt_studio.people.readers import readable_by

#: Items per page unless asked otherwise, and the most one call returns.
PAGE = 20
MAX_PAGE = 100
#: Rows one call reads at most while skipping items whose documents the user may no longer read:
#: a user who lost access to hundreds of documents gets a short page and a cursor, not a slow call.
MAX_SCANNED = 500
#: Items one call changes at most (a selection on the desk is a page or a few).
MAX_SEQS = 500
STATUSES = ("all", "unread", "archived")


def _user() -> str:
	user = frappe.session.user
	if user == "Guest":
		raise frappe.PermissionError(_("Log in to read your inbox"))
	return user


@frappe.whitelist()
def inbox(before: int | None = None, limit: int = PAGE, status: str = "all") -> dict:
	"""The session user's items older than `before` (newest first), at most `limit`.

	`status`: "all" (not archived), "unread" (not read, not archived) or "archived". Returns
	`{"items": [...], "next_before": seq or None, "unread": count, "latest": seq}` (the badge, see
	`delivery.inbox.badge`); each item is the message
	as it was published (with its `seq`) plus `seen_at`, `read_at` and `archived_at`.
	`next_before` is the cursor for the next page, None once the oldest item was read (a page
	that ends just at the oldest may still give one: the next call then returns no items).
	"""
	user = _user()
	if status not in STATUSES:
		frappe.throw(_("status must be one of {0}").format(", ".join(STATUSES)))
	limit = min(max(cint(limit) or PAGE, 1), MAX_PAGE)
	before = cint(before) or None
	items, cursor, scanned, readable, chunk = [], before, 0, {}, limit * 2
	while len(items) < limit and scanned < MAX_SCANNED:
		# twice the page, then twice as many each round: few rounds when most items are hidden
		wanted, chunk = min(chunk, MAX_SCANNED - scanned), chunk * 2
		rows = _rows(user, status, cursor, wanted)
		scanned += len(rows)
		_decide_readable(user, rows, readable)
		consumed = 0
		for row in rows:
			cursor, consumed = row.seq, consumed + 1
			if _readable(row, readable):
				items.append(_item(row))
				if len(items) == limit:
					break
		if len(rows) < wanted and consumed == len(rows):
			cursor = None  # nothing older
			break
	return {"items": items, "next_before": cursor, **badge(user)}


def _filters(user: str, status: str) -> dict:
	filters = {"user": user}
	if status == "archived":
		filters["archived_at"] = ("is", "set")
	else:
		filters["archived_at"] = ("is", "not set")
	if status == "unread":
		filters["read_at"] = ("is", "not set")
	return filters


def _rows(user: str, status: str, before: int | None, limit: int) -> list:
	filters = _filters(user, status)
	if before:
		filters["seq"] = ("<", before)
	return frappe.get_all(
		DOCTYPE,
		filters=filters,
		fields=["seq", "payload", "seen_at", "read_at", "archived_at", "reference_doctype", "reference_name"],
		order_by="seq desc",
		limit=limit,
	)


def _decide_readable(user: str, rows: list, known: dict) -> None:
	"""Decide read access for the rows' documents not decided yet, in bulk per DocType (as
	`frappe.has_permission` decides, see `people.readers.readable_by`): {(doctype, name): bool}
	for the existing documents, None for those deleted since."""
	by_doctype: dict[str, set[str]] = {}
	for row in rows:
		if row.reference_name and (row.reference_doctype, row.reference_name) not in known:
			by_doctype.setdefault(row.reference_doctype, set()).add(row.reference_name)
	for doctype, names in by_doctype.items():
		known.update(_decisions(user, doctype, names))


def _decisions(user: str, doctype: str, names: set[str]) -> dict[tuple[str, str], bool | None]:
	if not frappe.db.table_exists(doctype):
		# a Single or virtual DocType, or one deleted since: one at a time, as Frappe decides
		return {(doctype, name): _decision(user, doctype, name) for name in names}
	allowed = readable_by(user, doctype, list(names))
	denied = list(names - allowed)
	existing = set(frappe.get_all(doctype, filters={"name": ("in", denied)}, pluck="name")) if denied else ()
	return {
		(doctype, name): True if name in allowed else (False if name in existing else None) for name in names
	}


def _decision(user: str, doctype: str, name: str) -> bool | None:
	if not (frappe.db.exists("DocType", doctype) and frappe.db.exists(doctype, name)):
		return None
	return bool(frappe.has_permission(doctype, "read", doc=name, user=user))


def _readable(row, known: dict) -> bool:
	"""Whether the user may still read the item's document (an item without one: always); of a
	document deleted since, only the message about its deletion stays (checked when it was sent)."""
	if not row.reference_name:
		return True
	verdict = known[(row.reference_doctype, row.reference_name)]
	if verdict is None:
		return json.loads(row.payload).get("event") == "Delete"
	return verdict


def _item(row) -> dict:
	message = json.loads(row.payload)
	return {
		**message,
		"seq": row.seq,
		"seen_at": row.seen_at,
		"read_at": row.read_at,
		"archived_at": row.archived_at,
	}


def _seqs(seqs, accepts_all: bool = False) -> list[int]:
	"""The message numbers `seqs` names: a JSON list of integers (or one integer)."""
	if isinstance(seqs, str):
		try:
			seqs = json.loads(seqs)
		except ValueError:
			seqs = None
	if isinstance(seqs, int) and not isinstance(seqs, bool):
		seqs = [seqs]
	if not isinstance(seqs, list | tuple) or not all(_is_seq(s) for s in seqs):
		frappe.throw(
			_("seqs must be a list of message numbers (seq), such as [12, 15]{0}").format(
				_(', or "all"') if accepts_all else ""
			),
			title=_("Invalid seqs"),
		)
	if len(seqs) > MAX_SEQS:
		frappe.throw(_("At most {0} messages at a time").format(MAX_SEQS))
	return [int(s) for s in seqs]


def _is_seq(value) -> bool:
	if isinstance(value, bool):
		return False
	return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


def _set(user: str, seqs: list[int] | None, field: str, also_seen: bool = False) -> None:
	"""Set `field` to now on the user's items among `seqs` (all that are not archived when None)
	that do not have it yet."""
	item = frappe.qb.DocType(DOCTYPE)
	now = now_datetime()
	query = frappe.qb.update(item).set(item[field], now).where(item.user == user).where(item[field].isnull())
	if also_seen:
		query = query.set(item.seen_at, IfNull(item.seen_at, now))
	if seqs is not None:
		if not seqs:
			return
		query = query.where(item.seq.isin(seqs))
	else:
		query = query.where(item.archived_at.isnull())
	query.run()


@frappe.whitelist(methods=["POST"])
def mark_seen(seqs) -> dict:
	"""The user saw these items (the drop-down showed them)."""
	return _change("seen", "seen_at", _seqs(seqs))


@frappe.whitelist(methods=["POST"])
def mark_read(seqs) -> dict:
	"""The user read these items, or every unread one with `seqs="all"`."""
	return _change("read", "read_at", None if seqs == "all" else _seqs(seqs, accepts_all=True))


@frappe.whitelist(methods=["POST"])
def archive(seqs) -> dict:
	"""The user is done with these items: they leave the inbox for the archive."""
	return _change("archived", "archived_at", _seqs(seqs))


def _change(change: str, field: str, seqs: list[int] | None) -> dict:
	"""Set `field` on the session user's items, tell their tabs, return the new badge."""
	user = _user()
	_set(user, seqs, field, also_seen=field == "read_at")
	return publish_change(user, {change: "all" if seqs is None else seqs})


@frappe.whitelist()
def inbox_count() -> dict:
	"""The badge alone (`unread` and `latest`, at page load)."""
	return badge(_user())
