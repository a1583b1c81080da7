"""Verdicts per recipient, and rate limits (sliding window, per rule and recipient)."""

from conftest import ACTOR, BLIND, OFF_USER, SUPPORT, audience, delivered_to, users_of

from rt_studio.engine import evaluate
from rt_studio.engine.evaluate import (
	ACTOR_EXCLUDED,
	BATCHED,
	DELIVER,
	DISABLED,
	MUTED,
	NO_READ,
)
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
# (what exceeds a limit is batched: tests/test_batching.py)


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


def test_counters_of_different_rules_and_users_never_collide(new_rule, make_event, clock):
	from rt_studio.engine import Context
	from rt_studio.engine.memory import InMemoryDirectory
	from rt_studio.engine.ratelimit import channel_key

	assert rule_key("a:b", "c") != rule_key("a", "b:c")
	assert rule_key("a%3Ab", "c") != rule_key("a:b", "c")
	assert channel_key("a:b", "c") != channel_key("a", "b:c")
	# on the engine's path: rule `a:b` to user `c` and rule `a` to user `b:c` count apart
	users = {"c": {"can_read": ["*"]}, "b:c": {"can_read": ["*"]}}
	ctx = Context(InMemoryDirectory(users), InMemoryRateLimiter(clock))
	limit = {"rate_limit_count": 1, "rate_limit_seconds": 60}
	first = new_rule(rule_name="a:b", audience=user_rows("c"), **limit)
	second = new_rule(rule_name="a", audience=user_rows("b:c"), **limit)
	assert delivered_to(evaluate(first, make_event(), ctx)) == ["c"]
	assert delivered_to(evaluate(second, make_event(), ctx)) == ["b:c"]
