"""Verdicts per recipient, and rate limits (sliding window, per rule and recipient)."""

import pytest
from conftest import ACTOR, BLIND, MANAGER, OFF_USER, SUPPORT, audience, delivered_to, users_of

from rt_studio.engine import evaluate, preview
from rt_studio.engine.evaluate import ACTOR_EXCLUDED, DELIVER, DISABLED, NO_READ, RATE_LIMITED, VERDICTS
from rt_studio.engine.ratelimit import InMemoryRateLimiter, rule_key


def user_rows(*users):
	return audience(*(("User", {"user": user}) for user in users))


def test_every_verdict(new_rule, make_event, ctx):
	rule = new_rule(audience=user_rows(SUPPORT, BLIND, ACTOR, OFF_USER))
	outcome = evaluate(rule, make_event(actor=ACTOR), ctx)
	assert users_of(outcome) == {SUPPORT: DELIVER, BLIND: NO_READ, ACTOR: ACTOR_EXCLUDED, OFF_USER: DISABLED}
	assert delivered_to(outcome) == [SUPPORT]
	assert outcome.fired
	assert outcome.reason == "1 of 4 recipients"
	assert VERDICTS == (DELIVER, NO_READ, ACTOR_EXCLUDED, RATE_LIMITED, DISABLED)
	assert (DELIVER, NO_READ, ACTOR_EXCLUDED, RATE_LIMITED, DISABLED) == (
		"deliver",
		"no read permission",
		"actor excluded",
		"rate limited",
		"disabled user",
	)


def test_exclude_actor_off_lets_the_actor_receive(new_rule, make_event, ctx):
	rule = new_rule(audience=user_rows(ACTOR, SUPPORT), exclude_actor=0)
	outcome = evaluate(rule, make_event(actor=ACTOR), ctx)
	assert users_of(outcome) == {ACTOR: DELIVER, SUPPORT: DELIVER}
	assert delivered_to(outcome) == [ACTOR, SUPPORT]


def test_excluded_actor_still_needs_read_permission_when_included(new_rule, make_event, ctx):
	rule = new_rule(audience=user_rows(BLIND), exclude_actor=0)
	assert users_of(evaluate(rule, make_event(actor=BLIND), ctx)) == {BLIND: NO_READ}


def test_nobody_deliverable_does_not_fire(new_rule, make_event, ctx):
	outcome = evaluate(new_rule(audience=user_rows(BLIND, OFF_USER)), make_event(), ctx)
	assert not outcome.fired
	assert outcome.deliveries == []
	assert outcome.reason == "0 of 2 recipients"


# ---------------------------------------------------------------- rate limits


@pytest.fixture
def limited(new_rule):
	return new_rule(
		rule_name="Limited", audience=user_rows(SUPPORT), rate_limit_count=2, rate_limit_seconds=60
	)


def test_third_event_in_the_window_is_rate_limited(limited, make_event, ctx, clock):
	verdicts = []
	for _ in range(3):
		outcome = evaluate(limited, make_event(), ctx)
		verdicts.append(users_of(outcome)[SUPPORT])
		clock.advance(1)
	assert verdicts == [DELIVER, DELIVER, RATE_LIMITED]
	assert not outcome.fired
	assert outcome.deliveries == []
	assert outcome.reason == "0 of 1 recipients"


def test_limits_count_per_recipient(new_rule, make_event, ctx):
	rule = new_rule(audience=user_rows(SUPPORT), rate_limit_count=1, rate_limit_seconds=60)
	both = new_rule(
		rule_name="Other rule",
		audience=user_rows(SUPPORT, MANAGER),
		rate_limit_count=1,
		rate_limit_seconds=60,
	)
	assert delivered_to(evaluate(rule, make_event(), ctx)) == [SUPPORT]
	assert delivered_to(evaluate(rule, make_event(), ctx)) == []
	# another rule has its own counter; another recipient too
	assert delivered_to(evaluate(both, make_event(), ctx)) == [SUPPORT, MANAGER]
	assert users_of(evaluate(both, make_event(), ctx)) == {SUPPORT: RATE_LIMITED, MANAGER: RATE_LIMITED}


def test_preview_does_not_consume_the_limit(limited, make_event, ctx):
	for _ in range(5):
		assert users_of(preview(limited, make_event(), ctx)) == {SUPPORT: DELIVER}
	assert delivered_to(evaluate(limited, make_event(), ctx)) == [SUPPORT]
	assert delivered_to(evaluate(limited, make_event(), ctx)) == [SUPPORT]
	# preview tells what a real event would get now, still without counting
	for _ in range(2):
		assert users_of(preview(limited, make_event(), ctx)) == {SUPPORT: RATE_LIMITED}
	assert users_of(evaluate(limited, make_event(), ctx)) == {SUPPORT: RATE_LIMITED}


def test_deliveries_resume_after_the_window(limited, make_event, ctx, clock):
	assert delivered_to(evaluate(limited, make_event(), ctx)) == [SUPPORT]  # t = 0
	clock.advance(10)
	assert delivered_to(evaluate(limited, make_event(), ctx)) == [SUPPORT]  # t = 10
	clock.advance(49)
	assert delivered_to(evaluate(limited, make_event(), ctx)) == []  # t = 59
	clock.advance(1)
	assert delivered_to(evaluate(limited, make_event(), ctx)) == [SUPPORT]  # t = 60: first hit expired
	assert delivered_to(evaluate(limited, make_event(), ctx)) == []  # t = 60: hits at 10 and 60 are live
	clock.advance(50)
	assert delivered_to(evaluate(limited, make_event(), ctx)) == [SUPPORT]  # t = 110


def test_sliding_window_has_no_double_burst_at_a_boundary(clock):
	limiter = InMemoryRateLimiter(clock)
	key = rule_key("Limited", SUPPORT)
	clock.t = 59.0
	assert limiter.hit(key, 2, 60)
	clock.t = 59.5
	assert limiter.hit(key, 2, 60)
	# a fixed 60-second bucket would start afresh at t = 60 and allow two more here
	for t in (60.0, 60.5, 61.0, 118.9):
		clock.t = t
		assert not limiter.hit(key, 2, 60), t
	clock.t = 119.0
	assert limiter.hit(key, 2, 60)
	clock.t = 119.2
	assert not limiter.hit(key, 2, 60)
	clock.t = 119.5
	assert limiter.hit(key, 2, 60)


def test_peek_does_not_record(clock):
	limiter = InMemoryRateLimiter(clock)
	for _ in range(10):
		assert limiter.peek("k", 1, 60)
	assert limiter.hit("k", 1, 60)
	assert not limiter.peek("k", 1, 60)
	assert not limiter.hit("k", 1, 60)
	assert limiter.peek("other", 1, 60)
	assert rule_key("R", "u@x") == "rule:R:u@x"
