"""The engine's interfaces implemented with real Frappe calls.

Everything here answers one question the engine asks (who has this role, may these users
read that document ...) for many users at once: users are looked up, and read access is
decided (`rt_studio.people.readers`), for a whole chunk of an audience in a few queries and Redis
round trips, so the cost of an audience does not grow with its size (see
`benchmarks/site.py` for the numbers).
"""

import functools
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import frappe
from frappe.utils.safe_exec import VALID_UTILS

from rt_studio.engine.budget import SITE_CONFIG_KEY
from rt_studio.engine.interfaces import Channel
from rt_studio.engine.user_names import user_key
from rt_studio.people.channels import load_channel
from rt_studio.people.readers import Shares
from rt_studio.people.readers import readers as read_access
from rt_studio.people.users import (
	EVERYONE_ROLES,
	ReadAlong,
	UserRecord,
	find_users,
	forget_local_user_facts,
)


def _limit(limit: int | None) -> str:
	return "" if limit is None else f"limit {int(limit)}"


@functools.cache
def frappe_utils() -> dict:
	"""The `frappe.utils` helpers a Notification condition can call, taken from Frappe itself."""
	import frappe.utils.data

	return {
		name: getattr(frappe.utils.data, name) for name in VALID_UTILS if hasattr(frappe.utils.data, name)
	}


def rule_budget_ms() -> float | None:
	"""The time one rule may spend on one event here (site config `rt_studio_rule_budget_ms`,
	in milliseconds); None, the engine's default, when it is unset or not a positive number."""
	value = frappe.conf.get(SITE_CONFIG_KEY)
	if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
		return float(value)
	return None


class FrappeMeta:
	"""Fieldtypes from the DocTypes' meta and the week's first day from System Settings, for
	Filters conditions (`engine.filters`), so they compare as the site's list views do. Read
	when a condition first asks: most rules never do."""

	@functools.cached_property
	def first_day_of_week(self) -> int:
		"""Monday 0 ... Sunday 6, as Python's `date.weekday()`."""
		first = frappe.get_system_settings("first_day_of_the_week") or "Sunday"
		return WEEKDAYS.index(first) if first in WEEKDAYS else 6

	def fieldtype(self, doctype: str, fieldname: str) -> str | None:
		field = frappe.get_meta(doctype).get_field(fieldname)
		return field.fieldtype if field else None


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def site_time_zone() -> str:
	"""The site's time zone: the one given to this job (`known_time_zone`), else System Settings'."""
	return getattr(frappe.local, "rt_studio_time_zone", None) or frappe.utils.get_system_timezone()


@contextmanager
def known_time_zone(time_zone: str | None) -> Iterator[None]:
	"""Within: the site's time zone is `time_zone` (a job's argument, taken from System Settings
	at the event), so neither the job's messages nor its trace read System Settings again."""
	previous = getattr(frappe.local, "rt_studio_time_zone", None)
	frappe.local.rt_studio_time_zone = time_zone or previous
	try:
		yield
	finally:
		frappe.local.rt_studio_time_zone = previous


def site_now() -> datetime:
	"""Now in the site's time zone, with its offset (so `sent_at` means one instant anywhere)."""
	return datetime.now(ZoneInfo(site_time_zone()))


class FrappeDirectory:
	"""Users, roles, permissions and relations read from the site, memoised for one event."""

	def __init__(self, source_doc=None, shares: Shares | None = None, read_along: ReadAlong | None = None):
		#: The real Document of the event: permission checks use it instead of reloading it.
		#: For a deleted document, a Document built from its snapshot.
		self.source_doc = source_doc
		#: The document's shares when it no longer has them (deleted): see `readers.readers`.
		self.shares = shares
		#: Read along with the roles of each chunk of users whose read access is decided (a
		#: delivery job's mutes: `mutes.SiteMutes.read_ahead`).
		self.read_along = read_along
		#: {user_key: UserRecord or None}: every user this event looked up or listed.
		self._users: dict[str, UserRecord | None] = {}
		#: Read verdicts of this event, shared by every rule that matched it.
		self._readable: dict[tuple, bool] = {}
		self._documents: dict[tuple, object] = {}
		self._channels: dict[str, Channel | None] = {}

	def _records(self, values: Sequence[str]) -> dict[str, UserRecord | None]:
		unknown = {user_key(v) for v in values} - self._users.keys()
		if unknown:
			found = find_users([v for v in values if user_key(v) in unknown])
			self._users.update({key: found.get(key) for key in unknown})
		return self._users

	def _listed(self, rows) -> list[str]:
		"""Remember users a query listed as enabled; their names as the site spells them."""
		names = []
		for name, user_type in rows:
			self._users[user_key(name)] = UserRecord(name, True, user_type or "")
			names.append(name)
		return names

	def is_enabled(self, user: str) -> bool:
		record = self._records([user]).get(user_key(user))
		return bool(record and record.enabled)

	def enabled_users(self, users: Sequence[str]) -> set[str]:
		records = self._records(users)
		return {u for u in users if (r := records.get(user_key(u))) is not None and r.enabled}

	def canonical_users(self, values: Sequence[str]) -> dict[str, str | None]:
		records = self._records(values)
		return {v: (r.name if (r := records.get(user_key(v))) else None) for v in values}

	def users_with_role(self, role: str, limit: int | None = None) -> list[str]:
		if role == "Guest":
			return []
		if role in EVERYONE_ROLES:
			return self.all_users(limit)
		return self._listed(
			frappe.db.sql(
				f"""select distinct u.name, u.user_type from `tabHas Role` r join `tabUser` u on u.name = r.parent
				where r.role = %(role)s and r.parenttype = 'User' and u.enabled = 1 and u.name != 'Guest'
				{_limit(limit)}""",
				{"role": role},
			)
		)

	def all_users(self, limit: int | None = None) -> list[str]:
		return self._listed(
			frappe.db.sql(
				f"""select name, user_type from `tabUser`
				where enabled = 1 and user_type = 'System User' and name != 'Guest' order by name {_limit(limit)}"""
			)
		)

	def can_read(self, user: str, doctype: str, docname: str, doc: Mapping | None) -> bool:
		return user in self.readers([user], doctype, docname, doc)

	def readers(self, users: Sequence[str], doctype: str, docname: str, doc: Mapping | None) -> set[str]:
		unknown = [u for u in dict.fromkeys(users) if (u, doctype, docname) not in self._readable]
		if unknown:
			allowed = self._decide_readers(unknown, doctype, docname)
			self._readable.update({(u, doctype, docname): u in allowed for u in unknown})
		return {u for u in users if self._readable[(u, doctype, docname)]}

	def _decide_readers(self, users: list[str], doctype: str, docname: str) -> set[str]:
		target = self._document(doctype, docname)
		if target is None:
			return set()
		records = self._records(users)
		types = {u: r.user_type for u in users if (r := records.get(user_key(u))) is not None}
		shares = self.shares if target is self.source_doc else None
		return read_access(target, users, shares=shares, user_types=types, read_along=self.read_along)

	def forget(self, users: Sequence[str]) -> None:
		"""Drop what was looked up about these users (for a job done with a chunk of them), here and
		in this request's copies of Frappe's caches, so a large audience never accumulates."""
		keys = {user_key(u) for u in users}
		for key in keys:
			self._users.pop(key, None)
		self._readable = {k: v for k, v in self._readable.items() if user_key(k[0]) not in keys}
		forget_local_user_facts(users)

	def _document(self, doctype: str, docname: str):
		source = self.source_doc
		if source is not None and source.doctype == doctype and source.name == docname:
			return source
		key = (doctype, docname)
		if key not in self._documents:
			exists = frappe.db.exists(doctype, docname)
			self._documents[key] = frappe.get_doc(doctype, docname) if exists else None
		return self._documents[key]

	def hidden_fields(self, users: Sequence[str | None], doctype: str) -> dict[str | None, frozenset[str]]:
		"""As Frappe's `apply_fieldlevel_read_permissions`: Administrator reads every field; anyone
		else the fields of level 0 (read access to the document, a share included) and of the
		levels their roles may read. One set per distinct set of levels, shared by its users."""
		leveled = _leveled_fields(doctype)
		if not leveled:
			return dict.fromkeys(users, frozenset())
		meta = frappe.get_meta(doctype)
		by_levels: dict[frozenset, frozenset] = {}
		hidden = {}
		for user in users:
			if user == "Administrator":
				hidden[user] = frozenset()
				continue
			levels = frozenset({0, *(meta.get_permlevel_access("read", user=user) if user else ())})
			if levels not in by_levels:
				by_levels[levels] = frozenset(path for path, level in leveled.items() if level not in levels)
			hidden[user] = by_levels[levels]
		return hidden

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

	def languages(self, users: Sequence[str]) -> dict[str, str]:
		"""Each user's Language, else the site's (System Settings), as Frappe picks a desk's language."""
		if not users:
			return {}
		own = dict(
			frappe.get_all(
				"User", filters={"name": ("in", list(users))}, fields=["name", "language"], as_list=True
			)
		)
		site = frappe.get_system_settings("language") or "en"
		return {user: own.get(user) or site for user in users}

	def translator(self, language: str):
		"""Frappe's translations for `language` (apps' and the site's Translation records; cached)."""
		from frappe.translate import get_all_translations

		texts = get_all_translations(language)
		return lambda text, *args, **kwargs: texts.get(text, text) if isinstance(text, str) else str(text)


def _leveled_fields(doctype: str) -> dict[str, int]:
	"""{field or table.field: permission level} of the fields above level 0 (Frappe caches the
	metas this reads)."""
	meta = frappe.get_meta(doctype)
	leveled = {df.fieldname: df.permlevel for df in meta.fields if df.permlevel}
	for table in meta.get_table_fields():
		for df in frappe.get_meta(table.options).fields:
			if df.permlevel:
				leveled[f"{table.fieldname}.{df.fieldname}"] = df.permlevel
	return leveled
