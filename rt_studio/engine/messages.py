"""The messages RT Studio publishes: one shape for rule deliveries and channel posts."""

from datetime import datetime

from markupsafe import escape

#: The keys of every message RT Studio publishes (DESIGN.md section 3), rule or channel.
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
)


def channel_message(channel: str, text: str, actor: str, sent_at: datetime) -> dict:
	"""The wire message of a channel post; `text` must already be HTML-escaped."""
	return {
		"rule": None,
		"channel": channel,
		"subject": escape(channel),
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
	}


def rule_message(rule, event, subject: str, message: str, fields: dict, sent_at: datetime) -> dict:
	"""The wire message of one rule delivery."""
	return {
		"rule": rule.name,
		"channel": None,
		"subject": subject,
		"message": message,
		"display": rule.display,
		"indicator": rule.indicator,
		"alert_seconds": rule.alert_seconds,
		"doctype": event.doctype,
		"docname": event.docname,
		"event": event.event,
		"fields": fields,
		"actor": event.actor,
		"sent_at": sent_at.isoformat(),
	}
