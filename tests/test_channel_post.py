"""A channel post is decided as a rule's audience is (engine.evaluate.channel_post)."""

from conftest import OFF_USER, SUPPORT

from rt_studio.engine.evaluate import DELIVER, DISABLED, MUTED, NO_SUCH_USER, channel_post
from rt_studio.engine.mutes import channel_target
from rt_studio.engine.rules import parse_channel


def channel(*users: str):
	data = {
		"doctype": "Realtime Channel",
		"channel_name": "ops",
		"enabled": 1,
		"members": [{"member_type": "User", "user": u} for u in users],
	}
	parsed, problems = parse_channel(data)
	assert problems == []
	return parsed


def test_members_named_as_the_site_spells_them_get_it_once(ctx):
	outcome = channel_post(
		channel(SUPPORT, f"  {SUPPORT.upper()} "), "deploy &amp; go", "a@x.com", "ops_event", ctx
	)
	assert [(r.user, r.verdict) for r in outcome.recipients] == [(SUPPORT, DELIVER)]
	[delivery] = outcome.deliveries
	assert (delivery.user, delivery.event_name, delivery.room) == (SUPPORT, "ops_event", None)
	assert delivery.message["channel"] == "ops"
	assert delivery.message["message"] == "deploy &amp; go"
	assert delivery.message["actor"] == "a@x.com"
	assert outcome.fired


def test_disabled_unknown_and_muted_members_get_nothing(ctx):
	ctx.mutes.mute(channel_target("ops"), SUPPORT)
	outcome = channel_post(channel(SUPPORT, OFF_USER, "ghost@example.com"), "hi", "a@x.com", "e", ctx)
	verdicts = {r.user: r.verdict for r in outcome.recipients}
	assert verdicts == {SUPPORT: MUTED, OFF_USER: DISABLED, "ghost@example.com": NO_SUCH_USER}
	assert outcome.deliveries == []
	assert not outcome.fired
