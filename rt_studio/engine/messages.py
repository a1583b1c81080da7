"""The messages RT Studio publishes: one shape for rule deliveries, batch summaries and channel posts."""

from datetime import datetime

from markupsafe import escape

#: The keys of every message RT Studio publishes, rule or channel: what desk code listening with
#: `frappe.realtime.on(event_name, ...)` may rely on (add keys, never rename or drop one).
WIRE_KEYS = (
	"rule",
	"channel",
	"subject",
	"message",
	"display",
	"indicator",
	"alert_seconds",
	"doctype",
	"docname",
	"event",
	"fields",
	"actor",
	"sent_at",
	"seq",
	"critical",
	"browser_notification",
)

#: Keys a summary of batched messages carries besides WIRE_KEYS.
SUMMARY_KEYS = ("batch_count", "docnames")


def channel_message(channel: str, text: str, actor: str, sent_at: datetime) -> dict:
	"""The wire message of a channel post; `text` must already be HTML-escaped."""
	return {
		"rule": None,
		"channel": channel,
		"subject": str(escape(channel)),
		"message": text,
		"display": "Alert",
		"indicator": "blue",
		"alert_seconds": 7,
		"doctype": None,
		"docname": None,
		"event": "Channel",
		"fields": {},
		"actor": actor,
		"sent_at": sent_at.isoformat(),
		# given per user after the commit (rt_studio.delivery.delivery_log); None for a room
		"seq": None,
		"critical": False,
		"browser_notification": False,
	}


def _from_rule(rule, subject: str, text: str, sent_at: datetime) -> dict:
	return {
		"rule": rule.name,
		"channel": None,
		"subject": subject,
		"message": text,
		"display": rule.display,
		"indicator": rule.indicator,
		"alert_seconds": rule.alert_seconds,
		"doctype": rule.document_type,
		"docname": None,
		"event": rule.event,
		"fields": {},
		"actor": None,
		"sent_at": sent_at.isoformat(),
		"seq": None,
		"critical": rule.critical,
		"browser_notification": rule.browser_notification,
	}


def rule_message(rule, event, subject: str, message: str, fields: dict, sent_at: datetime) -> dict:
	"""The wire message of one rule delivery."""
	return {
		**_from_rule(rule, subject, message, sent_at),
		"doctype": event.doctype,
		"docname": event.docname,
		"event": event.event,
		"fields": fields,
		"actor": event.actor,
	}


def summary_message(
	rule, count: int, docnames: list[str], subject: str, text: str, sent_at: datetime
) -> dict:
	"""The wire message of a batch summary: the rule's display, no single document or actor."""
	return {**_from_rule(rule, subject, text, sent_at), "batch_count": count, "docnames": list(docnames)}
