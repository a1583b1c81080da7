"""Idempotent channel posts: a key repeated within a day returns the first post's result.

A client that posts, times out and retries with the same `idempotency_key` must not post
twice. The first post stores its result under the key (scoped to the poster and the channel,
so nobody else can claim or read it) before its messages are queued; a repeat finds the
result and sends nothing. If the first post's transaction rolls back, its key is forgotten
so that the retry really posts.
"""

import hashlib
import json

import frappe
from frappe import _

from rt_studio import transaction

#: How long a key is remembered: longer than any client keeps retrying.
KEEP_SECONDS = 24 * 3600
#: Longest accepted key (a UUID is 36 characters; longer keys are a client bug).
MAX_KEY_LENGTH = 200


def _key(user: str, channel: str, key: str) -> bytes:
	digest = hashlib.sha256(f"{user}\n{channel}\n{key}".encode()).hexdigest()
	return frappe.cache.make_key(f"rt_studio:publish_key:{digest}")


def check(key: str) -> None:
	if len(key) > MAX_KEY_LENGTH:
		frappe.throw(
			_("idempotency_key is {0} characters long: use at most {1}, such as a UUID").format(
				len(key), MAX_KEY_LENGTH
			)
		)


def earlier_result(user: str, channel: str, key: str) -> dict | None:
	"""The result of the first post with this key within KEEP_SECONDS, or None."""
	stored = frappe.cache.get(_key(user, channel, key))
	return json.loads(stored) if stored else None


def claim(user: str, channel: str, key: str, result: dict) -> dict | None:
	"""Store this post's result under the key; None if it was first, else the first one's result."""
	redis_key = _key(user, channel, key)
	if frappe.cache.set(redis_key, json.dumps(result, default=str), nx=True, ex=KEEP_SECONDS):
		transaction.after_rollback(lambda: frappe.cache.delete(redis_key))
		return None
	return earlier_result(user, channel, key)
