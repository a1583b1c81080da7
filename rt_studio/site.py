"""The engine's interfaces implemented with real Frappe calls.

Everything here answers one question the engine asks (who has this role, may this user
read that document ...) with as few queries as it can: audiences of a thousand users cost
a handful of queries, not a thousand.
"""

import functools
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import frappe
from frappe.utils.safe_exec import VALID_UTILS

from rt_studio.engine.rules import Channel, parse_channel

SYSTEM_USERS_ONLY = {"user_type": "System User"}
AUTOMATIC_ROLES = {"All", "Desk User"}


@functools.cache
def frappe_utils() -> dict:
	"""The `frappe.utils` helpers a Notification condition can call, taken from Frappe itself."""
	import frappe.utils.data

	return {
		name: getattr(frappe.utils.data, name) for name in VALID_UTILS if hasattr(frappe.utils.data, name)
	}


def site_now() -> datetime:
	"""Now in the site's time zone, with its offset (so `sent_at` means one instant anywhere)."""
	from zoneinfo import ZoneInfo

	return frappe.utils.now_datetime().replace(tzinfo=ZoneInfo(frappe.utils.get_system_timezone()))


class FrappeDirectory:
	"""Users, roles, permissions and relations read from the site, memoised for one event."""

	def __init__(self, source_doc=None):
		#: The real Document of the event: permission checks use it instead of reloading it.
		self.source_doc = source_doc
		self._enabled: dict[str, bool] = {}
		#: Read verdicts of this event, shared by every rule that matched it.
		self._readable: dict[tuple, bool] = {}
		self._channels: dict[str, Channel | None] = {}

	def _remember_enabled(self, users: list[str]) -> list[str]:
		self._enabled.update(dict.fromkeys(users, True))
		return users

	def is_enabled(self, user: str) -> bool:
		if user not in self._enabled:
			self._enabled[user] = bool(frappe.db.get_value("User", user, "enabled"))
		return self._enabled[user]

	def enabled_users(self, users: Sequence[str]) -> set[str]:
		return {user for user in users if self.is_enabled(user)}

	def users_with_role(self, role: str) -> list[str]:
		if role == "Guest":
			return []
		if role in AUTOMATIC_ROLES:
			return self.all_users()
		HasRole, User = frappe.qb.DocType("Has Role"), frappe.qb.DocType("User")
		rows = (
			frappe.qb.from_(HasRole)
			.join(User)
			.on(User.name == HasRole.parent)
			.select(User.name)
			.distinct()
			.where((HasRole.role == role) & (HasRole.parenttype == "User") & (User.enabled == 1))
			.where(User.name != "Guest")
			.run(pluck=True)
		)
		return self._remember_enabled(rows)

	def all_users(self) -> list[str]:
		users = frappe.get_all(
			"User",
			filters={"enabled": 1, **SYSTEM_USERS_ONLY},
			pluck="name",
			limit_page_length=0,
			order_by="name",
		)
		return self._remember_enabled([u for u in users if u != "Guest"])

	def can_read(self, user: str, doctype: str, docname: str, doc: Mapping | None) -> bool:
		key = (user, doctype, docname)
		if key not in self._readable:
			self._readable[key] = self._can_read(user, doctype, docname)
		return self._readable[key]

	def readers(self, users: Sequence[str], doctype: str, docname: str, doc: Mapping | None) -> set[str]:
		return {user for user in users if self.can_read(user, doctype, docname, doc)}

	def _can_read(self, user: str, doctype: str, docname: str) -> bool:
		source = self.source_doc
		target = (
			source if source is not None and source.doctype == doctype and source.name == docname else docname
		)
		try:
			return bool(frappe.has_permission(doctype, "read", doc=target, user=user))
		except frappe.DoesNotExistError:
			return False

	def readable_fields(self, user: str | None, doctype: str, fieldnames: Iterable[str]) -> list[str]:
		meta = frappe.get_meta(doctype)
		# level 0 goes with read access to the document (a shared document has no role rights)
		levels = {0} if user is None else {0, *meta.get_permlevel_access("read", user=user)}
		readable = []
		for fieldname in fieldnames:
			df = meta.get_field(fieldname)
			if (df.permlevel if df else 0) in levels:
				readable.append(fieldname)
		return readable

	def assignees(self, doctype: str, docname: str, doc: Mapping) -> list[str]:
		from rt_studio.engine.audience import assigned_users

		# `_assign` is not in Document.as_dict(), so the event's snapshot never has it
		return assigned_users({"_assign": frappe.db.get_value(doctype, docname, "_assign")})

	def followers(self, doctype: str, docname: str, doc: Mapping) -> list[str]:
		follows = frappe.get_all(
			"Document Follow", filters={"ref_doctype": doctype, "ref_docname": docname}, pluck="user"
		)
		commenters = frappe.get_all(
			"Comment",
			filters={"reference_doctype": doctype, "reference_name": docname, "comment_type": "Comment"},
			pluck="owner",
			distinct=True,
		)
		return follows + commenters

	def get_channel(self, name: str) -> Channel | None:
		if name not in self._channels:
			self._channels[name] = load_channel(name)
		return self._channels[name]


def load_channel(name: str) -> Channel | None:
	"""The channel as the engine sees it, or None when it does not exist or is invalid."""
	if not frappe.db.exists("Realtime Channel", name):
		return None
	doc = frappe.get_doc("Realtime Channel", name)
	channel, _problems = parse_channel(doc.as_dict())
	return channel


class RedisRateLimiter:
	"""A sliding-window log per key in a Redis sorted set, checked and added atomically.

	One Lua script per check, so concurrent workers cannot both take the last slot.
	"""

	SCRIPT = """
local key, now, window, limit, consume, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
	tonumber(ARGV[3]), ARGV[4], ARGV[5]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then return 0 end
if consume == '1' then
	redis.call('ZADD', key, now, member)
	redis.call('EXPIRE', key, math.ceil(window) + 1)
end
return 1
"""

	def _run(self, key: str, limit: int, window: int, consume: bool) -> bool:
		redis_key = frappe.cache.make_key(f"rt_studio:rate:{key}")
		args = (time.time(), window, limit, "1" if consume else "0", uuid.uuid4().hex)
		return bool(frappe.cache.eval(self.SCRIPT, 1, redis_key, *args))

	def hit(self, key: str, limit: int, window: int) -> bool:
		return self._run(key, limit, window, True)

	def peek(self, key: str, limit: int, window: int) -> bool:
		return self._run(key, limit, window, False)

	def hit_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return [self.hit(key, limit, window) for key in keys]

	def peek_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return [self.peek(key, limit, window) for key in keys]


class UnlimitedRateLimiter:
	"""For test-fire: an explicit test is never rate limited and uses up nothing."""

	def hit(self, key: str, limit: int, window: int) -> bool:
		return True

	peek = hit

	def hit_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		return [True] * len(keys)

	peek_many = hit_many
