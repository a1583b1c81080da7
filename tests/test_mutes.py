"""Mutes: a recipient who muted a rule gets the verdict `muted` and nothing is sent to them."""

from conftest import ACTOR, MANAGER, SUPPORT, audience, delivered_to, users_of

from rt_studio.engine import evaluate, preview
from rt_studio.engine.evaluate import BATCHED, DELIVER, MUTED
from rt_studio.engine.mutes import InMemoryMutes, channel_target, rule_target


def user_rows(*users):
	return audience(*(("User", {"user": user}) for user in users))


def test_a_muted_recipient_gets_nothing_and_the_others_do(new_rule, make_event, ctx, mutes):
	rule = new_rule(rule_name="Closed", audience=user_rows(SUPPORT, MANAGER))
	mutes.mute(rule_target("Closed"), SUPPORT)
	outcome = evaluate(rule, make_event(), ctx)
	assert users_of(outcome) == {SUPPORT: MUTED, MANAGER: DELIVER}
	assert delivered_to(outcome) == [MANAGER]
	assert outcome.reason == "1 of 2 recipients (1 muted)"
	assert users_of(preview(rule, make_event(), ctx)) == {SUPPORT: MUTED, MANAGER: DELIVER}


def test_a_critical_rule_cannot_be_muted(new_rule, make_event, ctx, mutes):
	rule = new_rule(rule_name="Alarm", audience=user_rows(SUPPORT), critical=1)
	mutes.mute(rule_target("Alarm"), SUPPORT)
	outcome = evaluate(rule, make_event(), ctx)
	assert delivered_to(outcome) == [SUPPORT]
	assert outcome.deliveries[0].message["critical"] is True


def test_a_mute_ends_at_its_time(new_rule, make_event, ctx, mutes, clock):
	rule = new_rule(rule_name="Closed", audience=user_rows(SUPPORT))
	mutes.mute(rule_target("Closed"), SUPPORT, until=clock() + 3600)
	assert users_of(evaluate(rule, make_event(), ctx)) == {SUPPORT: MUTED}
	clock.advance(3599)
	assert users_of(evaluate(rule, make_event(), ctx)) == {SUPPORT: MUTED}
	clock.advance(1)
	assert delivered_to(evaluate(rule, make_event(), ctx)) == [SUPPORT]


def test_a_mute_names_one_rule_or_channel(new_rule, make_event, ctx, mutes):
	rule = new_rule(rule_name="Closed", audience=user_rows(SUPPORT))
	mutes.mute(rule_target("Other"), SUPPORT)
	mutes.mute(channel_target("Closed"), SUPPORT)
	assert delivered_to(evaluate(rule, make_event(), ctx)) == [SUPPORT]


def test_a_muted_recipient_does_not_use_up_the_rate_limit(new_rule, make_event, ctx, mutes):
	rule = new_rule(
		rule_name="Closed", audience=user_rows(SUPPORT), rate_limit_count=1, rate_limit_seconds=60
	)
	mutes.mute(rule_target("Closed"), SUPPORT)
	for _ in range(3):
		assert users_of(evaluate(rule, make_event(), ctx)) == {SUPPORT: MUTED}
	mutes.unmute(rule_target("Closed"), SUPPORT)
	assert delivered_to(evaluate(rule, make_event(), ctx)) == [SUPPORT]
	assert users_of(evaluate(rule, make_event(), ctx)) == {SUPPORT: BATCHED}


def test_mutes_are_asked_per_chunk_of_the_audience(new_rule, make_event, ctx, directory):
	everyone = [f"u{i}@example.com" for i in range(1200)]
	for user in everyone:
		directory.users[user] = {"roles": ["Crowd"], "can_read": ["ToDo"]}
	asked = []

	class CountingMutes(InMemoryMutes):
		def muted(self, target, users):
			asked.append(len(users))
			return super().muted(target, users)

	ctx.mutes = CountingMutes({rule_target("Crowd"): {everyone[7]: None}})
	rule = new_rule(rule_name="Crowd", audience=audience(("Role", {"role": "Crowd"})), exclude_actor=0)
	outcome = evaluate(rule, make_event(actor=ACTOR), ctx)
	assert asked == [1000, 200]
	assert [u for u, verdict in users_of(outcome).items() if verdict == MUTED] == [everyone[7]]
	assert len(outcome.deliveries) == 1199
