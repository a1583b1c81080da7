"""Audiences: who each row type names, per-row conditions, duplicates and Guest."""

import json

import pytest
from conftest import (
	ACTOR,
	BLIND,
	COMMENTER,
	FOLLOWER,
	MANAGER,
	OFF_USER,
	OWNER,
	SUPPORT,
	audience,
	delivered_to,
	users_of,
)

from rt_studio.engine import evaluate, preview
from rt_studio.engine.evaluate import ACTOR_EXCLUDED, DELIVER, DISABLED, NO_READ, NO_SUCH_USER


@pytest.fixture
def resolve(new_rule, make_event, ctx):
	"""Evaluate a rule with the given audience rows; returns the outcome."""

	def run(*rows, doc=None, actor=ACTOR, **overrides):
		rule = new_rule(rule_name="Audience", audience=audience(*rows), **overrides)
		return evaluate(rule, make_event(doc=doc, actor=actor), ctx)

	return run


def test_owner(resolve):
	outcome = resolve("Owner")
	assert users_of(outcome) == {OWNER: DELIVER}
	assert outcome.recipients[0].source == "Owner"
	assert delivered_to(outcome) == [OWNER]


def test_actor(resolve):
	assert users_of(resolve("Actor")) == {ACTOR: ACTOR_EXCLUDED}
	assert delivered_to(resolve("Actor", exclude_actor=0)) == [ACTOR]


def test_assignees_from_assign_json(resolve, todo):
	doc = {**todo, "_assign": json.dumps([SUPPORT, MANAGER])}
	outcome = resolve("Assignees", doc=doc)
	assert users_of(outcome) == {SUPPORT: DELIVER, MANAGER: DELIVER}
	assert users_of(resolve("Assignees")) == {}


def test_followers_are_owner_assignees_follows_and_commenters(resolve, todo):
	doc = {
		**todo,
		"_assign": json.dumps([SUPPORT]),
		"_comments": json.dumps([{"by": COMMENTER, "comment": "hi"}, {"comment": "anonymous"}]),
	}
	outcome = resolve("Followers", doc=doc)
	assert list(users_of(outcome)) == [OWNER, SUPPORT, FOLLOWER, COMMENTER]
	assert delivered_to(outcome) == [OWNER, SUPPORT, FOLLOWER, COMMENTER]


def test_user_field(resolve):
	assert users_of(resolve(("User Field", {"user_field": "allocated_to"}))) == {SUPPORT: DELIVER}


def test_user_field_of_child_rows(resolve, todo):
	doc = {
		**todo,
		"approvals": [
			{"approver": SUPPORT},
			{"approver": None},
			{"approver": MANAGER},
			{"approver": SUPPORT},
		],
	}
	outcome = resolve(("User Field", {"user_field": "approvals.approver"}), doc=doc)
	assert users_of(outcome) == {SUPPORT: DELIVER, MANAGER: DELIVER}


def test_user_field_empty_or_missing_names_nobody(resolve, todo):
	outcome = resolve(("User Field", {"user_field": "allocated_to"}), doc={**todo, "allocated_to": None})
	assert outcome.recipients == []
	assert outcome.reason == "the audience is empty"
	assert not outcome.fired


def test_user_field_through_a_field_that_is_not_a_table_is_a_rule_error(resolve):
	outcome = resolve(("User Field", {"user_field": "owner.user"}))
	assert not outcome.fired
	assert outcome.error.field == "audience row 1: user field"
	assert "'owner' is not a table field" in outcome.error.problem


def test_role_names_enabled_users_only(resolve):
	outcome = resolve(("Role", {"role": "Support Team"}))
	assert users_of(outcome) == {ACTOR: ACTOR_EXCLUDED, SUPPORT: DELIVER, BLIND: NO_READ}
	assert OFF_USER not in users_of(outcome)
	assert delivered_to(outcome) == [SUPPORT]


def test_user(resolve):
	assert delivered_to(resolve(("User", {"user": MANAGER}))) == [MANAGER]


def test_channel_members_by_user_and_role(resolve):
	outcome = resolve(("Channel", {"channel": "support"}))
	assert users_of(outcome) == {FOLLOWER: DELIVER, MANAGER: DELIVER}


def test_channel_members_by_reference_document(resolve):
	outcome = resolve(("Channel", {"channel": "readers of TD-9"}))
	# can_read ToDo or "*" (COMMENTER reads only TD-1, BLIND nothing, OFF_USER is not enabled)
	assert set(users_of(outcome)) == {OWNER, ACTOR, SUPPORT, MANAGER, FOLLOWER}


def test_disabled_channel_names_nobody(resolve):
	outcome = resolve(("Channel", {"channel": "closed"}))
	assert outcome.recipients == []
	assert outcome.error is None
	assert not outcome.fired


def test_missing_channel_is_a_rule_error_naming_the_row(resolve):
	outcome = resolve("Owner", ("Channel", {"channel": "nope"}))
	assert not outcome.fired
	assert outcome.deliveries == []
	assert outcome.error.rule == "Audience"
	assert outcome.error.field == "audience row 2: channel"
	assert outcome.error.problem == "Realtime Channel 'nope' does not exist: choose an existing channel"


def test_document_viewers_is_the_doc_room(resolve):
	outcome = resolve("Document Viewers")
	assert users_of(outcome) == {"doc:ToDo/TD-1": DELIVER}
	delivery = outcome.deliveries[0]
	assert (delivery.user, delivery.room) == (None, "doc:ToDo/TD-1")


def test_everyone_never_reaches_a_user_without_read_permission(resolve, todo):
	outcome = resolve("Everyone")
	verdicts = users_of(outcome)
	assert verdicts[BLIND] == NO_READ
	assert verdicts[COMMENTER] == DELIVER  # may read ToDo/TD-1 by name
	assert OFF_USER not in verdicts
	assert "Guest" not in verdicts
	assert set(delivered_to(outcome)) == {OWNER, SUPPORT, MANAGER, FOLLOWER, COMMENTER}

	other = resolve("Everyone", doc={**todo, "name": "TD-2"})
	assert users_of(other)[COMMENTER] == NO_READ
	assert set(delivered_to(other)) == {OWNER, SUPPORT, MANAGER, FOLLOWER}


def test_per_row_condition(resolve, todo):
	rows = [("User", {"user": SUPPORT, "condition": "doc.priority == 'High'"}), ("User", {"user": MANAGER})]
	assert list(users_of(resolve(*rows))) == [SUPPORT, MANAGER]
	assert list(users_of(resolve(*rows, doc={**todo, "priority": "Low"}))) == [MANAGER]


def test_per_row_condition_that_raises_is_a_rule_error(resolve):
	outcome = resolve("Owner", ("User", {"user": SUPPORT, "condition": "doc.customer.name"}))
	assert not outcome.fired
	assert outcome.error.field == "audience row 2: condition"
	assert "AttributeError" in outcome.error.problem


def test_duplicates_across_rows_collapse_to_one_delivery(resolve, todo):
	doc = {**todo, "_assign": json.dumps([OWNER, SUPPORT]), "allocated_to": OWNER}
	outcome = resolve(
		"Owner",
		("User", {"user": OWNER}),
		"Followers",
		"Assignees",
		("User Field", {"user_field": "allocated_to"}),
		"Document Viewers",
		"Document Viewers",
		doc=doc,
	)
	assert delivered_to(outcome) == [OWNER, SUPPORT, FOLLOWER, "doc:ToDo/TD-1"]
	assert [rec.source for rec in outcome.recipients] == [
		"Owner",
		"Followers",
		"Followers",
		"Document Viewers",
	]


def test_guest_is_never_a_recipient(resolve, todo):
	doc = {**todo, "owner": "Guest", "allocated_to": "Guest", "_assign": json.dumps(["Guest"])}
	rows = [
		"Owner",
		"Actor",
		"Assignees",
		("User Field", {"user_field": "allocated_to"}),
		("User", {"user": "Guest"}),
	]
	outcome = resolve(*rows, doc=doc, actor="Guest", exclude_actor=0)
	assert outcome.recipients == []
	assert "Guest" not in users_of(resolve("Everyone"))


def test_disabled_user_named_directly_gets_the_disabled_verdict(resolve):
	outcome = resolve(("User", {"user": OFF_USER}), ("User", {"user": "nobody@example.com"}))
	assert users_of(outcome) == {OFF_USER: DISABLED, "nobody@example.com": NO_SUCH_USER}
	assert outcome.deliveries == []


def test_one_user_in_any_case_and_spacing_is_one_recipient(resolve, todo):
	spelled = f"  {SUPPORT.upper()} "
	doc = {**todo, "allocated_to": spelled}
	outcome = resolve(("User", {"user": SUPPORT}), ("User Field", {"user_field": "allocated_to"}), doc=doc)
	assert users_of(outcome) == {SUPPORT: DELIVER}
	assert [d.user for d in outcome.deliveries] == [SUPPORT]
	# first spelled oddly: still delivered under the user's own name
	outcome = resolve(("User Field", {"user_field": "allocated_to"}), ("User", {"user": SUPPORT}), doc=doc)
	assert delivered_to(outcome) == [SUPPORT]


def test_the_actor_is_excluded_whatever_the_case(resolve):
	outcome = resolve(("User", {"user": f" {ACTOR.title()}"}), actor=ACTOR.upper())
	assert users_of(outcome) == {ACTOR: ACTOR_EXCLUDED}
	assert outcome.deliveries == []


def test_a_value_that_names_no_user_is_shown_not_sent(resolve, new_rule, make_event, ctx, todo):
	doc = {**todo, "allocated_to": " ghost@example.com"}
	outcome = resolve(("User Field", {"user_field": "allocated_to"}), "Owner", doc=doc)
	assert users_of(outcome) == {"ghost@example.com": NO_SUCH_USER, OWNER: DELIVER}
	assert delivered_to(outcome) == [OWNER]
	rule = new_rule(audience=audience(("User Field", {"user_field": "allocated_to"})))
	shown = preview(rule, make_event(doc=doc), ctx)
	assert [(r.user, r.verdict) for r in shown.recipients] == [("ghost@example.com", NO_SUCH_USER)]
	assert not shown.fired


def test_preview_shows_every_audience_recipient(new_rule, make_event, ctx):
	rule = new_rule(audience=audience("Everyone", "Document Viewers"))
	outcome = preview(rule, make_event(), ctx)
	assert users_of(outcome) == {
		OWNER: DELIVER,
		ACTOR: ACTOR_EXCLUDED,
		SUPPORT: DELIVER,
		BLIND: NO_READ,
		MANAGER: DELIVER,
		FOLLOWER: DELIVER,
		COMMENTER: DELIVER,
		"doc:ToDo/TD-1": DELIVER,
	}
