"""Batching instead of dropping: what exceeds a rule's rate limit arrives as one summary."""

import pytest
from conftest import MANAGER, SUPPORT, audience, delivered_to, users_of

from rt_studio.engine import evaluate, preview
from rt_studio.engine.batching import LISTED_IN_TEXT, MAX_DOCNAMES, summary_subject
from rt_studio.engine.evaluate import BATCHED, DELIVER, DISABLED, MUTED
from rt_studio.engine.messages import SUMMARY_KEYS, WIRE_KEYS
from rt_studio.engine.mutes import rule_target
from rt_studio.engine.summaries import due_summaries


def user_rows(*users):
	return audience(*(("User", {"user": user}) for user in users))


@pytest.fixture
def limited(new_rule):
	"""At most 3 messages per 60 seconds to each recipient."""
	return new_rule(
		rule_name="Limited", audience=user_rows(SUPPORT), rate_limit_count=3, rate_limit_seconds=60
	)


def save(rule, ctx, make_event, todo, name: str):
	return evaluate(rule, make_event(doc={**todo, "name": name}), ctx)


def summaries(ctx, *rules):
	return due_summaries(ctx, {rule.name: rule for rule in rules}, limit=100)


def test_thirty_saves_against_a_limit_of_three_give_three_messages_and_one_summary(
	limited, make_event, todo, ctx, clock
):
	delivered, verdicts = [], []
	for i in range(30):
		outcome = save(limited, ctx, make_event, todo, f"TD-{i % 12}")
		delivered += outcome.deliveries
		verdicts.append(users_of(outcome)[SUPPORT])
		clock.advance(0.1)
	assert verdicts == [DELIVER] * 3 + [BATCHED] * 27
	assert len(delivered) == 3
	assert outcome.reason == "0 of 1 recipients (1 batched)"
	assert summaries(ctx, limited) == []  # the window has not ended yet
	clock.advance(60)
	[result] = summaries(ctx, limited)
	[summary] = result.deliveries
	message = summary.message
	assert (summary.user, summary.event_name) == (SUPPORT, "rt_studio")
	assert set(message) == {*WIRE_KEYS, *SUMMARY_KEYS}
	assert message["batch_count"] == 27
	assert message["subject"] == "27 more ToDo changes"
	# saves 4..30 were about TD-3 .. TD-11, then TD-0 .. TD-5 again: each named once, in order
	assert message["docnames"] == [f"TD-{i}" for i in (*range(3, 12), *range(0, 3))]
	assert (message["rule"], message["doctype"], message["docname"], message["actor"]) == (
		"Limited",
		"ToDo",
		None,
		None,
	)
	assert message["display"] == limited.display
	assert result.fired and result.reason == "summary of batched messages: 1 of 1 recipients"
	assert summaries(ctx, limited) == []  # taken once


def test_a_collecting_batch_keeps_newer_messages_behind_it_and_the_limit_holds(
	limited, make_event, todo, ctx, clock
):
	for i in range(4):  # 3 delivered at t=0, the 4th opens a batch due at t=60
		save(limited, ctx, make_event, todo, f"TD-{i}")
	clock.advance(59.5)  # every slot is free again, but the batch is still collecting
	assert users_of(save(limited, ctx, make_event, todo, "TD-9"))[SUPPORT] == BATCHED
	clock.advance(0.5)
	[result] = summaries(ctx, limited)
	assert result.deliveries[0].message["batch_count"] == 2
	# the summary took one of the three slots of the new window
	verdicts = [users_of(save(limited, ctx, make_event, todo, "TD-1"))[SUPPORT] for _ in range(3)]
	assert verdicts == [DELIVER, DELIVER, BATCHED]


def test_batches_are_per_recipient_and_per_rule(new_rule, make_event, ctx, clock):
	one = new_rule(rule_name="One", audience=user_rows(SUPPORT), rate_limit_count=1, rate_limit_seconds=60)
	both = new_rule(
		rule_name="Both", audience=user_rows(SUPPORT, MANAGER), rate_limit_count=1, rate_limit_seconds=60
	)
	assert delivered_to(evaluate(one, make_event(), ctx)) == [SUPPORT]
	assert users_of(evaluate(one, make_event(), ctx)) == {SUPPORT: BATCHED}
	# another rule has its own counter and batches; another recipient too
	assert delivered_to(evaluate(both, make_event(), ctx)) == [SUPPORT, MANAGER]
	assert users_of(evaluate(both, make_event(), ctx)) == {SUPPORT: BATCHED, MANAGER: BATCHED}
	clock.advance(60)
	sent = {
		(o.rule, d.user): d.message["batch_count"] for o in summaries(ctx, one, both) for d in o.deliveries
	}
	assert sent == {("One", SUPPORT): 1, ("Both", SUPPORT): 1, ("Both", MANAGER): 1}


def test_preview_says_batched_and_records_nothing(limited, make_event, ctx, batches, clock):
	for _ in range(5):
		assert users_of(preview(limited, make_event(), ctx)) == {SUPPORT: DELIVER}
	for _ in range(3):
		evaluate(limited, make_event(), ctx)
	for _ in range(2):
		outcome = preview(limited, make_event(), ctx)
		assert users_of(outcome) == {SUPPORT: BATCHED}
		assert outcome.reason == "0 of 1 recipients (1 batched)"
	assert batches.collecting("Limited", [SUPPORT]) == set()
	evaluate(limited, make_event(), ctx)
	assert batches.collecting("Limited", [SUPPORT]) == {SUPPORT}
	assert users_of(preview(limited, make_event(), ctx)) == {SUPPORT: BATCHED}


def test_no_summary_for_a_disabled_rule_a_disabled_user_or_a_mute(new_rule, make_event, ctx, mutes, clock):
	rule = new_rule(
		rule_name="Limited", audience=user_rows(SUPPORT, MANAGER), rate_limit_count=1, rate_limit_seconds=60
	)
	for _ in range(2):
		evaluate(rule, make_event(), ctx)
	clock.advance(60)
	mutes.mute(rule_target("Limited"), MANAGER)
	ctx.directory.users[SUPPORT]["enabled"] = False
	[result] = summaries(ctx, rule)
	assert users_of(result) == {SUPPORT: DISABLED, MANAGER: MUTED}
	assert result.deliveries == [] and not result.fired
	# a rule disabled or deleted before its batches are due sends nothing
	mutes.unmute(rule_target("Limited"), MANAGER)
	ctx.directory.users[SUPPORT]["enabled"] = True
	for _ in range(2):
		evaluate(rule, make_event(), ctx)
	clock.advance(60)
	[gone] = due_summaries(ctx, {}, limit=100)
	assert gone.deliveries == [] and "deleted or disabled" in gone.reason


def test_a_critical_rule_summary_ignores_mutes(new_rule, make_event, ctx, mutes, clock):
	rule = new_rule(
		rule_name="Alarm", audience=user_rows(SUPPORT), rate_limit_count=1, rate_limit_seconds=60, critical=1
	)
	mutes.mute(rule_target("Alarm"), SUPPORT)
	for _ in range(3):
		evaluate(rule, make_event(), ctx)
	clock.advance(60)
	[result] = summaries(ctx, rule)
	assert [(d.user, d.message["batch_count"], d.message["critical"]) for d in result.deliveries] == [
		(SUPPORT, 2, True)
	]


def test_summary_names_a_bounded_number_of_documents_escaped(new_rule, make_event, todo, ctx, clock):
	rule = new_rule(rule_name="Busy", audience=user_rows(SUPPORT), rate_limit_count=1, rate_limit_seconds=60)
	names = ["<b>x</b>", *(f"TD-{i}" for i in range(MAX_DOCNAMES + 20))]
	for name in ["first", *names]:
		save(rule, ctx, make_event, todo, name)
	clock.advance(60)
	[result] = summaries(ctx, rule)
	message = result.deliveries[0].message
	assert message["batch_count"] == len(names)
	assert message["docnames"] == names[:MAX_DOCNAMES]
	assert message["message"].startswith("&lt;b&gt;x&lt;/b&gt;, TD-0, TD-1")
	assert message["message"].count(",") == LISTED_IN_TEXT  # ten names and an ellipsis
	assert message["message"].endswith(", …")


def test_summary_subject():
	assert summary_subject("ToDo", 27) == "27 more ToDo changes"
	assert summary_subject("Sales Order", 1) == "1 more Sales Order change"
	assert summary_subject("<i>x</i>", 2) == "2 more &lt;i&gt;x&lt;/i&gt; changes"
