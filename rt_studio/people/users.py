"""Facts about many users at once: who exists (by canonical name), their roles and User Permissions.

Frappe answers these one user at a time (`frappe.get_roles`, `get_user_permissions`): a Redis
read per user and, cold, a query or two more. For an audience of thousands that is thousands of
round trips. Here one pipelined Redis read takes what Frappe has already cached for a chunk of
users, one query per table computes the rest exactly as Frappe's own generators would, and the
result is written back to Frappe's caches and put into this request's copy of them
(`frappe.local.cache`). Frappe's own code that runs afterwards (permission checks, controller
`has_permission` hooks) then finds every user's roles and User Permissions in memory. Per chunk of
users the cost is at most two Redis round trips and three queries, whatever the chunk's size,
and one query more for each tree DocType whose values the chunk's User Permissions name (for
the values' descendants); a caller may have another per-user read ride in the first round
trip (`ReadAlong`).
"""

import pickle
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

import frappe
import redis
from frappe.permissions import ALL_USER_ROLE, AUTOMATIC_ROLES, GUEST_ROLE, SYSTEM_USER_ROLE

#: Users per Redis read and per SQL `IN (...)` list: 1,000 recipients cost one of each, and a
#: query stays far below MariaDB's max_allowed_packet (a name is at most 140 characters).
CHUNK = 1000

#: Frappe's per-user cache hashes (frappe.cache_manager.user_cache_keys) this module fills.
ROLES = "roles"
USER_PERMISSIONS = "user_permissions"

#: Roles every (desk) user has without a Has Role row: a Role row naming one means Everyone.
EVERYONE_ROLES = frozenset({"All", "Desk User"})

#: Users Frappe answers for without its caches (all roles; no User Permissions).
UNCACHED_USERS = frozenset({"Administrator", "Guest"})


class ReadAlong(Protocol):
	"""Another per-user read that rides in the round trip `prime` makes for a chunk of users."""

	def add(self, pipe, users: list[str]) -> int:
		"""Queue its commands about `users` on the pipeline; how many it queued."""

	def take(self, users: list[str], answers: list) -> None:
		"""The answers to those commands, in order."""


@dataclass(frozen=True, slots=True)
class UserRecord:
	"""A user as the User table has it."""

	name: str
	enabled: bool
	user_type: str


def chunks(items: Sequence, size: int = CHUNK) -> Iterable[list]:
	iterator = iter(items)
	while chunk := list(islice(iterator, size)):
		yield chunk


def lookup_key(value: str) -> str:
	"""How a user name is matched: MariaDB compares names without case and trailing spaces."""
	return value.strip().casefold()


def find_users(values: Iterable[str]) -> dict[str, UserRecord]:
	"""{lookup_key(value): record} for the values that name an existing user (one query per chunk)."""
	wanted = sorted({value.strip() for value in values if isinstance(value, str) and value.strip()})
	found: dict[str, UserRecord] = {}
	for chunk in chunks(wanted):
		for name, enabled, user_type in frappe.db.sql(
			"select name, enabled, user_type from `tabUser` where name in %(names)s", {"names": chunk}
		):
			found[lookup_key(name)] = UserRecord(name, bool(enabled), user_type or "")
	return found


def prime(
	users: Sequence[str], user_types: dict[str, str] | None = None, read_along: ReadAlong | None = None
) -> None:
	"""Put the roles and User Permissions of `users` (canonical names) into this request's cache.

	`user_types` ({user: user_type}, when the caller has read them already) saves a query.
	`read_along` reads something else about each chunk of the users in the same round trip.
	"""
	for chunk in chunks(list(dict.fromkeys(users))):
		_prime_chunk(chunk, user_types or {}, read_along)


def primed_roles() -> dict[str, list[str]]:
	"""{user: roles} of the users `prime` has seen: what `frappe.get_roles` answers for them."""
	return _local(ROLES)


def forget_local_user_facts(users: Sequence[str]) -> None:
	"""Drop this request's copies of the users' roles and User Permissions (Redis keeps them)."""
	for name in (ROLES, USER_PERMISSIONS):
		local = _local(name)
		for user in users:
			local.pop(user, None)


def _local(name: str) -> dict:
	return frappe.local.cache.setdefault(frappe.cache.make_key(name), {})


def _prime_chunk(users: list[str], user_types: dict[str, str], read_along: ReadAlong | None) -> None:
	roles, perms = _local(ROLES), _local(USER_PERMISSIONS)
	cached = [u for u in users if u not in UNCACHED_USERS]
	need_roles = [u for u in cached if u not in roles]
	need_perms = [u for u in cached if u not in perms]
	if not need_roles and not need_perms and read_along is None:
		return
	_read_cached(need_roles, need_perms, read_along, users)
	computed_roles = _roles_from_db([u for u in need_roles if u not in roles], user_types)
	computed_perms = _user_permissions_from_db([u for u in need_perms if u not in perms])
	roles.update(computed_roles)
	perms.update(computed_perms)
	_write_back(computed_roles, computed_perms)


def _read_cached(
	need_roles: list[str], need_perms: list[str], read_along: ReadAlong | None, chunk: list[str]
) -> None:
	"""What Frappe has cached in Redis for these users, and what `read_along` reads about the
	chunk, in one round trip."""
	pipe = frappe.cache.pipeline()
	asked = []
	for name, users in ((ROLES, need_roles), (USER_PERMISSIONS, need_perms)):
		if users:
			pipe.hmget(frappe.cache.make_key(name), users)
			asked.append((name, users))
	riding = read_along.add(pipe, chunk) if read_along is not None else 0
	values = []
	with suppress(redis.exceptions.ConnectionError):
		values = pipe.execute()
	if riding and values:
		read_along.take(chunk, values[len(asked) :])
	for (name, users), answers in zip(asked, values, strict=False):
		local = _local(name)
		for user, raw in zip(users, answers, strict=True):
			if raw is not None:
				local[user] = pickle.loads(raw)


def _write_back(roles: dict[str, list], perms: dict[str, dict]) -> None:
	"""Store what was computed where `frappe.cache.hget` would have stored it."""
	if not roles and not perms:
		return
	pipe = frappe.cache.pipeline()
	for name, values in ((ROLES, roles), (USER_PERMISSIONS, perms)):
		if values:
			pipe.hset(frappe.cache.make_key(name), mapping={u: pickle.dumps(v) for u, v in values.items()})
	with suppress(redis.exceptions.ConnectionError):
		pipe.execute()


def _roles_from_db(users: list[str], user_types: dict[str, str]) -> dict[str, list[str]]:
	"""`frappe.permissions.get_roles`'s generator, for many users in one or two queries."""
	if not users:
		return {}
	found: dict[str, list[str]] = {u: [] for u in users}
	by_key = {lookup_key(u): u for u in users}
	for parent, role in frappe.db.sql(
		"""select parent, role from `tabHas Role`
		where parenttype = 'User' and parent in %(users)s and role not in %(automatic)s""",
		{"users": users, "automatic": AUTOMATIC_ROLES},
	):
		user = by_key.get(lookup_key(parent))
		if user is not None:
			found[user].append(role)
	types = {u: user_types[u] for u in users if u in user_types}
	unknown = [u for u in users if u not in types]
	if unknown:
		for name, user_type in frappe.db.sql(
			"select name, user_type from `tabUser` where name in %(users)s", {"users": unknown}
		):
			types[by_key.get(lookup_key(name), name)] = user_type
	for user, roles in found.items():
		roles += [ALL_USER_ROLE, GUEST_ROLE]
		if types.get(user) == "System User":
			roles.append(SYSTEM_USER_ROLE)
	return found


def _user_permissions_from_db(users: list[str]) -> dict[str, frappe._dict]:
	"""`get_user_permissions`' computation (descendants of tree values included) for many users."""
	if not users:
		return {}
	# Frappe's query (frappe.get_all's default order, newest first) for many users at once
	rows = frappe.db.sql(
		"""select user, allow, for_value, applicable_for, is_default, hide_descendants
		from `tabUser Permission` where user in %(users)s order by modified desc""",
		{"users": users},
		as_dict=True,
	)
	by_key = {lookup_key(u): u for u in users}
	found: dict[str, dict] = {u: {} for u in users}
	descendants = _descendants(rows)
	for row in rows:
		user = by_key.get(lookup_key(row.user))
		if user is None:
			continue
		out = found[user]
		_add(out, row, row.for_value, row.is_default)
		for name in descendants.get((row.allow, row.for_value), ()) if not row.hide_descendants else ():
			_add(out, row, name, False)
	return {u: frappe._dict(out) for u, out in found.items()}


def _add(out: dict, row, name: str, is_default) -> None:
	out.setdefault(row.allow, []).append(
		frappe._dict({"doc": name, "applicable_for": row.get("applicable_for"), "is_default": is_default})
	)


def _descendants(rows) -> dict[tuple[str, str], list[str]]:
	"""{(tree DocType, value): descendants, deepest last as Frappe lists them}, one query per DocType."""
	wanted: dict[str, set[str]] = {}
	for row in rows:
		if not row.hide_descendants and frappe.get_meta(row.allow).is_nested_set():
			wanted.setdefault(row.allow, set()).add(row.for_value)
	found: dict[tuple[str, str], list[str]] = {}
	for doctype, values in wanted.items():
		table = f"`tab{doctype}`"
		names = {lookup_key(v): v for v in values}
		for ancestor, name in frappe.db.sql(
			f"""select a.name, d.name from {table} a join {table} d on d.lft > a.lft and d.rgt < a.rgt
			where a.name in %(values)s order by d.lft desc""",
			{"values": sorted(values)},
		):
			value = names.get(lookup_key(ancestor), ancestor)
			found.setdefault((doctype, value), []).append(name)
	return found
