"""Who of many users may read one document, decided exactly as `frappe.has_permission` decides.

`frappe.has_permission(doctype, "read", doc, user)` per recipient costs, cold, a User document
load, a roles query, a User Permissions query and a share query: about eight queries a user.
`readers` gives the same answer for a whole audience in a number of queries that does not grow
with it: roles and User Permissions come in bulk (`rt_studio.people.users.prime`), role permissions are
worked out once per distinct set of roles (by Frappe's own `get_role_permissions`), the shares of
the document are read once, and controller `has_permission` hooks run per user only where the
DocType (or "*") has one, as Frappe runs them. The order of the checks is Frappe's: Administrator,
controller hooks, role permissions with `if_owner`, User Permissions, and last the shares to the
user or to everyone, which grant read even where the checks before denied it. Parity with
`frappe.has_permission` is proved on a site by a differential test over many users and DocTypes.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import frappe
from frappe.permissions import get_role_permissions, has_user_permission

from rt_studio.people import users as user_facts

READ = "read"


@dataclass(slots=True)
class Shares:
	"""Who the document is shared with for reading (DocShare rows with read = 1)."""

	users: set[str] = field(default_factory=set)
	everyone: bool = False

	def grant(self, user: str) -> bool:
		"""As `frappe.share.get_shared`: the user's own share, or one to everyone (not for Guest)."""
		return user_facts.lookup_key(user) in self.users or (self.everyone and user != "Guest")

	def as_dict(self) -> dict:
		"""Plain data, to carry the shares of a deleted document into a background job."""
		return {"users": sorted(self.users), "everyone": self.everyone}

	@classmethod
	def from_dict(cls, data: dict) -> "Shares":
		return cls(set(data.get("users") or ()), bool(data.get("everyone")))


def shares_of(doctype: str, docname: str) -> Shares:
	"""The document's read shares, in one query."""
	shares = Shares()
	for user, everyone in frappe.db.sql(
		"""select user, everyone from `tabDocShare`
		where share_doctype = %(doctype)s and share_name = %(name)s and `read` = 1""",
		{"doctype": doctype, "name": str(docname)},
	):
		if everyone:
			shares.everyone = True
		if user:
			shares.users.add(user_facts.lookup_key(user))
	return shares


def readers(
	doc,
	users: Sequence[str],
	*,
	shares: Shares | None = None,
	user_types: dict[str, str] | None = None,
	read_along: user_facts.ReadAlong | None = None,
) -> set[str]:
	"""The users (canonical names) among `users` who may read `doc`, a Document.

	`shares` replaces the shares read from the database: a deleted document has lost its
	DocShare rows, so a job working from its snapshot passes the shares it had. `read_along`
	rides in the round trip that reads the users' roles (`users.prime`).
	"""
	if doc.meta.istable:
		# rules never trigger on child rows; kept exact all the same
		return {u for u in users if frappe.has_permission(doc.doctype, READ, doc, u)}
	user_facts.prime(users, user_types, read_along)
	decision = _Decision(doc)
	allowed = set()
	for user in users:
		if decision.may_read(user):
			allowed.add(user)
			continue
		if shares is None:
			shares = shares_of(doc.doctype, doc.name)
		if shares.grant(user):
			allowed.add(user)
	return allowed


def readable_by(user: str, doctype: str, names: Sequence[str]) -> set[str]:
	"""The names among `names` (documents of one DocType) that `user` may read, each decided by
	`readers` (so exactly as `frappe.has_permission`): the documents, their child rows and their
	shares are read for all of them at once, in 2 + one per child table queries (per chunk of
	`users.CHUNK` names). Names of documents that do not exist are left out."""
	allowed = set()
	for chunk in user_facts.chunks(sorted(set(names))):
		shares = shares_of_many(doctype, chunk)
		for name, doc in documents_of(doctype, chunk).items():
			if readers(doc, [user], shares=shares.get(name) or Shares()):
				allowed.add(name)
	return allowed


def documents_of(doctype: str, names: Sequence[str]) -> dict[str, "frappe.model.document.Document"]:
	"""{name: Document} of the existing documents among `names`, with their child rows, read in
	one query per table (the Documents are built from the rows: no further query)."""
	rows = {row.name: row for row in frappe.get_all(doctype, filters={"name": ("in", names)}, fields=["*"])}
	for table in frappe.get_meta(doctype).get_table_fields() if rows else ():
		for child in frappe.get_all(
			table.options,
			filters={"parent": ("in", list(rows)), "parenttype": doctype, "parentfield": table.fieldname},
			fields=["*"],
			order_by="idx asc",
		):
			if child.parent in rows:
				rows[child.parent].setdefault(table.fieldname, []).append(child)
	return {name: frappe.get_doc({**row, "doctype": doctype}) for name, row in rows.items()}


def shares_of_many(doctype: str, names: Sequence[str]) -> dict[str, Shares]:
	"""`shares_of` for many documents of one DocType, in one query (documents with no read
	share are left out)."""
	found: dict[str, Shares] = {}
	if not names:
		return found
	for name, user, everyone in frappe.db.sql(
		"""select share_name, user, everyone from `tabDocShare`
		where share_doctype = %(doctype)s and share_name in %(names)s and `read` = 1""",
		{"doctype": doctype, "names": [str(name) for name in names]},
	):
		shares = found.setdefault(name, Shares())
		if everyone:
			shares.everyone = True
		if user:
			shares.users.add(user_facts.lookup_key(user))
	return found


def controller_checks(doctype: str) -> list[tuple]:
	"""The DocType's and "*" `has_permission` hooks as Frappe runs them, last declared first:
	(function, arguments(doc, user)), each function's accepted arguments worked out once
	(as `frappe.call` does on every call)."""
	hooks = frappe.get_hooks("has_permission")
	checks = []
	for method in reversed(hooks.get(doctype, []) + hooks.get("*", [])):
		function = frappe.get_attr(method)
		given = frappe.get_newargs(function, {"doc": None, "ptype": None, "user": None, "debug": None})
		checks.append((function, _arguments(tuple(given))))
	return checks


def _arguments(names: tuple[str, ...]):
	def arguments(doc, user: str) -> dict:
		values = {"doc": doc, "ptype": READ, "user": user, "debug": False}
		return {name: values[name] for name in names}

	return arguments


class _Decision:
	"""`get_doc_permissions(doc, user, "read")` for one document and many users."""

	__slots__ = ("by_roles", "doc", "hooks", "meta", "owner", "roles")

	def __init__(self, doc):
		self.doc = doc
		self.meta = frappe.get_meta(doc.doctype)
		self.hooks = controller_checks(doc.doctype)
		self.owner = (doc.get("owner") or "").lower()
		self.roles = user_facts.primed_roles()
		#: {(roles, is_owner): role permissions}: worked out once per distinct set of roles.
		self.by_roles: dict[tuple[frozenset, bool], dict] = {}

	def may_read(self, user: str) -> bool:
		if user == "Administrator":
			return True
		if self.hooks and not self.controllers_allow(user):
			return False
		is_owner = self.owner == user.lower()
		permissions = self.role_permissions(user, is_owner)
		read = permissions.get(READ)
		if permissions.get("has_if_owner_enabled"):
			read = permissions.get("if_owner", {}).get(READ, read)
		if not has_user_permission(self.doc, user):
			# Frappe keeps only the if_owner rights of an owner the User Permissions exclude
			read = permissions.get("if_owner", {}).get(READ) if is_owner else 0
		return bool(read)

	def controllers_allow(self, user: str) -> bool:
		"""`has_controller_permissions`: the last hook with an answer decides; none, allowed."""
		for check, arguments in self.hooks:
			answer = check(**arguments(self.doc, user))
			if answer is not None:
				return bool(answer)
		return True

	def role_permissions(self, user: str, is_owner: bool) -> dict:
		roles = self.roles.get(user)
		key = (frozenset(frappe.get_roles(user) if roles is None else roles), is_owner)
		found = self.by_roles.get(key)
		if found is None:
			# Frappe's own computation, for the first user with this set of roles
			found = self.by_roles[key] = get_role_permissions(self.meta, user=user, is_owner=is_owner)
		return found
