"""Field-level permissions hold in the text too: each recipient's subject and message are
rendered from the fields it may read, once per distinct set of readable fields."""

from conftest import ACTOR, FOLLOWER, OWNER, SUPPORT, USERS, CountingTemplate, audience

from rt_studio.engine import Context, evaluate, preview
from rt_studio.engine.memory import InMemoryDirectory
from rt_studio.engine.ratelimit import InMemoryRateLimiter

READERS = audience(("User", {"user": SUPPORT}), ("User", {"user": OWNER}), ("User", {"user": FOLLOWER}))


def texts(outcome) -> dict:
	return {d.user: d.message["message"] for d in outcome.deliveries}


def test_a_field_a_recipient_may_not_read_is_empty_in_its_text(new_rule, make_event, ctx, todo):
	# SUPPORT may read the ToDo but not its `priority` (a higher permission level on a site)
	rule = new_rule(
		audience=READERS, subject="{{ doc.priority }}", message="[{{ doc.priority }}] {{ doc.description }}"
	)
	outcome = evaluate(rule, make_event(), ctx)
	assert texts(outcome) == {
		SUPPORT: "[] Call the customer",
		OWNER: "[High] Call the customer",
		FOLLOWER: "[High] Call the customer",
	}
	assert {d.user: d.message["subject"] for d in outcome.deliveries} == {
		SUPPORT: "",
		OWNER: "High",
		FOLLOWER: "High",
	}


def test_texts_render_once_per_distinct_set_of_readable_fields(new_rule, make_event, ctx):
	rule = new_rule(audience=READERS, message="{{ doc.priority }}")
	counter = rule.message.template = CountingTemplate(rule.message.template)
	evaluate(rule, make_event(), ctx)
	assert counter.renders == 2  # SUPPORT's fields, and the others' (OWNER and FOLLOWER read the same)


def test_no_way_round_it_in_a_template(new_rule, make_event, ctx):
	rule = new_rule(
		audience=audience(("User", {"user": SUPPORT})),
		message=(
			"{{ doc }}|{{ doc.get('priority') }}|{{ doc['priority'] }}|{{ doc.keys()|list }}|"
			"{{ doc|tojson }}|{{ doc_before_save.priority }}|{% for k, v in doc|dictsort %}{{ v }}{% endfor %}"
		),
	)
	[delivery] = evaluate(rule, make_event(), ctx).deliveries
	assert "High" not in delivery.message["message"]
	assert "priority" not in delivery.message["message"]


def test_child_table_fields_are_hidden_in_every_row(make_event, new_rule, todo):
	users = {**USERS, SUPPORT: {**USERS[SUPPORT], "cannot_read_fields": {"ToDo": ["items.cost"]}}}
	ctx = Context(InMemoryDirectory(users), InMemoryRateLimiter())
	doc = {**todo, "items": [{"item": "A", "cost": 120}, {"item": "B", "cost": 80}]}
	rule = new_rule(
		audience=READERS,
		message="{% for row in doc.items %}{{ row.item }}:{{ row.cost }} {% endfor %}",
	)
	outcome = evaluate(rule, make_event(doc=doc), ctx)
	assert texts(outcome)[SUPPORT] == "A: B: "
	assert texts(outcome)[OWNER] == "A:120 B:80 "


def test_the_condition_still_sees_the_whole_document(new_rule, make_event, ctx):
	rule = new_rule(audience=READERS, condition="doc.priority == 'High'", message="{{ doc.priority }}")
	outcome = evaluate(rule, make_event(), ctx)
	assert outcome.condition is True
	assert texts(outcome)[SUPPORT] == ""


def test_a_room_sees_only_what_every_reader_may_read(new_rule, make_event, ctx):
	rule = new_rule(audience=audience("Document Viewers"), message="{{ doc.priority }}|{{ doc.status }}")
	[delivery] = evaluate(rule, make_event(), ctx).deliveries
	assert delivery.room == "doc:ToDo/TD-1"
	assert delivery.message["message"] == "|Closed"


def test_a_template_naming_the_recipient_still_hides_the_field(new_rule, make_event, ctx):
	rule = new_rule(audience=READERS, message="{{ recipient }}: {{ doc.priority }}")
	assert texts(evaluate(rule, make_event(), ctx)) == {
		SUPPORT: f"{SUPPORT}: ",
		OWNER: f"{OWNER}: High",
		FOLLOWER: f"{FOLLOWER}: High",
	}


def test_preview_shows_each_recipient_its_own_text(new_rule, make_event, ctx):
	rule = new_rule(audience=READERS, message="{{ doc.priority }}")
	outcome = preview(rule, make_event(actor=ACTOR), ctx)
	assert {rec.user: rec.message for rec in outcome.recipients} == {
		SUPPORT: "",
		OWNER: "High",
		FOLLOWER: "High",
	}


def test_the_fields_payload_follows_the_same_levels(new_rule, make_event, ctx):
	rule = new_rule(audience=READERS, fields="priority, status")
	outcome = evaluate(rule, make_event(), ctx)
	assert {d.user: d.message["fields"] for d in outcome.deliveries} == {
		SUPPORT: {"status": "Closed"},
		OWNER: {"priority": "High", "status": "Closed"},
		FOLLOWER: {"priority": "High", "status": "Closed"},
	}
