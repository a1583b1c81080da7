"""The wire message: exact keys, fields filtered per recipient, JSON-serialisable values."""

import json
from datetime import date, datetime
from decimal import Decimal

from conftest import MANAGER, NOW, SUPPORT, audience

from rt_studio.engine import evaluate

WIRE_KEYS = [
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
]


def test_wire_keys_and_values(new_rule, make_event, ctx):
	rule = new_rule(
		rule_name="Wire",
		audience=audience(("User", {"user": MANAGER})),
		subject="Closed {{ doc.name }}",
		message="<b>{{ doc.status }}</b>",
		display="Sticky",
		indicator="green",
		alert_seconds=9,
		event_name="todo_closed",
		browser_notification=1,
	)
	[delivery] = evaluate(rule, make_event(), ctx).deliveries
	assert (delivery.rule, delivery.event_name, delivery.user, delivery.room) == (
		"Wire",
		"todo_closed",
		MANAGER,
		None,
	)
	assert list(delivery.message) == WIRE_KEYS
	assert delivery.message == {
		"rule": "Wire",
		"channel": None,
		"subject": "Closed TD-1",
		"message": "<b>Closed</b>",
		"display": "Sticky",
		"indicator": "green",
		"alert_seconds": 9,
		"doctype": "ToDo",
		"docname": "TD-1",
		"event": "Save",
		"fields": {},
		"actor": "actor@example.com",
		"sent_at": NOW.isoformat(),
		"seq": None,
		"critical": False,
		"browser_notification": True,
	}


def test_defaults(new_rule, make_event, ctx):
	rule = new_rule(audience=audience(("User", {"user": MANAGER})), display="", indicator="", subject="")
	[delivery] = evaluate(rule, make_event(), ctx).deliveries
	assert delivery.event_name == "rt_studio"
	assert delivery.message["display"] == "Alert"
	assert delivery.message["indicator"] == "blue"
	assert delivery.message["alert_seconds"] == 5
	assert delivery.message["subject"] == ""


def test_fields_are_filtered_per_recipient_and_json_serialisable(new_rule, make_event, ctx, todo):
	doc = {
		**todo,
		"amount": Decimal("12.50"),
		"date": date(2024, 5, 1),
		"modified": datetime(2024, 5, 1, 9, 30),
		"items": [{"qty": Decimal("2"), "_private": 1}],
	}
	rule = new_rule(
		audience=audience(("User", {"user": SUPPORT}), ("User", {"user": MANAGER}), "Document Viewers"),
		fields="status, priority,amount\ndate, modified, items, missing",
	)
	outcome = evaluate(rule, make_event(doc=doc), ctx)
	fields = {d.user or d.room: d.message["fields"] for d in outcome.deliveries}
	everything = {
		"status": "Closed",
		"priority": "High",
		"amount": 12.5,
		"date": "2024-05-01",
		"modified": "2024-05-01T09:30:00",
		"items": [{"qty": 2.0}],
		"missing": None,
	}
	assert fields[MANAGER] == everything
	# sup@example.com cannot read ToDo.priority; the room gets only what every user may read
	without_priority = {k: v for k, v in everything.items() if k != "priority"}
	assert fields[SUPPORT] == without_priority
	assert fields["doc:ToDo/TD-1"] == without_priority
	for delivery in outcome.deliveries:
		assert json.loads(json.dumps(delivery.message)) == delivery.message
