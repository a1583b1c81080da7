"""Bulk read permission (`rt_studio.people.readers`) against `frappe.has_permission`, user by user.

A differential test: a matrix of users (roles with and without read, read only at permlevel 1,
`if_owner`, User Permissions on a tree with descendants hidden or not, `applicable_for` and
`is_default`, restrictions through link fields of child rows, shares to the user and to
everyone, System Manager, Administrator, Guest, disabled and website users) and documents of
three DocTypes (ToDo with its controller hook, a submittable one with a child table, one with
`if_owner` rights). Every (document, user) pair where the two disagree is a failure.

Users are written straight into the tables inside the test's transaction (rolled back at the
end; Frappe's caches of them are cleared), so a matrix of this size costs no user creation.
"""

import frappe
from frappe.cache_manager import user_cache_keys
from frappe.core.doctype.user_permission.user_permission import get_user_permissions
from frappe.share import add_docshare

from rt_studio.people import readers
from rt_studio.tests import IntegrationTestCase
from rt_studio.tests.counting import QueryCounter
from rt_studio.tests.crowd import Member, crowd_names, forget_cached, insert_crowd

AREA = "RT Perm Area"
CLAIM = "RT Perm Claim"
CLAIM_ITEM = "RT Perm Claim Item"
MEMO = "RT Perm Memo"
CLERK, VIEWER, AUDITOR = "RT Perm Clerk", "RT Perm Viewer", "RT Perm Auditor"

#: Role sets the users cycle through: with and without read, permlevel 1 only, System Manager.
ROLE_SETS = (
	(),
	(CLERK,),
	(VIEWER,),
	(AUDITOR,),
	(CLERK, AUDITOR),
	(VIEWER, AUDITOR),
	("System Manager",),
	(CLERK, VIEWER),
)
#: The area tree: World > Europe > (France, Spain); World > Asia > Japan.
TREE = (("World", None), ("Europe", "World"), ("France", "Europe"), ("Spain", "Europe"), ("Asia", "World"))
TREE += (("Japan", "Asia"),)


def ensure_doctypes() -> None:
	"""A tree, a submittable DocType with a child table and permlevels, and an if_owner DocType."""
	for role in (CLERK, VIEWER, AUDITOR):
		if not frappe.db.exists("Role", role):
			frappe.get_doc({"doctype": "Role", "role_name": role, "desk_access": 1}).insert(
				ignore_permissions=True
			)
	everything = {"read": 1, "write": 1, "create": 1, "delete": 1}
	if not frappe.db.exists("DocType", AREA):
		_doctype(
			AREA,
			[{"fieldname": "area_name", "fieldtype": "Data", "label": "Area", "unique": 1}],
			[{"role": "System Manager", **everything}, {"role": "All", "read": 1}],
			is_tree=1,
			autoname="field:area_name",
		)
	if not frappe.db.exists("DocType", CLAIM_ITEM):
		_doctype(
			CLAIM_ITEM,
			[
				{"fieldname": "user", "fieldtype": "Link", "options": "User", "label": "User"},
				{"fieldname": "area", "fieldtype": "Link", "options": AREA, "label": "Area"},
			],
			[],
			istable=1,
		)
	submit = {**everything, "submit": 1, "cancel": 1}
	if not frappe.db.exists("DocType", CLAIM):
		_doctype(
			CLAIM,
			[
				{"fieldname": "title", "fieldtype": "Data", "label": "Title"},
				{"fieldname": "area", "fieldtype": "Link", "options": AREA, "label": "Area"},
				{"fieldname": "approver", "fieldtype": "Link", "options": "User", "label": "Approver"},
				{"fieldname": "amount", "fieldtype": "Currency", "label": "Amount", "permlevel": 1},
				{"fieldname": "items", "fieldtype": "Table", "options": CLAIM_ITEM, "label": "Items"},
			],
			[
				{"role": "System Manager", **submit},
				{"role": CLERK, **submit},
				{"role": VIEWER, "read": 1},
				{"role": AUDITOR, "select": 1},  # level 0 without read: only level 1 may be read
				{"role": AUDITOR, "permlevel": 1, "read": 1},
			],
			is_submittable=1,
		)
	if not frappe.db.exists("DocType", MEMO):
		_doctype(
			MEMO,
			[
				{"fieldname": "title", "fieldtype": "Data", "label": "Title"},
				{"fieldname": "area", "fieldtype": "Link", "options": AREA, "label": "Area"},
			],
			[
				{"role": "System Manager", **everything},
				{"role": CLERK, **everything, "if_owner": 1},
				{"role": VIEWER, "read": 1},
				{"role": VIEWER, "write": 1, "if_owner": 1},
				{"role": AUDITOR, "read": 1, "if_owner": 1},
			],
		)
	for name, parent in TREE:
		if not frappe.db.exists(AREA, name):
			frappe.get_doc(
				{"doctype": AREA, "area_name": name, "is_group": 1, "parent_rt_perm_area": parent}
			).insert(ignore_permissions=True)
	frappe.db.commit()


def _doctype(name: str, fields: list, permissions: list, **props) -> None:
	frappe.get_doc(
		{
			"doctype": "DocType",
			"name": name,
			"module": "RT Studio",
			"custom": 1,
			"autoname": props.pop("autoname", "hash"),
			"fields": fields,
			"permissions": permissions,
			**props,
		}
	).insert(ignore_permissions=True)


def forget_local_copies() -> None:
	"""This request's copies of Frappe's per-user caches, as a new request starts."""
	for name in user_cache_keys:
		frappe.local.cache.pop(frappe.cache.make_key(name), None)
	frappe.local.role_permissions = {}


class TestBulkReadPermission(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		ensure_doctypes()

	def setUp(self):
		frappe.set_user("Administrator")
		self.users: list[str] = []
		self.addCleanup(self.cleanup)

	def cleanup(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		self.forget_caches()

	def forget_caches(self):
		"""Drop every cached fact about the matrix users, in Redis and in this request.

		Only the users' own entries: `frappe.clear_cache(user=...)` would also drop site-wide
		defaults and make the next query count include reloading them.
		"""
		forget_cached(self.users)

	# --- the matrix ---------------------------------------------------------------------------

	def make_users(self, count: int) -> list[str]:
		"""`count` users straight into the tables (no hooks): role sets, types and enabled vary."""
		members = [
			Member(
				name,
				ROLE_SETS[i % len(ROLE_SETS)],
				"Website User" if i % 5 == 4 else "System User",
				0 if i % 7 == 3 else 1,
			)
			for i, name in enumerate(crowd_names(count))
		]
		self.users = insert_crowd(members)
		return list(self.users)

	def restrict(self, user: str, allow: str, value: str, **options) -> None:
		frappe.get_doc(
			{"doctype": "User Permission", "user": user, "allow": allow, "for_value": value, **options}
		).insert(ignore_permissions=True)

	def make_documents(self, u: list[str]) -> list:
		"""ToDos, claims and memos with varied owners, links, child rows, states and shares."""

		def insert(data: dict, owner: str | None = None, submit: bool = False):
			doc = frappe.get_doc(data).insert(ignore_permissions=True)
			if submit:
				doc.submit()
			if owner:
				frappe.db.set_value(doc.doctype, doc.name, "owner", owner, update_modified=False)
				doc.owner = owner
			return doc

		todo = {"doctype": "ToDo", "description": "perm"}
		claim = {"doctype": CLAIM, "title": "perm"}
		memo = {"doctype": MEMO, "title": "perm"}
		docs = [
			insert({**todo, "allocated_to": u[1]}),
			insert({**todo, "assigned_by": u[2], "allocated_to": u[9]}, owner=u[3]),
			insert(todo, owner=u[10]),
			insert(todo, owner=u[11]),
			insert({**claim, "area": "France", "approver": u[12]}, owner=u[1]),
			insert({**claim, "area": "Asia", "approver": u[13]}, submit=True),
			insert({**claim, "area": "Japan", "items": [{"user": u[14], "area": "Spain"}, {"user": u[15]}]}),
			insert(claim, owner=u[17]),
			insert({**claim, "area": "Spain", "items": [{"area": "World"}]}, owner=u[20]),
			insert({**memo, "area": "France"}, owner=u[1]),
			insert({**memo, "area": "Europe"}, owner=u[2]),
			insert({**memo, "area": "Japan"}, owner=u[3]),
			insert(memo, owner=u[4]),
			insert({**memo, "area": "Spain"}, owner=u[33]),
		]
		for doc, user in ((docs[2], u[21]), (docs[6], u[22]), (docs[10], u[23]), (docs[12], u[0])):
			add_docshare(doc.doctype, doc.name, user, read=1, flags={"ignore_share_permission": True})
		for doc in (docs[3], docs[7], docs[13]):
			add_docshare(doc.doctype, doc.name, everyone=1, read=1, flags={"ignore_share_permission": True})
		# a share without read grants nothing
		add_docshare(
			docs[11].doctype, docs[11].name, u[24], read=0, write=1, flags={"ignore_share_permission": True}
		)
		return docs

	def make_user_permissions(self, u: list[str], docs: list) -> None:
		"""Every kind of User Permission, on users of every role set."""
		for i in (8, 9, 40):
			self.restrict(u[i], AREA, "Europe")  # with its descendants France and Spain
		for i in (16, 17, 41):
			self.restrict(u[i], AREA, "Europe", hide_descendants=1)
		for i in (24, 25, 42):
			self.restrict(u[i], AREA, "France", applicable_for=MEMO, apply_to_all_doctypes=0)
		for i in (32, 33, 43):
			self.restrict(u[i], AREA, "Asia", is_default=1)
			self.restrict(u[i], AREA, "Spain")
		for i in (48, 49, 44):
			self.restrict(u[i], "User", u[14])  # documents linking to other users are hidden
		for i in (56, 57, 45):
			self.restrict(u[i], CLAIM, docs[6].name)
		for i in (50, 51, 46):
			self.restrict(u[i], "ToDo", docs[1].name)

	# --- the test -------------------------------------------------------------------------------

	def test_bulk_read_permission_matches_frappe_for_every_user_and_document(self):
		u = self.make_users(64)
		docs = self.make_documents(u)
		self.make_user_permissions(u, docs)
		audience = [*u, "Administrator", "Guest"]

		self.forget_caches()
		expected = {doc.name: self.has_permission(doc, audience) for doc in docs}
		frappe_facts = {user: (set(frappe.get_roles(user)), get_user_permissions(user)) for user in u}

		forget_local_copies()  # warm: what Frappe itself cached in Redis
		warm = {doc.name: readers.readers(doc, audience) for doc in docs}
		self.forget_caches()  # cold: from the tables
		cold = {doc.name: readers.readers(doc, audience) for doc in docs}

		differences = [
			f"{label} {doc.doctype} {doc.name}: {user} frappe={user in expected[doc.name]}"
			for label, found in (("warm", warm), ("cold", cold))
			for doc in docs
			for user in sorted(expected[doc.name] ^ found[doc.name])
		]
		self.assertEqual(differences, [], f"{len(differences)} differences")

		# what the cold run wrote to Frappe's caches is what Frappe computes
		forget_local_copies()
		for user in u:
			self.assertEqual(set(frappe.get_roles(user)), frappe_facts[user][0], user)
			self.assertEqual(get_user_permissions(user), frappe_facts[user][1], user)

		# the matrix is not trivial: per DocType, readers and non-readers of every kind
		pairs = len(docs) * len(audience)
		self.assertGreaterEqual(len(audience), 60)
		self.assertEqual({d.doctype for d in docs}, {"ToDo", CLAIM, MEMO})
		for doctype in ("ToDo", CLAIM, MEMO):
			names = [d.name for d in docs if d.doctype == doctype]
			readable = sum(len(expected[n]) for n in names)
			self.assertTrue(0 < readable < len(names) * len(audience), doctype)
		print(f"\n   bulk read permission = frappe.has_permission on {pairs} (document, user) pairs")

	def has_permission(self, doc, audience: list[str]) -> set[str]:
		return {user for user in audience if frappe.has_permission(doc.doctype, "read", doc, user=user)}

	def test_queries_do_not_grow_with_the_audience(self):
		u = self.make_users(64)
		todo = frappe.get_doc({"doctype": "ToDo", "description": "count", "allocated_to": u[0]}).insert()
		counts = []
		for size in (8, 64):
			self.forget_caches()
			with QueryCounter() as queries:
				readers.readers(todo, u[:size])
			counts.append(queries.count)
		self.assertEqual(counts[0], counts[1], queries.queries)
		self.assertLessEqual(counts[1], 4, queries.queries)

	def test_shares_of_a_deleted_document_still_count(self):
		u = self.make_users(16)
		memo = frappe.get_doc({"doctype": MEMO, "title": "gone"}).insert()
		add_docshare(MEMO, memo.name, u[0], read=1, flags={"ignore_share_permission": True})
		shares = readers.shares_of(MEMO, memo.name)
		frappe.delete_doc(MEMO, memo.name, ignore_permissions=True)
		self.assertEqual(readers.shares_of(MEMO, memo.name).users, set(), "Frappe deletes the shares")
		# u[0] has no role on memos (role set ()): only the share lets it read
		self.assertEqual(readers.readers(memo, [u[0]], shares=shares), {u[0]})
		self.assertEqual(readers.readers(memo, [u[0]]), set())
