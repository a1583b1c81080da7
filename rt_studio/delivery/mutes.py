"""Mutes on the site: each user mutes rules and channels for themselves, for a while or until undone.

A mute is a Realtime Mute document (what the desk lists and what survives a restart) and
an entry in a Redis hash per target, `{user: end in epoch seconds, 0 = until unmuted}`,
written after the commit. Evaluation asks the hash for a whole chunk of an audience in one
HMGET, so a mute costs the hot path one Redis round trip per chunk and no query (a delivery
job's chunk none: its HMGET rides with the chunk's roles, see `read_ahead`).

Removing a mute never deletes its entry: an unmute, the deletion of its rule or channel and
the clean-up of ended mutes each write a tombstone after their commit, minus the moment of
removal (negative, so never "in force"); the daily clean-up sweeps tombstones, and entries that
ended, after TOMBSTONE_SECONDS. Deleting a rule or channel also drops whatever else its hash
held, so a rule made again under the same name (a fixture, a standard rule) mutes nobody. The
clean-up changes only the entries that still hold the end of a row it deletes, or are missing:
a mute made again meanwhile keeps its own.

When Redis has lost the hashes (a restart, `bench clear-cache`) the first evaluation reloads
every mute from the database, exactly, whatever mutes and unmutes run meanwhile:
- it reads the rows with a locking read, which sees every committed row, not its transaction's
  older snapshot: a change committed before the read is in it (the read waits for mutes being
  written and holds shared locks on the rows until its transaction ends: once per Redis loss);
- a change committed after the read writes its entry after its commit: if that is before the
  fill, the fill leaves it alone (HSETNX fills only missing entries, and an unmute leaves a
  tombstone, not a hole); if after, it overwrites what the fill wrote;
- the reload registers a token (a key with a RELOAD_SECONDS expiry) before reading and fills
  the hashes in one script only while its token is still there: if Redis loses its data
  again meanwhile (entries written since the read gone with it), the fill is dropped and the
  evaluation reloads once more.

Only the session user's own mutes are changed, through `mute` and `unmute`: the API takes
no user, and the desk lets System Managers read mutes, never write them (Administrator, as
everywhere in Frappe, is not bound by permissions). A `critical` rule cannot be muted. A user
mutes only what reached them (a message in their delivery log), a channel they are a member
of, or, if they may read Realtime Rules (System Managers), any rule: anyone else naming a rule
or channel gets one and the same answer, so `mute` tells nobody which rules exist or which are
critical (`_concerns`).
"""

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import frappe
from frappe import _
from frappe.utils import add_to_date, cint, get_system_timezone, now_datetime

from rt_studio.engine.mutes import channel_target, rule_target
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE
from rt_studio.save import transaction

MUTE_DOCTYPE = "Realtime Mute"
#: Set when the hashes hold every mute of the database; missing after Redis lost them.
LOADED_KEY = "rt_studio:mutes_loaded"
#: A reload in flight: one key per reload, `<prefix><token>`, gone when Redis loses its data.
RELOAD_PREFIX = "rt_studio:mutes_reload:"
#: A reload not done by then is dropped (its token expired): far longer than reading the
#: mutes and filling the hashes takes, and far shorter than a tombstone lives.
RELOAD_SECONDS = 300
#: How long a tombstone (and an entry that ended) stays: it must outlive every reload that
#: may have read the row before it was removed (RELOAD_SECONDS); the daily clean-up sweeps it.
TOMBSTONE_SECONDS = 24 * 3600
#: The longest timed mute (a year); anything longer is "until unmuted".
MAX_MINUTES = 366 * 24 * 60
#: The durations the desk offers, in minutes (None: until unmuted).
DURATIONS = {"1 hour": 60, "1 day": 24 * 60, "until unmuted": None}


def _hash(target: str) -> bytes:
	return frappe.cache.make_key(f"rt_studio:mutes:{target}")


def _epoch(until: datetime | None) -> float:
	"""A mute's end (naive, in the site's time zone, as stored) in epoch seconds; 0 for none."""
	if not until:
		return 0
	return until.replace(tzinfo=ZoneInfo(get_system_timezone())).timestamp()


class SiteMutes:
	"""The engine's `Mutes`, answered from Redis."""

	def __init__(self):
		#: {target: {user: end}}: the last chunk's mutes read ahead (`read_ahead`).
		self._ahead: dict[str, dict[str, bytes | None]] = {}

	def read_ahead(self, target: str) -> "MutesAhead":
		"""A read of `target`'s mutes to ride with the users' roles (`users.ReadAlong`): a
		delivery job then asks a chunk's mutes in the round trip that reads the chunk's roles."""
		return MutesAhead(self, target)

	def muted(self, target: str, users) -> set[str]:
		if not users:
			return set()
		users = list(users)
		ahead = self._ahead.get(target, {})
		if all(user in ahead for user in users):
			ends = [ahead[user] for user in users]
		else:
			ends = self._ends(_hash(target), users)
		now = time.time()
		return {
			user
			for user, end in zip(users, ends, strict=True)
			if end is not None and (float(end) == 0 or float(end) > now)
		}

	def _ends(self, key: bytes, users: list[str]) -> list:
		"""The users' mute ends, asked together with the loaded-marker: one round trip."""
		if frappe.local.cache.get(LOADED_KEY):
			return frappe.cache.hmget(key, users)
		pipe = frappe.cache.pipeline()
		pipe.exists(frappe.cache.make_key(LOADED_KEY))
		pipe.hmget(key, users)
		loaded, ends = pipe.execute()
		if loaded:
			frappe.local.cache[LOADED_KEY] = True
		else:
			_ensure_loaded()
			ends = frappe.cache.hmget(key, users)
		return ends


class MutesAhead:
	"""`SiteMutes._ends` for a chunk of users, queued on another pipeline (`users.ReadAlong`).

	Only the last chunk read is kept; a chunk whose answers are missing (the hashes were lost
	and must be reloaded first) is asked again by `SiteMutes.muted`, as without a read ahead.
	"""

	def __init__(self, mutes: SiteMutes, target: str):
		self.mutes, self.target = mutes, target

	def add(self, pipe, users: list[str]) -> int:
		asked = 1
		if not frappe.local.cache.get(LOADED_KEY):
			pipe.exists(frappe.cache.make_key(LOADED_KEY))
			asked = 2
		pipe.hmget(_hash(self.target), users)
		return asked

	def take(self, users: list[str], answers: list) -> None:
		*loaded, ends = answers
		if loaded and not loaded[0]:
			self.mutes._ahead.pop(self.target, None)
			return
		frappe.local.cache[LOADED_KEY] = True
		self.mutes._ahead[self.target] = dict(zip(users, ends, strict=True))


def _ensure_loaded() -> None:
	"""Refill every target's hash from the database when Redis has none (checked once per request)."""
	if frappe.local.cache.get(LOADED_KEY):
		return
	marker = frappe.cache.make_key(LOADED_KEY)
	for _attempt in range(2):  # a second time only if Redis lost its data during the first
		if frappe.cache.execute_command("EXISTS", marker) or _fill(_begin_reload(), _rows_in_database()):
			frappe.local.cache[LOADED_KEY] = True
			return


def _begin_reload() -> bytes:
	"""Register a reload before it reads the database: its token (see the module docstring)."""
	token = frappe.cache.make_key(RELOAD_PREFIX + frappe.generate_hash(length=16))
	frappe.cache.execute_command("SET", token, 1, "EX", RELOAD_SECONDS)
	return token


def _rows_in_database() -> list[dict]:
	"""Every mute, by a locking read: the latest committed rows, not this transaction's snapshot."""
	lock = "for share" if frappe.db.db_type == "postgres" else "lock in share mode"
	return frappe.db.sql(f"select user, rule, channel, `until` from `tab{MUTE_DOCTYPE}` {lock}", as_dict=True)


# KEYS: the reload's token, the loaded-marker, then one hash per ARGV pair (user, end). Fill only
# entries that are missing, and only if the token survived; then mark the hashes loaded.
FILL = """
if redis.call('EXISTS', KEYS[1]) == 0 then
	return 0
end
for i = 3, #KEYS do
	redis.call('HSETNX', KEYS[i], ARGV[2 * i - 5], ARGV[2 * i - 4])
end
redis.call('SET', KEYS[2], 1)
redis.call('DEL', KEYS[1])
return 1
"""


def _fill(token: bytes, rows: list[dict]) -> bool:
	"""Fill the hashes from `rows` (read after `token` was registered); False if it was dropped."""
	keys = [_hash(_target(row["rule"], row["channel"])) for row in rows]
	ends = [value for row in rows for value in (row["user"], _epoch(row["until"]))]
	marker = frappe.cache.make_key(LOADED_KEY)
	return bool(frappe.cache.eval(FILL, 2 + len(keys), token, marker, *keys, *ends))


def _tombstone() -> float:
	"""The entry of a removed mute: minus the moment of removal, never in force."""
	return -time.time()


def _target(rule: str | None, channel: str | None) -> str:
	return rule_target(rule) if rule else channel_target(channel)


def _apply_after_commit(user: str, target: str, end: float | None) -> None:
	"""Write the hash once the change is committed (`end` None: unmuted, a tombstone)."""

	def write():
		pipe = frappe.cache.pipeline()  # the plain Redis commands (RedisWrapper's pickle values)
		pipe.hset(_hash(target), user, _tombstone() if end is None else end)
		pipe.execute()

	transaction.after_commit(write)


def _session_user() -> str:
	user = frappe.session.user
	if user == "Guest":
		raise frappe.PermissionError(_("Log in to change your notifications"))
	return user


def _checked_target(user: str, rule: str | None, channel: str | None) -> tuple[str | None, str | None]:
	"""The rule or channel named, after checking it concerns the user, exists and may be muted."""
	if bool(rule) == bool(channel):
		frappe.throw(_("Name one rule or one channel to mute"), title=_("Mute"))
	if not _concerns(user, rule, channel):
		frappe.throw(
			_("You have received nothing from {0} to mute: mute it from one of its messages").format(
				frappe.bold(rule or channel)
			),
			title=_("Mute"),
		)
	if rule:
		critical = frappe.db.get_value(RULE_DOCTYPE, rule, "critical")
		if critical is None:
			frappe.throw(_("Realtime Rule {0} does not exist").format(frappe.bold(rule)))
		if cint(critical):
			frappe.throw(
				_("Realtime Rule {0} is critical: everyone it names receives it, it cannot be muted").format(
					frappe.bold(rule)
				)
			)
		return rule, None
	if not frappe.db.exists(CHANNEL_DOCTYPE, channel):
		frappe.throw(_("Realtime Channel {0} does not exist").format(frappe.bold(channel)))
	return None, channel


def _concerns(user: str, rule: str | None, channel: str | None) -> bool:
	"""Whether the user may mute `rule` or `channel`, without telling anyone else it exists.

	A rule: if a message of it is in the user's delivery log (what the desk's alerts and "My
	realtime notifications" offer to mute), or if the user may read Realtime Rules (System
	Managers: they list every rule anyway, and may mute one before it sends them anything). A
	channel: if a post of it is in the log, or if the user may read it (a member, or a System
	Manager). Anyone else learns nothing from the answer: not whether it exists, nor whether it
	is critical.
	"""
	from rt_studio.delivery.delivery_log import received_from
	from rt_studio.people.permissions import is_manager, is_member

	if rule:
		return frappe.has_permission(RULE_DOCTYPE, "read", user=user) or received_from(user, rule=rule)
	if is_manager(user) or (frappe.db.exists(CHANNEL_DOCTYPE, channel) and is_member(channel, user)):
		return True
	return received_from(user, channel=channel)


def _minutes(minutes) -> int | None:
	if minutes in (None, "", "null"):
		return None
	value = cint(minutes)
	if not 1 <= value <= MAX_MINUTES:
		frappe.throw(
			_("minutes must be between 1 and {0}, or empty to mute until you unmute").format(MAX_MINUTES)
		)
	return value


@frappe.whitelist(methods=["POST"])
def mute(rule: str | None = None, channel: str | None = None, minutes: int | None = None) -> dict:
	"""Mute a rule or a channel for the session user: for `minutes`, or until unmuted (None)."""
	user = _session_user()
	rule, channel = _checked_target(user, rule, channel)
	minutes = _minutes(minutes)
	_delete_own(user, rule, channel)
	until = add_to_date(now_datetime(), minutes=minutes) if minutes else None
	frappe.get_doc(
		{"doctype": MUTE_DOCTYPE, "user": user, "rule": rule, "channel": channel, "until": until}
	).insert(ignore_permissions=True)
	_apply_after_commit(user, _target(rule, channel), _epoch(until))
	return {"rule": rule, "channel": channel, "until": until}


@frappe.whitelist(methods=["POST"])
def unmute(rule: str | None = None, channel: str | None = None) -> dict:
	"""Undo the session user's mute of a rule or a channel (nothing happens when there is none).

	Accepted for what the user has muted, or may mute (`_concerns`); anything else gets one
	answer, whether it exists or not."""
	user = _session_user()
	if bool(rule) == bool(channel):
		frappe.throw(_("Name one rule or one channel to unmute"), title=_("Unmute"))
	removed = _delete_own(user, rule, channel)
	if not removed and not _concerns(user, rule, channel):
		frappe.throw(
			_("You have not muted {0}: there is nothing to unmute").format(frappe.bold(rule or channel)),
			title=_("Unmute"),
		)
	_apply_after_commit(user, _target(rule, channel), None)
	return {"rule": rule, "channel": channel, "unmuted": removed}


def _delete_own(user: str, rule: str | None, channel: str | None) -> int:
	filters = {"user": user, "rule": rule} if rule else {"user": user, "channel": channel}
	names = frappe.get_all(MUTE_DOCTYPE, filters=filters, pluck="name")
	for name in names:
		frappe.delete_doc(MUTE_DOCTYPE, name, ignore_permissions=True, force=True)
	return len(names)


def own_mutes(user: str) -> list[dict]:
	"""The user's mutes in force, with whether each names a critical rule (then it does nothing)."""
	rows = frappe.get_all(
		MUTE_DOCTYPE,
		filters={"user": user},
		fields=["rule", "channel", "until"],
		order_by="creation desc",
		limit_page_length=0,
	)
	now = now_datetime()
	critical = set(frappe.get_all(RULE_DOCTYPE, filters={"critical": 1}, pluck="name"))
	return [
		{"rule": row.rule, "channel": row.channel, "until": row.until, "critical": row.rule in critical}
		for row in rows
		if not row.until or row.until > now
	]


def forget_target(rule: str | None = None, channel: str | None = None) -> None:
	"""On the deletion of a rule or channel: its mutes go with it, the rows now and the hash after
	the commit (left as it was if the deletion rolls back)."""
	field, name = ("rule", rule) if rule else ("channel", channel)
	users = frappe.get_all(MUTE_DOCTYPE, filters={field: name}, pluck="user")
	frappe.db.delete(MUTE_DOCTYPE, {field: name})
	key = _hash(_target(rule, channel))

	def write():
		pipe = frappe.cache.pipeline()  # MULTI: nobody sees the hash between the two
		pipe.delete(key)
		for user in users:  # tombstones: a reload that read these rows does not bring them back
			pipe.hset(key, user, _tombstone())
		pipe.execute()

	transaction.after_commit(write)


# KEYS[1] a hash, ARGV[1] a user, ARGV[2] the end of the row deleted, ARGV[3] the tombstone:
# write it if the entry still holds that row's end (not a mute made again since) or is missing
# (Redis lost it: a reload that read the row before its deletion must not fill it back).
TOMBSTONE_IF_UNCHANGED = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value or value == ARGV[2] then
	redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
	return 1
end
return 0
"""

# KEYS[1] a hash, ARGV[1] a moment: drop the tombstones and ended entries older than it.
SWEEP = """
local entries, swept = redis.call('HGETALL', KEYS[1]), 0
for i = 1, #entries, 2 do
	local value = tonumber(entries[i + 1])
	if value and value ~= 0 and math.abs(value) < tonumber(ARGV[1]) then
		redis.call('HDEL', KEYS[1], entries[i])
		swept = swept + 1
	end
end
return swept
"""


def clean_up() -> None:
	"""Delete mutes that ended and mutes of rules or channels that no longer exist, with their
	Redis entries; sweep old tombstones (daily)."""
	rows = frappe.get_all(
		MUTE_DOCTYPE, fields=["name", "user", "rule", "channel", "until"], limit_page_length=0
	)
	rules = set(frappe.get_all(RULE_DOCTYPE, pluck="name"))
	channels = set(frappe.get_all(CHANNEL_DOCTYPE, pluck="name"))
	now = now_datetime()
	ended = [
		row
		for row in rows
		if (row.until and row.until <= now)
		or (row.rule and row.rule not in rules)
		or (row.channel and row.channel not in channels)
	]
	if ended:
		frappe.db.delete(MUTE_DOCTYPE, {"name": ("in", [row.name for row in ended])})

	def write():
		pipe = frappe.cache.pipeline(transaction=False)
		tombstone = _tombstone()
		for row in ended:
			key = _hash(_target(row.rule, row.channel))
			pipe.eval(TOMBSTONE_IF_UNCHANGED, 1, key, row.user, _epoch(row.until), tombstone)
		cutoff = time.time() - TOMBSTONE_SECONDS
		for key in frappe.cache.scan_iter(match=frappe.cache.make_key("rt_studio:mutes:*")):
			pipe.eval(SWEEP, 1, key, cutoff)
		pipe.execute()

	transaction.after_commit(write)
	frappe.db.commit()


@frappe.whitelist()
def my_notifications() -> dict:
	"""The session user's mutes, and the rules and channels that sent them messages lately
	(from their delivery log), for the desk's "My realtime notifications" list."""
	from rt_studio.delivery.delivery_log import read

	user = _session_user()
	mutes = own_mutes(user)
	rules = {r.name: r.critical for r in frappe.get_all(RULE_DOCTYPE, fields=["name", "critical"])}
	channels = set(frappe.get_all(CHANNEL_DOCTYPE, pluck="name"))
	critical = {name for name, flag in rules.items() if flag}
	recent: dict[tuple, dict] = {}
	for message in reversed(read(user, 0)):  # newest first
		rule, channel = message.get("rule"), message.get("channel")
		if rule not in rules and channel not in channels:
			continue  # deleted since, or neither
		entry = recent.setdefault(
			(rule, channel),
			{
				"rule": rule,
				"channel": channel,
				"count": 0,
				"last_subject": message.get("subject"),
				"last_sent_at": message.get("sent_at"),
				"critical": rule in critical,
			},
		)
		entry["count"] += 1
	return {"mutes": mutes, "recent": list(recent.values()), "durations": DURATIONS}
