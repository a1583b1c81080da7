"""Turning an engine outcome into what happens on the site.

Deliveries wait in this transaction's outbox and are published after its commit, in
pipelined Redis round trips (one per PUBLISH_BATCH messages) instead of one per message:
each message is what `frappe.publish_realtime(..., after_commit=True)` would publish (the
same JSON on the same channel, without the indentation), and a transaction that rolls back
sends nothing. A message to a user is numbered (`seq`) and kept for `missed` just before the
commit (`delivery_log`), as is one to a document's room (`room_log`); Notification Logs are
written in bulk just before the commit (`bell`). Rule errors are recorded on the rule and in the Error Log once per
rule and error; they never propagate into the user's save.
"""

import hashlib
import json
from contextlib import suppress

import frappe
import redis
from frappe.realtime import get_user_room
from frappe.utils import now_datetime
from frappe.utils.background_jobs import get_redis_connection_without_auth

from rt_studio import transaction
from rt_studio.delivery import bell, delivery_log, inbox, preferences, room_log
from rt_studio.engine.evaluate import Outcome

NOTIFICATION_LOG = "Notification Log"
ERROR_SEEN_SECONDS = 24 * 3600
#: Messages per pipelined round trip to Redis: a thousand messages of a few hundred bytes
#: each stay far below what Redis buffers for one client, and ten thousand cost ten trips.
PUBLISH_BATCH = 1000


def publish(outcome: Outcome) -> None:
	"""Queue the outcome's deliveries for after the commit (and their Notification Logs for just before)."""
	outbox = pending()
	chosen = preferences.for_deliveries(outcome.deliveries)  # one Redis round trip at most
	for delivery in outcome.deliveries:
		if delivery.user:
			message = delivery_log.record(delivery.user, chosen.message(delivery.user, delivery.message))
			inbox.remember(delivery.user, message)
			outbox.append((delivery.event_name, message, get_user_room(delivery.user)))
		else:
			outbox.append(
				(delivery.event_name, room_log.record(delivery.room, delivery.message), delivery.room)
			)
		if delivery.user and delivery.message.get("display") == NOTIFICATION_LOG:
			bell.queue(delivery.user, delivery.message, outbox)


def pending() -> list[tuple[str, dict, str]]:
	"""This transaction's outbox: (socket event, message, room), published after the commit."""
	return transaction.queued("rt_studio_outbox", emit, transaction.ignore)


def emit(messages: list[tuple[str, dict, str]]) -> None:
	"""Publish now, as `frappe.realtime.emit_via_redis` does, PUBLISH_BATCH messages a round trip."""
	site = frappe.local.site
	with suppress(redis.exceptions.ConnectionError):
		connection = get_redis_connection_without_auth()
		for start in range(0, len(messages), PUBLISH_BATCH):
			pipe = connection.pipeline(transaction=False)
			for event, message, room in messages[start : start + PUBLISH_BATCH]:
				data = {"event": event, "message": message, "room": room, "namespace": site}
				pipe.publish("events", json.dumps(data, default=str, separators=(",", ":")))
			pipe.execute()


def record_error(outcome: Outcome, version: str) -> None:
	"""Show the error on the rule and write it to the Error Log, once per rule version and error.

	Keyed on the rule's version, so after the rule is edited the same error is shown and
	logged again, with nothing to clean up.
	"""
	problem = outcome.error
	text = str(problem)
	digest = hashlib.sha1(f"{problem.rule}\n{version}\n{text}".encode()).hexdigest()
	shown = frappe.cache.make_key(f"rt_studio:error:shown:{digest}")
	if frappe.cache.set(shown, 1, ex=ERROR_SEEN_SECONDS, nx=True):
		# last_error rolls back with the user's transaction: then show it again next time
		transaction.after_rollback(lambda: frappe.cache.delete(shown))
		frappe.db.set_value(
			"Realtime Rule",
			problem.rule,
			{"last_error": text, "last_error_on": now_datetime()},
			update_modified=False,
		)
	# the Error Log survives a rollback (Frappe stores it in a MyISAM table): log once
	if not frappe.cache.set(
		frappe.cache.make_key(f"rt_studio:error:{digest}"), 1, ex=ERROR_SEEN_SECONDS, nx=True
	):
		return
	frappe.log_error(
		title=f"RT Studio: rule {problem.rule} failed",
		message=f"{text}\n\nThe rule was skipped; the document was saved.",
		reference_doctype="Realtime Rule",
		reference_name=problem.rule,
	)
