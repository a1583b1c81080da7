"""preview(): the desk's answer, with no side effects."""

from conftest import ACTOR, BLIND, MANAGER, OFF_USER, SUPPORT, audience

from rt_studio.engine import evaluate, preview
from rt_studio.engine.evaluate import ACTOR_EXCLUDED, DELIVER, DISABLED, NO_READ
from rt_studio.engine.ratelimit import rule_key


def rows(*users):
	return audience(*(("User", {"user": user}) for user in users))


def test_preview_lists_every_recipient_with_verdict_and_text(new_rule, make_event, ctx, limiter):
	rule = new_rule(
		rule_name="Preview",
		audience=[*rows(SUPPORT, BLIND, ACTOR, OFF_USER), *audience("Document Viewers")],
		condition="doc.priority == 'High'",
		subject="{{ doc.name }} for {{ recipient }}",
		message="<b>{{ doc.status }}</b>",
		rate_limit_count=1,
		rate_limit_seconds=60,
	)
	outcome = preview(rule, make_event(), ctx)
	assert outcome.condition is True
	assert outcome.fired is True
	assert outcome.reason == "2 of 5 recipients"
	assert outcome.deliveries == []
	assert outcome.error is None
	assert [rec.as_dict() for rec in outcome.recipients] == [
		{
			"user": SUPPORT,
			"source": "User",
			"verdict": DELIVER,
			"subject": f"TD-1 for {SUPPORT}",
			"message": "<b>Closed</b>",
		},
		{
			"user": BLIND,
			"source": "User",
			"verdict": NO_READ,
			"subject": f"TD-1 for {BLIND}",
			"message": "<b>Closed</b>",
		},
		{
			"user": ACTOR,
			"source": "User",
			"verdict": ACTOR_EXCLUDED,
			"subject": f"TD-1 for {ACTOR}",
			"message": "<b>Closed</b>",
		},
		{
			"user": OFF_USER,
			"source": "User",
			"verdict": DISABLED,
			"subject": f"TD-1 for {OFF_USER}",
			"message": "<b>Closed</b>",
		},
		{
			"room": "doc:ToDo/TD-1",
			"source": "Document Viewers",
			"verdict": DELIVER,
			"subject": "TD-1 for ",
			"message": "<b>Closed</b>",
		},
	]
	# no counter was touched: the one delivery the limit allows is still there
	assert limiter.peek(rule_key("Preview", SUPPORT), 1, 60)
	assert all(len(hits) == 0 for hits in limiter._hits.values())
	assert [d.user or d.room for d in evaluate(rule, make_event(), ctx).deliveries] == [
		SUPPORT,
		"doc:ToDo/TD-1",
	]


def test_preview_with_false_condition_says_why(new_rule, make_event, ctx):
	rule = new_rule(audience=rows(MANAGER), condition="doc.priority == 'Low'")
	outcome = preview(rule, make_event(), ctx)
	assert outcome.condition is False
	assert not outcome.fired
	assert outcome.reason == "condition is false"
	assert outcome.recipients == []
	assert outcome.as_dict() == {
		"rule": "Test rule",
		"event": "Save",
		"fired": False,
		"reason": "condition is false",
		"condition": False,
		"recipients": [],
		"error": None,
	}


def test_preview_without_condition_reports_none(new_rule, make_event, ctx):
	outcome = preview(new_rule(audience=rows(MANAGER)), make_event(), ctx)
	assert outcome.condition is None
	assert outcome.reason == "1 of 1 recipients"


def test_preview_of_a_broken_rule_reports_the_error(new_rule, make_event, ctx):
	outcome = preview(
		new_rule(rule_name="Broken", audience=rows(MANAGER), message="{{ 1 / 0 }}"), make_event(), ctx
	)
	assert outcome.as_dict()["error"] == {
		"rule": "Broken",
		"field": "message",
		"problem": "failed on this document: ZeroDivisionError: division by zero",
	}
	assert (
		outcome.reason
		== "error: Broken: message: failed on this document: ZeroDivisionError: division by zero"
	)


def test_preview_value_change_reason(new_rule, make_event, ctx, todo):
	rule = new_rule(
		event="Value Change", value_changed="status", to_value="Cancelled", audience=rows(MANAGER)
	)
	outcome = preview(rule, make_event("Value Change"), ctx)
	assert not outcome.fired
	assert outcome.reason == "status changed to 'Closed', the rule wants to 'Cancelled'"


def test_progress_is_reported_while_a_large_audience_is_checked(new_rule, make_event):
	from rt_studio.engine import Context
	from rt_studio.engine.memory import InMemoryDirectory
	from rt_studio.engine.ratelimit import InMemoryRateLimiter

	users = {f"u{i}@example.com": {"roles": ["Crowd"], "can_read": ["ToDo"]} for i in range(1200)}
	reports = []
	ctx = Context(
		InMemoryDirectory(users),
		InMemoryRateLimiter(),
		progress=lambda done, total: reports.append((done, total)),
	)
	rule = new_rule(audience=[{"audience_type": "Role", "role": "Crowd"}])
	outcome = evaluate(rule, make_event(), ctx, preview=True)
	assert len(outcome.recipients) == 1200
	# one report per chunk of verdicts, the last one complete
	assert reports == [(1000, 1200), (1200, 1200)]


def test_a_large_audience_is_deferred_after_the_condition(new_rule, make_event):
	from rt_studio.engine import Context
	from rt_studio.engine.memory import InMemoryDirectory
	from rt_studio.engine.ratelimit import InMemoryRateLimiter

	users = {f"u{i}@example.com": {"roles": ["Crowd"], "can_read": ["ToDo"]} for i in range(30)}
	ctx = Context(InMemoryDirectory(users), InMemoryRateLimiter())
	crowd = new_rule(audience=[{"audience_type": "Role", "role": "Crowd"}])
	deferred = evaluate(crowd, make_event(), ctx, defer_above=20)
	assert deferred.deferred > 20
	assert deferred.reason == "more than 20 recipients: delivered by a background job after the commit"
	assert deferred.deliveries == [] and deferred.recipients == []
	assert not deferred.fired
	# below the threshold, or with the condition false, nothing is deferred
	assert evaluate(crowd, make_event(), ctx, defer_above=50).deferred == 0
	assert len(evaluate(crowd, make_event(), ctx, defer_above=50).deliveries) == 30
	closed = new_rule(audience=[{"audience_type": "Role", "role": "Crowd"}], condition="doc.status == 'Nope'")
	assert evaluate(closed, make_event(), ctx, defer_above=20).deferred == 0
