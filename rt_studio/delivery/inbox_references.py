"""Inbox items follow the document they are about, whatever the rules: deleted, its messages leave
every inbox (they could no longer be opened and would only be counted unread); renamed, they
follow it to the new name.

Runs on every delete and rename of the site (doc_events "*"), so it first asks whether the
DocType can have inbox items at all: the DocTypes of the items in the inbox (one query) plus those
of every rule (new items can only come from a rule), kept per process until the rules change
(the rule index changes with any rule save or delete). For a DocType that never had messages
that costs a set lookup after the rule cache's per-request Redis read. A rule deleted while its
last messages commit can leave a DocType out until the next rule change (its items then age out
with the daily clean-up).

Called by: Frappe's doc_events "*" `on_trash` and `after_rename` (hooks.py).
"""

import json

import frappe

from rt_studio import rule_cache as cache
from rt_studio.delivery.inbox import DOCTYPE, forget_document

#: {site: (RuleIndex, DocTypes that may have inbox items)}, rebuilt when the rule index changes.
_known: dict[str, tuple[object, frozenset[str]]] = {}


def may_have_items(doctype: str) -> bool:
	"""Whether inbox items may be about documents of `doctype`."""
	index = cache.get_index()
	known = _known.get(frappe.local.site)
	if known is None or known[0] is not index:
		doctypes = frozenset(frappe.db.sql_list(f"select distinct reference_doctype from `tab{DOCTYPE}`")) | {
			rule.document_type for rule in index.rules.values()
		}
		known = _known[frappe.local.site] = (index, doctypes)
	return doctype in known[1]


def on_trash(doc, method: str | None = None) -> None:
	"""A document is being deleted: its messages leave every inbox (in the deleting transaction)."""
	if _skipped(doc.doctype):
		return
	forget_document(doc.doctype, doc.name)


def after_rename(doc, method: str | None, old: str, new: str, merge: bool = False) -> None:
	"""A document was renamed (or merged into another): Frappe renamed the items' reference (a
	Dynamic Link); the messages they keep, as published, now name the new document too. The items
	are found with a plain SELECT and changed by primary key, in one UPDATE."""
	if _skipped(doc.doctype):
		return
	item = frappe.qb.DocType(DOCTYPE)
	names = (
		frappe.qb.from_(item)
		.select(item.name)
		.where(item.reference_doctype == doc.doctype)
		.where(item.reference_name.isin([str(old), str(new)]))
		.run(pluck=True)
	)
	if names:
		# the payload as the inbox writes it: compact JSON
		frappe.db.sql(
			f"""update `tab{DOCTYPE}` set reference_name = %(new)s, payload = replace(payload, %(was)s, %(now)s)
			where name in %(names)s""",
			{"new": str(new), "was": _docname_json(old), "now": _docname_json(new), "names": names},
		)


def _docname_json(name: str) -> str:
	return '"docname":' + json.dumps(str(name), ensure_ascii=False)


def _skipped(doctype: str) -> bool:
	flags = frappe.local.flags
	if flags.in_install or flags.in_migrate or flags.in_uninstall or doctype == DOCTYPE:
		return True  # (the inbox table may not exist yet, or any more)
	return not may_have_items(doctype)
