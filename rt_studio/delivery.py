"""Turning an engine outcome into what happens on the site.

Deliveries go out through `frappe.publish_realtime(..., after_commit=True)`, so a
transaction that rolls back sends nothing, and Frappe's queue is re-armed for later work in
the same request. Rule errors are recorded on the rule and in the Error Log once per rule
and error; they never propagate into the user's save.
"""

import hashlib

import frappe
from frappe.utils import now_datetime

from rt_studio import delivery_log
from rt_studio.engine.evaluate import Outcome

NOTIFICATION_LOG = "Notification Log"
ERROR_SEEN_SECONDS = 24 * 3600


def publish(outcome: Outcome) -> None:
	for delivery in outcome.deliveries:
		if delivery.user:
			message = delivery_log.record(delivery.user, delivery.event_name, delivery.message)
			frappe.publish_realtime(delivery.event_name, message, user=delivery.user, after_commit=True)
		else:
			frappe.publish_realtime(
				delivery.event_name, delivery.message, room=delivery.room, after_commit=True
			)
		if delivery.user and delivery.message.get("display") == NOTIFICATION_LOG:
			make_notification_log(delivery.user, delivery.message)


def make_notification_log(user: str, message: dict) -> None:
	"""A Notification Log for the bell; Frappe publishes its own update after commit."""
	frappe.get_doc(
		{
			"doctype": "Notification Log",
			"subject": message.get("subject") or message.get("message"),
			"email_content": message.get("message"),
			"for_user": user,
			"type": "Alert",
			"document_type": message.get("doctype"),
			"document_name": message.get("docname"),
			"from_user": message.get("actor"),
		}
	).insert(ignore_permissions=True)


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
		frappe.db.after_rollback.add(lambda: frappe.cache.delete(shown))
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
