"""Templates in each recipient's language: `_("...")` renders once per language of the audience, in
that language as the directory translates it; a template without `_` renders once for all."""

import time

from conftest import OWNER, SUPPORT, CountingTemplate, audience

from rt_studio.engine import evaluate
from rt_studio.engine.dry_run import dry_run_problems

TWO_USERS = audience(("User", {"user": SUPPORT}), ("User", {"user": OWNER}))


def german_support(directory):
	directory.users[SUPPORT]["language"] = "de"
	directory.translations = {"de": {"New ToDo": "Neue Aufgabe", "by {0}": "von {0}"}}


def test_the_same_rule_sends_each_recipient_their_language(new_rule, make_event, ctx, directory):
	german_support(directory)
	rule = new_rule(
		audience=TWO_USERS, subject='{{ _("New ToDo") }}', message='{{ _("by {0}").format(actor) }}'
	)
	assert rule.subject.translated and rule.message.translated
	outcome = evaluate(rule, make_event(), ctx)
	texts = {d.user: (d.message["subject"], d.message["message"]) for d in outcome.deliveries}
	assert texts == {
		SUPPORT: ("Neue Aufgabe", "von actor@example.com"),
		OWNER: ("New ToDo", "by actor@example.com"),
	}


def test_rendered_once_per_language_not_per_user(new_rule, make_event, ctx, directory):
	german_support(directory)
	directory.users["third@example.com"] = {"roles": [], "can_read": ["ToDo"], "language": "de"}
	rule = new_rule(
		audience=audience(
			("User", {"user": SUPPORT}), ("User", {"user": OWNER}), ("User", {"user": "third@example.com"})
		),
		subject="{{ doc.name }}",
		message='{{ _("New ToDo") }}',
	)
	counter = rule.message.template = CountingTemplate(rule.message.template)
	subjects = rule.subject.template = CountingTemplate(rule.subject.template)
	outcome = evaluate(rule, make_event(), ctx)
	assert sorted(d.message["message"] for d in outcome.deliveries) == [
		"Neue Aufgabe",
		"Neue Aufgabe",
		"New ToDo",
	]
	# SUPPORT may not read every field: its view differs from the others' anyway
	assert counter.renders == 3 and subjects.renders == 3


def test_without_underscore_a_template_is_rendered_as_before(new_rule, make_event, ctx, directory):
	german_support(directory)
	rule = new_rule(audience=TWO_USERS, subject="New ToDo {{ doc.name }}")
	assert not rule.subject.translated
	outcome = evaluate(rule, make_event(), ctx)
	assert {d.message["subject"] for d in outcome.deliveries} == {"New ToDo TD-1"}


def test_preview_shows_each_recipient_their_text(new_rule, make_event, ctx, directory):
	german_support(directory)
	rule = new_rule(audience=TWO_USERS, subject='{{ _("New ToDo") }}')
	outcome = evaluate(rule, make_event(), ctx, preview=True)
	assert {rec.user: rec.subject for rec in outcome.recipients} == {
		SUPPORT: "Neue Aufgabe",
		OWNER: "New ToDo",
	}


def test_a_rule_checks_with_underscore_offline(make_rule, todo):
	from rt_studio.engine import compile_rule

	rule = compile_rule(make_rule(subject='{{ _("New ToDo") }} {{ doc.name }}'))
	assert dry_run_problems(rule, todo) == []


def test_loading_translations_is_not_charged_to_the_rules_time(new_rule, make_event, ctx, directory):
	"""A site loads a language's translations once (Frappe: over half a second, cold): that is the
	site's work, outside the rule's evaluation budget, as the audience's queries are."""
	german_support(directory)
	slow = directory.translator

	def loading(language):
		time.sleep(0.3)  # three times the default budget
		return slow(language)

	directory.translator = loading
	rule = new_rule(audience=TWO_USERS, subject='{{ _("New ToDo") }}')
	outcome = evaluate(rule, make_event(), ctx)
	assert outcome.error is None
	assert {d.message["subject"] for d in outcome.deliveries} == {"Neue Aufgabe", "New ToDo"}
