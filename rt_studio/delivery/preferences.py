"""Each person's preferences, read for every delivery the way mutes are: in bulk and cached.

A person's preferences are Realtime Preference rows (one per rule or channel they chose for, and
one naming neither: their default, quiet hours and digest). Evaluation needs them for every
recipient of a message, so they are cached per user in Redis as one JSON value
(`rt_studio:preferences:<user>`, engine.preferences describes its shape; a user who chose nothing
has `{}`): publishing a rule's or channel's messages asks for all its recipients in one MGET, one
Redis round trip per published outcome and no query, none for recipients already read in this
request or job (several rules firing on one save) or brought along by the first read of the mutes
in a request (`ask_along`: a save's first delivering rule reads both in one round trip). A critical rule's messages, refresh signals
and room messages ask nothing.

Users missing from the cache (first use, after `bench clear-cache`) are read from the database in
one query (two with quiet hours: their time zones) and written back with SET NX. A change of
preferences, or of the user's time zone, writes the user's value again after its commit (a plain
SET), so a fill that read the rows before that commit cannot overwrite it: NX leaves a present value
alone. Two changes of one user committed in the same instant could leave the older value, for at
most CACHE_SECONDS.
"""

import hashlib
import json
from datetime import datetime, timedelta, timezone

import frappe
from frappe.utils import get_system_timezone

from rt_studio import transaction
from rt_studio.delivery.inbox import kept
from rt_studio.engine import preferences as decide

DOCTYPE = "Realtime Preference"
#: How long a cached value lives: bounds the one race the module docstring names.
CACHE_SECONDS = 24 * 3600
#: frappe.local.cache's key (that dict lives for one request or job) of the preferences read.
MEMO = "rt_studio_preferences"
FIELDS = (
	"user",
	"rule",
	"channel",
	"alert",
	"browser",
	"email",
	"quiet_hours_start",
	"quiet_hours_end",
	"digest",
)


def name_of(user: str, rule: str | None, channel: str | None) -> str:
	"""A preference row's name: the same for the same user and target, whatever their lengths."""
	return hashlib.sha1(f"{user}\n{rule or ''}\n{channel or ''}".encode()).hexdigest()[:20]


def clock() -> datetime:
	"""Now, aware. Tests replace it to set the clock of quiet hours."""
	return datetime.now(timezone.utc)


def _key(user: str) -> bytes:
	return frappe.cache.make_key(f"rt_studio:preferences:{user}")


class Chosen:
	"""The preferences of one outcome's recipients, read at once (`for_deliveries`)."""

	def __init__(self, entries: dict[str, dict], now: datetime):
		self.entries, self.now = entries, now

	def message(self, user: str, message: dict) -> dict:
		return decide.apply(message, self.entries.get(user), self.now)


def for_deliveries(deliveries) -> Chosen:
	"""The preferences of every user these deliveries reach, in one Redis round trip (none when no
	delivery is of the kind preferences apply to)."""
	users = [d.user for d in deliveries if d.user and applies(d.message)]
	return Chosen(entries(users) if users else {}, clock())


def applies(message: dict) -> bool:
	"""Preferences apply to messages kept in the inbox (a rule's or channel's, meant to be read) that
	are not critical."""
	return not message.get("critical") and kept(message)


def entries(users) -> dict[str, dict]:
	"""{user: preferences} for `users`: one MGET, and the database for those not cached."""
	memo = _memo()
	asked = [user for user in dict.fromkeys(users) if user not in memo]
	if asked:
		missing = []
		for user, raw in zip(asked, frappe.cache.mget([_key(user) for user in asked]), strict=True):
			if raw is None:
				missing.append(user)
			else:
				memo[user] = json.loads(raw)
		if missing:
			fresh = from_database(missing)
			_write(fresh, only_missing=True)
			memo.update(fresh)
	return {user: memo[user] for user in users}


def ask_along(pipe, users):
	"""Queue the MGET of `users`' cached preferences on another read's pipeline (the mutes' first
	read of a request); returns what takes its answer into this request's memo, or None when every
	one of them is known. Users missing from the cache are left for `entries` to read."""
	memo = _memo()
	asked = [user for user in dict.fromkeys(users) if user not in memo]
	if not asked:
		return None
	pipe.mget([_key(user) for user in asked])

	def take(raws: list) -> None:
		for user, raw in zip(asked, raws, strict=True):
			if raw is not None:
				memo[user] = json.loads(raw)

	return take


def _memo() -> dict:
	"""This request's (or job's) preferences already read: several rules firing on one save ask
	Redis once for their common recipients."""
	return frappe.local.cache.setdefault(MEMO, {})


def entry(user: str) -> dict:
	return entries([user])[user]


def annotate(recipients: list[dict], rule: str | None, critical: bool) -> None:
	"""Add each recipient's effective preference in words ("quiet hours until 07:00", "alert off",
	"email off") to a Preview's or Test Fire's recipients, read as a delivery reads them."""
	found = entries([rec["user"] for rec in recipients if rec.get("user")])
	now = clock()
	for rec in recipients:
		if rec.get("user"):
			rec["preference"] = decide.describe(found.get(rec["user"]), rule, None, critical, now)


def emails_when_unread(user: str, rule: str | None = None, channel: str | None = None) -> bool:
	"""Whether a rule's Email If Not Read Within may email this user: not when they chose Never (or
	the digest) for it. The caller skips the check for critical rules."""
	return decide.effective(entry(user), rule, channel)["email"] == decide.WHEN_UNREAD


def quiet_until(user: str) -> str | None:
	"""The end of the user's quiet hours ("HH:MM", their clock) if they are in them now."""
	return decide.quiet_until(entry(user), clock())


def from_database(users: list[str]) -> dict[str, dict]:
	rows = frappe.get_all(DOCTYPE, filters={"user": ("in", users)}, fields=list(FIELDS), limit_page_length=0)
	found = {user: {} for user in users}
	for row in rows:
		value = found.setdefault(row.user, {})
		choice = {
			"alert": bool(row.alert),
			"browser": bool(row.browser),
			"email": row.email or decide.WHEN_UNREAD,
		}
		if row.rule:
			value.setdefault("rules", {})[row.rule] = choice
		elif row.channel:
			value.setdefault("channels", {})[row.channel] = choice
		else:
			value["default"] = choice
			value["digest"] = row.digest or "Off"
			start, end = hhmm(row.quiet_hours_start), hhmm(row.quiet_hours_end)
			if start and end and start != end:
				value["quiet"] = [start, end]
	zones = time_zones([user for user, value in found.items() if value.get("quiet")])
	for user, zone in zones.items():
		found[user]["tz"] = zone
	return found


def time_zones(users: list[str]) -> dict[str, str]:
	"""Each user's own time zone (User's Time Zone), else the system's."""
	if not users:
		return {}
	own = dict(
		frappe.get_all("User", filters={"name": ("in", users)}, fields=["name", "time_zone"], as_list=True)
	)
	system = get_system_timezone()
	return {user: own.get(user) or system for user in users}


def hhmm(value) -> str | None:
	"""A Time column's value (a timedelta from MariaDB, or text) as "HH:MM"."""
	if value in (None, ""):
		return None
	if isinstance(value, timedelta):
		minutes = int(value.total_seconds()) // 60
		return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"
	return str(value)[:5].rjust(5, "0")


def _write(values: dict[str, dict], only_missing: bool) -> None:
	pipe = frappe.cache.pipeline()
	for user, value in values.items():
		pipe.set(_key(user), json.dumps(value), ex=CACHE_SECONDS, nx=only_missing)
	pipe.execute()


def refresh_after_commit(user: str) -> None:
	"""After this transaction commits, cache the user's preferences as committed."""

	def write():
		_memo().pop(user, None)
		_write(from_database([user]), only_missing=False)

	transaction.after_commit(write)


def on_user_update(doc, method=None) -> None:
	"""doc_events of User: a new time zone moves the user's quiet hours."""
	if doc.has_value_changed("time_zone"):
		refresh_after_commit(doc.name)
