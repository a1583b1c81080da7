"""Many users at once, written straight into the User and Has Role tables.

For audiences of a hundred users or more: inserting them as documents would take minutes and
trip Frappe's sign-up throttle. No hook runs, so they have no Notification Settings and no
welcome mail; Frappe's caches of them are cleared when they are removed. Their names start with
CROWD_PREFIX, so a run that was interrupted is cleaned up by the next one (`sweep_crowds`).
"""

from contextlib import contextmanager
from dataclasses import dataclass

import frappe
from frappe.cache_manager import user_cache_keys

CROWD_PREFIX = "rt-crowd-"


@dataclass(frozen=True)
class Member:
	name: str
	roles: tuple[str, ...] = ()
	user_type: str = "System User"
	enabled: int = 1


def crowd_names(count: int) -> list[str]:
	tag = frappe.generate_hash(length=6)
	return [f"{CROWD_PREFIX}{tag}-{i:05d}@example.com" for i in range(count)]


def insert_crowd(members: list[Member]) -> list[str]:
	"""Insert the users (no hooks); their names."""
	now = frappe.utils.now()
	frappe.db.bulk_insert(
		"User",
		[
			"name",
			"email",
			"first_name",
			"enabled",
			"user_type",
			"creation",
			"modified",
			"owner",
			"modified_by",
		],
		[
			(
				m.name,
				m.name,
				m.name.split("@")[0],
				m.enabled,
				m.user_type,
				now,
				now,
				"Administrator",
				"Administrator",
			)
			for m in members
		],
	)
	frappe.db.bulk_insert(
		"Has Role",
		[
			"name",
			"parent",
			"parenttype",
			"parentfield",
			"role",
			"creation",
			"modified",
			"owner",
			"modified_by",
		],
		[
			(
				frappe.generate_hash(length=12),
				m.name,
				"User",
				"roles",
				role,
				now,
				now,
				"Administrator",
				"Administrator",
			)
			for m in members
			for role in m.roles
		],
	)
	return [m.name for m in members]


def forget_cached(names: list[str]) -> None:
	"""Drop Frappe's per-user caches of these users, in Redis and in this request."""
	if not names:
		return
	pipe = frappe.cache.pipeline()
	for cache_name in user_cache_keys:
		key = frappe.cache.make_key(cache_name)
		pipe.hdel(key, *names)
		local = frappe.local.cache.get(key)
		for name in names if local else ():
			local.pop(name, None)
	for name in names:
		key = frappe.cache.make_key(frappe.get_document_cache_key("User", name))
		pipe.delete(key)
		frappe.local.cache.pop(key, None)
	pipe.execute()
	frappe.local.role_permissions = {}


def remove_crowd(names: list[str]) -> None:
	"""Delete the users and what RT Studio and Frappe made for them."""
	for start in range(0, len(names), 1000):
		chunk = names[start : start + 1000]
		for doctype, field in (
			("Has Role", "parent"),
			("User Permission", "user"),
			("DocShare", "user"),
			("Notification Log", "for_user"),
			("User", "name"),
		):
			frappe.db.delete(doctype, {field: ["in", chunk]})
	forget_cached(names)


@contextmanager
def make_crowd(count: int, roles: tuple[str, ...] = (), *, commit: bool = True):
	"""`count` enabled System Users with `roles`; with `commit`, committed for background jobs."""
	names = insert_crowd([Member(name, roles) for name in crowd_names(count)])
	if commit:
		frappe.db.commit()
	try:
		yield names
	finally:
		if commit:
			frappe.db.rollback()
		remove_crowd(names)
		if commit:
			frappe.db.commit()


def sweep_crowds() -> None:
	"""Remove the crowds an interrupted run left behind."""
	left = frappe.get_all("User", filters={"name": ["like", f"{CROWD_PREFIX}%"]}, pluck="name")
	if left:
		remove_crowd(left)
		frappe.db.commit()
