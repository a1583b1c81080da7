"""Idempotent channel posts: a key repeated within a day returns the first post's result.

A client that posts, times out and retries with the same `idempotency_key` must not post
twice. The first post inserts its result under the key (a Realtime Publish Key row named by a
digest of the poster, the channel and the key, so nobody else can claim or read it) in the
post's own transaction, before its messages are queued; a repeat finds the row and sends nothing.

The rows are in MariaDB, not Redis: a retry after a Redis restart (or `bench clear-cache`) still
finds the first post. The primary key decides races: a second post with the key waits for the
first's transaction and then meets its row (a duplicate; read with a locking read, which sees the
committed row), or, if the first rolled back, inserts its own. A post that rolls back takes its
row with it, so a retry really posts. Cost: one indexed read per keyed post, one INSERT when it
posts (and the clean-up of keys older than a day, a bounded DELETE beside it).
"""

import hashlib
import json

import frappe
from frappe import _
from frappe.utils import add_to_date, now_datetime

DOCTYPE = "Realtime Publish Key"
#: How long a key is remembered: longer than any client keeps retrying.
KEEP_SECONDS = 24 * 3600
#: Longest accepted key (a UUID is 36 characters; longer keys are a client bug).
MAX_KEY_LENGTH = 200
#: Expired keys removed per post that claims one: keeps the table at about a day of keys.
CLEAN_UP_BATCH = 100


def _name(user: str, channel: str, key: str) -> str:
	return hashlib.sha256(f"{user}\n{channel}\n{key}".encode()).hexdigest()


def check(key: str) -> None:
	if len(key) > MAX_KEY_LENGTH:
		frappe.throw(
			_("idempotency_key is {0} characters long: use at most {1}, such as a UUID").format(
				len(key), MAX_KEY_LENGTH
			)
		)


def earlier_result(user: str, channel: str, key: str, *, locking: bool = False) -> dict | None:
	"""The result of the first post with this key within KEEP_SECONDS, or None.

	`locking`: read the latest committed row, not this transaction's snapshot (after a duplicate).
	"""
	lock = " lock in share mode" if locking else ""
	rows = frappe.db.sql(
		f"select result from `tab{DOCTYPE}` where name = %s and creation > %s{lock}",
		(_name(user, channel, key), add_to_date(now_datetime(), seconds=-KEEP_SECONDS)),
	)
	return json.loads(rows[0][0]) if rows else None


def claim(user: str, channel: str, key: str, result: dict) -> dict | None:
	"""Store this post's result under the key; None if it was first, else the first one's result."""
	name, now = _name(user, channel, key), now_datetime()
	cutoff = add_to_date(now, seconds=-KEEP_SECONDS)
	# an expired row of the same key would block the insert: it goes first, with a few others
	frappe.db.sql(f"delete from `tab{DOCTYPE}` where name = %s and creation <= %s", (name, cutoff))
	frappe.db.sql(
		f"delete from `tab{DOCTYPE}` where creation <= %s order by creation limit {CLEAN_UP_BATCH}", (cutoff,)
	)
	try:
		frappe.db.sql(
			f"insert into `tab{DOCTYPE}` (name, user, channel, result, creation, modified, owner, modified_by)"
			" values (%s, %s, %s, %s, %s, %s, %s, %s)",
			(name, user, channel, json.dumps(result, default=str), now, now, user, user),
		)
	except Exception as e:
		if not frappe.db.is_duplicate_entry(e):
			raise
		return earlier_result(user, channel, key, locking=True) or result
	return None
