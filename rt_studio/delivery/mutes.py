"""Mutes on the site: each user mutes rules and channels for themselves, for a while or until undone.

A mute is a Realtime Mute document (what the desk lists and what survives a restart) and
an entry in a Redis hash per target, `{user: end in epoch seconds, 0 = until unmuted}`,
written after the commit, the hash's key noted in a set of muted targets. Evaluation reads that
set once per request and asks a hash only for a rule or channel in it (a whole chunk of an
audience in one HMGET): a rule nobody muted costs no round trip, one somebody muted one per chunk,
and no query (a delivery job's chunk none: its HMGET rides with the chunk's roles, see
`read_ahead`).

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

The session user's own mutes are made and undone in desk/muting.py (`rt_studio.api.mute`,
`unmute`); this module keeps their state.
"""

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import frappe
from frappe import _
from frappe.utils import add_to_date, cint, get_system_timezone, now_datetime

from rt_studio import transaction
from rt_studio.delivery import preferences
from rt_studio.engine.mutes import channel_target, rule_target
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE

MUTE_DOCTYPE = "Realtime Mute"
#: Set when the hashes (and TARGETS_KEY) hold every mute of the database; missing after Redis
#: lost them. (Named anew when TARGETS_KEY came: hashes loaded before it are loaded again.)
LOADED_KEY = "rt_studio:mutes_loaded:2"
#: The hashes that have ever held an entry (a Redis set of their keys): read once per request, so
#: evaluating a rule nobody muted costs no round trip (ten rules on a save: ten HMGETs before).
TARGETS_KEY = "rt_studio:mutes_targets"
#: A reload in flight: one key per reload, `<prefix><token>`, gone when Redis loses its data.
RELOAD_PREFIX = "rt_studio:mutes_reload:"
#: A reload not done by then is dropped (its token expired): far longer than reading the
#: mutes and filling the hashes takes, and far shorter than a tombstone lives.
RELOAD_SECONDS = 300
#: How long a tombstone (and an entry that ended) stays: it must outlive every reload that
#: may have read the row before it was removed (RELOAD_SECONDS); the daily clean-up sweeps it.
TOMBSTONE_SECONDS = 24 * 3600


def _hash(target: str) -> bytes:
	return frappe.cache.make_key(f"rt_studio:mutes:{target}")


def epoch(until: datetime | None) -> float:
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
		elif _hash(target) not in muted_targets(users):
			return set()
		else:
			ends = frappe.cache.hmget(_hash(target), users)
		now = time.time()
		return {
			user
			for user, end in zip(users, ends, strict=True)
			if end is not None and (float(end) == 0 or float(end) > now)
		}


def muted_targets(users=()) -> set[bytes]:
	"""The keys of the hashes that have ever held a mute (TARGETS_KEY), read with the
	loaded-marker in one round trip once per request (reloaded first when Redis lost them).
	`users`, the recipients about to be asked: their preferences ride along in that round trip
	(`preferences.ask_along`), which publishing their messages then finds read."""
	targets = frappe.local.cache.get(TARGETS_KEY)
	if targets is None or not frappe.local.cache.get(LOADED_KEY):
		pipe = frappe.cache.pipeline(transaction=False)
		pipe.exists(frappe.cache.make_key(LOADED_KEY))
		pipe.smembers(frappe.cache.make_key(TARGETS_KEY))
		take_preferences = preferences.ask_along(pipe, users)
		loaded, members, *asked = pipe.execute()
		if take_preferences is not None:
			take_preferences(asked[0])
		if not loaded:
			_ensure_loaded()
			members = frappe.cache.pipeline().smembers(frappe.cache.make_key(TARGETS_KEY)).execute()[0]
		frappe.local.cache[LOADED_KEY] = True
		targets = frappe.local.cache[TARGETS_KEY] = set(members)
	return targets


class FirstRead:
	"""This request's first read of the mutes (`muted_targets`) and of the recipients' preferences,
	riding in the round trip that reads the roles of the users whose read access is decided
	(`users.ReadAlong`): a save's first delivering rule pays one round trip for all three. Nothing
	rides once the request has read its mutes; a Redis that lost them is reloaded when asked."""

	def __init__(self):
		self._preferences = None

	def add(self, pipe, users: list[str]) -> int:
		self._preferences = None
		if frappe.local.cache.get(TARGETS_KEY) is not None and frappe.local.cache.get(LOADED_KEY):
			return 0
		pipe.exists(frappe.cache.make_key(LOADED_KEY))
		pipe.smembers(frappe.cache.make_key(TARGETS_KEY))
		self._preferences = preferences.ask_along(pipe, users)
		return 3 if self._preferences is not None else 2

	def take(self, users: list[str], answers: list) -> None:
		loaded, members, *asked = answers
		if self._preferences is not None and asked:
			self._preferences(asked[0])
		if loaded:
			frappe.local.cache[LOADED_KEY] = True
			frappe.local.cache[TARGETS_KEY] = set(members)


def _note_target(pipe, key: bytes) -> None:
	"""A hash that now holds an entry: in TARGETS_KEY, and in this request's copy of it."""
	pipe.sadd(frappe.cache.make_key(TARGETS_KEY), key)
	known = frappe.local.cache.get(TARGETS_KEY)
	if known is not None:
		known.add(key)


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


# KEYS: the reload's token, the loaded-marker, TARGETS_KEY, then one hash per ARGV pair (user, end).
# Fill only entries that are missing (noting each hash in TARGETS_KEY), and only if the token
# survived; then mark the hashes loaded.
FILL = """
if redis.call('EXISTS', KEYS[1]) == 0 then
	return 0
end
for i = 4, #KEYS do
	redis.call('HSETNX', KEYS[i], ARGV[2 * i - 7], ARGV[2 * i - 6])
	redis.call('SADD', KEYS[3], KEYS[i])
end
redis.call('SET', KEYS[2], 1)
redis.call('DEL', KEYS[1])
return 1
"""


def _fill(token: bytes, rows: list[dict]) -> bool:
	"""Fill the hashes from `rows` (read after `token` was registered); False if it was dropped."""
	keys = [_hash(target_of(row["rule"], row["channel"])) for row in rows]
	ends = [value for row in rows for value in (row["user"], epoch(row["until"]))]
	marker, targets = frappe.cache.make_key(LOADED_KEY), frappe.cache.make_key(TARGETS_KEY)
	return bool(frappe.cache.eval(FILL, 3 + len(keys), token, marker, targets, *keys, *ends))


def _tombstone() -> float:
	"""The entry of a removed mute: minus the moment of removal, never in force."""
	return -time.time()


def target_of(rule: str | None, channel: str | None) -> str:
	return rule_target(rule) if rule else channel_target(channel)


def apply_after_commit(user: str, target: str, end: float | None) -> None:
	"""Write the hash once the change is committed (`end` None: unmuted, a tombstone)."""

	def write():
		pipe = frappe.cache.pipeline()  # the plain Redis commands (RedisWrapper's pickle values)
		pipe.hset(_hash(target), user, _tombstone() if end is None else end)
		_note_target(pipe, _hash(target))
		pipe.execute()

	transaction.after_commit(write)


def forget_target(rule: str | None = None, channel: str | None = None) -> None:
	"""On the deletion of a rule or channel: its mutes go with it, the rows now and the hash after
	the commit (left as it was if the deletion rolls back)."""
	field, name = ("rule", rule) if rule else ("channel", channel)
	users = frappe.get_all(MUTE_DOCTYPE, filters={field: name}, pluck="user")
	frappe.db.delete(MUTE_DOCTYPE, {field: name})
	key = _hash(target_of(rule, channel))

	def write():
		pipe = frappe.cache.pipeline()  # MULTI: nobody sees the hash between the two
		pipe.delete(key)
		for user in users:  # tombstones: a reload that read these rows does not bring them back
			pipe.hset(key, user, _tombstone())
		if users:
			_note_target(pipe, key)
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
			key = _hash(target_of(row.rule, row.channel))
			pipe.eval(TOMBSTONE_IF_UNCHANGED, 1, key, row.user, epoch(row.until), tombstone)
		cutoff = time.time() - TOMBSTONE_SECONDS
		for key in frappe.cache.scan_iter(match=frappe.cache.make_key("rt_studio:mutes:*")):
			pipe.eval(SWEEP, 1, key, cutoff)
		pipe.execute()

	transaction.after_commit(write)
	frappe.db.commit()
