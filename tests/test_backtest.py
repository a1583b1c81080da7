"""Backtest in the engine: past events replayed as live firing would evaluate them, nothing sent."""

from datetime import datetime, timedelta

from conftest import BLIND, MANAGER, SUPPORT, audience

from rt_studio.engine import Context, Event
from rt_studio.engine.backtest import SAMPLES, replay
from rt_studio.engine.ratelimit import InMemoryRateLimiter

START = datetime(2024, 5, 1, 9, 0)


def todo(name: str, **values) -> dict:
	return {"doctype": "ToDo", "name": name, "status": "Open", "description": f"Call {name}", **values}


def history(directory, *items):
	"""(time, event, context) for (minutes after START, document, event label) items."""
	for minutes, doc, label in items:
		ctx = Context(directory, InMemoryRateLimiter())
		yield (
			START + timedelta(minutes=minutes),
			Event("ToDo", doc["name"], label, doc, None, "x@example.com"),
			ctx,
		)


def test_counts_per_day_and_per_recipient_and_samples(new_rule, directory):
	rule = new_rule(
		event="New",
		condition="doc.status == 'Open'",
		audience=audience(
			("User", {"user": SUPPORT}), ("User", {"user": MANAGER}), ("User", {"user": BLIND})
		),
		subject="New: {{ doc.description }}",
	)
	events = [(i * 60 * 6, todo(f"TD-{i}"), "New") for i in range(8)]  # every 6 hours for two days
	events.append((10, todo("TD-closed", status="Closed"), "New"))
	report = replay(rule, sorted(history(directory, *events), key=lambda e: e[0]))
	assert (report["events"], report["fired"], report["deliveries"]) == (9, 8, 16)
	assert report["per_day"] == [
		{"date": "2024-05-01", "events": 4, "fired": 3, "deliveries": 6},
		{"date": "2024-05-02", "events": 4, "fired": 4, "deliveries": 8},
		{"date": "2024-05-03", "events": 1, "fired": 1, "deliveries": 2},
	]
	assert report["per_recipient"] == [
		{"recipient": SUPPORT, "deliveries": 8},
		{"recipient": MANAGER, "deliveries": 8},
	]
	assert report["verdicts"] == {"deliver": 16, "no read permission": 8}
	assert report["not_fired"] == [{"reason": "condition is false", "count": 1}]
	assert len(report["samples"]) == SAMPLES
	first = report["samples"][0]
	assert (first["docname"], first["subject"], first["recipients"]) == ("TD-0", "New: Call TD-0", 2)
	assert first["time"] == "2024-05-01 09:00:00"


def test_the_rate_limit_is_replayed_on_the_events_clock(new_rule, directory):
	rule = new_rule(
		event="New",
		audience=audience(("User", {"user": SUPPORT})),
		rate_limit_count=2,
		rate_limit_seconds=3600,
	)
	# five within the first hour: two delivered, three batched into one summary at 10:00; then
	# one at 12:00, delivered again
	events = [(m, todo(f"TD-{m}"), "New") for m in (0, 5, 10, 15, 20, 180)]
	report = replay(rule, history(directory, *events))
	assert report["verdicts"] == {"deliver": 3, "batched": 3}
	assert (report["deliveries"], report["summaries"]) == (4, 1)
	assert report["per_recipient"] == [{"recipient": SUPPORT, "deliveries": 4}]


def test_a_failing_rule_is_reported_not_raised(new_rule, directory):
	rule = new_rule(event="New", audience=audience(("User", {"user": SUPPORT})), subject="{{ doc.qty / 0 }}")
	report = replay(rule, history(directory, (0, todo("TD-1", qty=1), "New")))
	assert report["fired"] == 0
	assert report["errors"] == [
		"Test rule: subject: failed on this document: ZeroDivisionError: division by zero"
	]


def test_the_clock_of_each_event_is_the_rules_clock(new_rule, directory):
	rule = new_rule(
		event="New",
		condition_type="Filters",
		filters=[["ToDo", "date", "timespan", "today"]],
		audience=audience(("User", {"user": SUPPORT})),
	)
	events = [(0, todo("TD-1", date="2024-05-01"), "New"), (24 * 60, todo("TD-2", date="2024-05-01"), "New")]
	report = replay(rule, history(directory, *events))
	assert report["fired"] == 1
	assert report["not_fired"][0]["reason"] == "filter 1 (date timespan today) failed: date is '2024-05-01'"
