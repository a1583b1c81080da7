"""Each user's recent deliveries, numbered, so a desk that lost its socket can catch up.

Frappe's realtime is publish/subscribe with no storage: a desk offline for a few seconds
misses whatever was published meanwhile. So every message RT Studio publishes to a user
gets `seq`, an integer that increases per user, and a copy in that user's log in Redis;
`missed(since)` returns the copies with a higher `seq`, oldest first, exactly as published.

A delivery is numbered and logged just before its transaction commits (Frappe's
`before_commit`: one Lua call per STAMP_CHUNK deliveries, all sent in one round trip) and
published after the commit (outbox.py): a transaction that rolls back neither
sends nor logs anything. A commit that fails in a later step of RT Studio's (the inbox write
meeting a deadlock) takes its entries out of the logs again, leaving its numbers unused; only a
failing SQL COMMIT itself, after the numbering, leaves a logged message that was never sent. Two transactions committing at the
same instant may publish their numbers out of order; the desk runtime keeps the numbers it
has shown, not only the highest, so neither message is lost or shown twice. If Redis fails at
that moment the commit fails (the save with it, visibly) and nothing is sent: a message without a
number could be neither kept nor replayed.

A user's counter starts from the clock in milliseconds, so it keeps increasing even when
Redis loses its data (it then starts again from a later moment). The same numbering and
logging serve other logs with their own keys and retention (`Log`): a document's room keeps its
viewers' messages that way (room_log.py). Cost: nothing on a save
that delivers nothing; one round trip per committing transaction that does (measured in
benchmarks/site.py).
"""

import json
import time
from dataclasses import dataclass
from datetime import timedelta

import frappe
from frappe.utils import now_datetime

from rt_studio import transaction
from rt_studio.delivery.inbox import DOCTYPE as INBOX_DOCTYPE

#: The deliveries each user's log keeps whatever their age: a desk back from a long break
#: still gets the last screenful.
KEEP_LAST = 200
#: ...and every delivery younger than this, however many there were (up to MAX_KEPT).
KEEP_SECONDS = 24 * 3600
#: Hard bound per user, so a flood (a rule gone wrong) cannot grow Redis without limit.
MAX_KEPT = 2000
#: Deliveries numbered per Lua call: a large audience's commit runs several short scripts (sent
#: in one pipeline) rather than one long one that would hold up every other client of Redis.
STAMP_CHUNK = 500
#: A log (and counter) nobody wrote to for this long is dropped: Redis holds logs of the
#: users active in the last week, not of every user the site ever had.
IDLE_SECONDS = 7 * 24 * 3600
#: How long a user's log keeps its entries: (KEEP_LAST, KEEP_SECONDS, MAX_KEPT, IDLE_SECONDS).
USER_RETENTION = (KEEP_LAST, KEEP_SECONDS, MAX_KEPT, IDLE_SECONDS)

# For each (counter key, log key) pair in KEYS and message in ARGV[5..]: give the next number,
# log `<ms>|{"seq":N,...}` under score N, drop the oldest entries beyond KEEP_LAST that are
# older than KEEP_SECONDS (and anything beyond MAX_KEPT), keep both keys for IDLE_SECONDS.
STAMP = """
local now, keep_last, keep_ms, max_kept, idle = tonumber(ARGV[1]), tonumber(ARGV[2]),
	tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local seqs = {}
for i = 1, #KEYS / 2 do
	local counter, log = KEYS[2 * i - 1], KEYS[2 * i]
	redis.call('SET', counter, now, 'NX')
	local seq = redis.call('INCR', counter)
	local body = ARGV[5 + i]
	redis.call('ZADD', log, seq, now .. '|{"seq":' .. seq .. ',' .. string.sub(body, 2))
	local n = redis.call('ZCARD', log)
	if n > max_kept then
		redis.call('ZREMRANGEBYRANK', log, 0, n - max_kept - 1)
		n = max_kept
	end
	while n > keep_last do
		local oldest = redis.call('ZRANGE', log, 0, 0)[1]
		if tonumber(string.sub(oldest, 1, string.find(oldest, '|', 1, true) - 1)) >= now - keep_ms then
			break
		end
		redis.call('ZREMRANGEBYRANK', log, 0, 0)
		n = n - 1
	end
	redis.call('EXPIRE', counter, idle)
	redis.call('EXPIRE', log, idle)
	seqs[i] = seq
end
return seqs
"""


@dataclass(frozen=True)
class Log:
	"""A numbered log other than a user's (a document's room: room_log.py): its two Redis keys and
	its retention, (keep_last, keep_seconds, max_kept, idle_seconds) as USER_RETENTION."""

	counter: bytes
	entries: bytes
	retention: tuple[int, int, int, int]


def _counter_key(user: str) -> bytes:
	return frappe.cache.make_key(f"rt_studio:seq:{user}")


def _log_key(user: str) -> bytes:
	return frappe.cache.make_key(f"rt_studio:missed:{user}")


def record(owner: "str | Log", message: dict) -> dict:
	"""The message to publish to `owner` (a user, or another Log) after the commit: it gets its
	`seq` before the commit.

	Returns a copy: a message shared by several users (a channel post) gets one number per user.
	"""
	copy = {**message, "seq": None}
	_queue().append((owner, copy))
	return copy


def _queue() -> list:
	return transaction.state("rt_studio_delivery_log", list, before_commit=stamp_queued)


def stamp_queued(queue: list) -> None:
	"""Number and log every delivery queued in this transaction (runs just before the commit).

	When Redis cannot number them (it is restarting) the commit fails, and the save with it:
	a message sent without a number could be neither kept in the inbox nor replayed, so a desk
	that was away would never see it. Should a later step of this commit fail (the inbox write
	meeting a deadlock), the entries are taken out of the logs again: `missed` never replays a
	message of a save that did not commit.
	"""
	try:
		stamp(queue)
	finally:
		# also for a part numbered before another part failed: the commit will not happen
		if any(message.get("seq") is not None for _owner, message in queue):
			transaction.undo_if_commit_fails(lambda: unlog(queue))


def unlog(entries: list[tuple["str | Log", dict]]) -> None:
	"""Take numbered entries out of their logs again (their commit failed). Their numbers stay
	used: the desk keeps the numbers it has shown, not a count, so a gap costs nothing."""
	pipe = frappe.cache.pipeline(transaction=False)
	for owner, message in entries:
		if message.get("seq") is not None:
			key = owner.entries if isinstance(owner, Log) else _log_key(owner)
			pipe.zremrangebyscore(key, message["seq"], message["seq"])
	pipe.execute()


def stamp(entries: list[tuple["str | Log", dict]]) -> None:
	"""Give each (user or Log, message) its log's next `seq` (set in the message) and log it.

	One round trip: a script call per STAMP_CHUNK entries of one retention, sent together in one
	pipeline without MULTI, so Redis runs them one after the other and may serve other clients in
	between. A call that failed leaves its messages without a number; the others keep theirs.
	"""
	pipe = frappe.cache.pipeline(transaction=False)
	now = int(time.time() * 1000)
	parts = []
	for (keep_last, keep_seconds, max_kept, idle), group in _by_retention(entries).items():
		args = (now, keep_last, keep_seconds * 1000, max_kept, idle)
		for part in (group[start : start + STAMP_CHUNK] for start in range(0, len(group), STAMP_CHUNK)):
			keys, bodies = [], []
			for owner, message in part:
				keys += [owner.counter, owner.entries] if isinstance(owner, Log) else _user_keys(owner)
				body = {k: v for k, v in message.items() if k != "seq"}
				bodies.append(json.dumps(body, default=str, separators=(",", ":"), ensure_ascii=False))
			pipe.eval(STAMP, len(keys), *keys, *args, *bodies)
			parts.append(part)
	failed = None
	for part, seqs in zip(parts, pipe.execute(raise_on_error=False) if parts else (), strict=True):
		if isinstance(seqs, Exception):
			failed = seqs
			continue
		for (_user, message), seq in zip(part, seqs, strict=True):
			message["seq"] = int(seq)
	if failed is not None:
		raise failed


def _user_keys(user: str) -> list[bytes]:
	return [_counter_key(user), _log_key(user)]


def _by_retention(entries: list[tuple["str | Log", dict]]) -> dict[tuple, list]:
	"""The entries grouped by their log's retention (each script call passes one), in order."""
	groups: dict[tuple, list] = {}
	for owner, message in entries:
		retention = owner.retention if isinstance(owner, Log) else USER_RETENTION
		groups.setdefault(retention, []).append((owner, message))
	return groups


def current_seq(user: str) -> int:
	"""The user's latest `seq` (starting the counter if it has none), for the desk at boot."""
	counter = _counter_key(user)
	frappe.cache.set(counter, int(time.time() * 1000), nx=True, ex=IDLE_SECONDS)
	return int(frappe.cache.get(counter) or 0)


def read(user: str, since: int) -> list[dict]:
	"""The user's logged deliveries with `seq` above `since`, oldest first."""
	return read_log(_log_key(user), since, MAX_KEPT)


def read_log(key: bytes, since: int, most: int) -> list[dict]:
	"""The entries of a log (a user's, or another Log's `entries`) with `seq` above `since`, oldest
	first, at most `most`."""
	entries = frappe.cache.zrangebyscore(key, f"({int(since)}", "+inf", start=0, num=most)
	return [json.loads(entry.split(b"|", 1)[1]) for entry in entries]


def received_from(user: str, rule: str | None = None, channel: str | None = None) -> bool:
	"""Whether the user's log still holds a message of `rule` (or of `channel`, a post).

	One read of the log; only entries that contain the name are parsed.
	"""
	key, name = ("rule", rule) if rule else ("channel", channel)
	needle = json.dumps(name, ensure_ascii=False).encode()
	entries = frappe.cache.zrangebyscore(_log_key(user), "-inf", "+inf", start=0, num=MAX_KEPT)
	return any(needle in entry and json.loads(entry.split(b"|", 1)[1]).get(key) == name for entry in entries)


@frappe.whitelist()
def missed(since: int = 0) -> list[dict]:
	"""The session user's deliveries with `seq` above `since` still kept, oldest first.

	Kept: at least the last KEEP_LAST and at least those of the last KEEP_SECONDS, up to
	MAX_KEPT; none of a user who received nothing for IDLE_SECONDS. When Redis restarted empty,
	what it held that the inbox keeps (every message meant to be read) is still returned.
	"""
	user = frappe.session.user
	if user == "Guest":
		raise frappe.PermissionError(frappe._("Log in to read your missed messages"))
	since = frappe.utils.cint(since)
	return with_inbox(user, since, read(user, since))


def with_inbox(user: str, since: int, logged: list[dict]) -> list[dict]:
	"""`logged` and the user's inbox items of the last KEEP_SECONDS above `since` that the log no
	longer holds, oldest first: the log lives in Redis and is gone when it restarts empty, the inbox
	in MariaDB keeps every message meant to be read, exactly as published (one indexed query).
	At most MAX_KEPT, as the log: the newest (a desk that was away for more catches up on the latest,
	and its next number is the newest's)."""
	rows = frappe.db.sql(
		f"""select seq, payload from `tab{INBOX_DOCTYPE}` where user = %s and seq > %s and sent_at >= %s
		order by seq desc limit {MAX_KEPT}""",
		(user, since, now_datetime() - timedelta(seconds=KEEP_SECONDS)),
	)
	have = {message.get("seq") for message in logged}
	lost = [json.loads(payload) for seq, payload in reversed(rows) if seq not in have]
	if not lost:
		return logged
	return sorted(logged + lost, key=lambda message: message.get("seq") or 0)[-MAX_KEPT:]
