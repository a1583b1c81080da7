"""The API for System Managers who build rules: preview, test fire (in a job for a large
audience), audience size, backtest, traces, rule files (export, check, import) and the form's
live check. Every endpoint checks the caller's role first; none of them changes a document
but import. The desk calls them as `rt_studio.api.<name>`.
"""

import dataclasses
import json
from collections import Counter

import frappe
from frappe import _

from rt_studio.delivery import outbox, preferences
from rt_studio.delivery import trace as trace_log
from rt_studio.delivery.context import context_for
from rt_studio.delivery.deferred import LARGE_AUDIENCE
from rt_studio.delivery.rate_limit import UnlimitedRateLimiter
from rt_studio.desk import backtest as history
from rt_studio.engine.backtest import replay
from rt_studio.engine.changes import simulated_before
from rt_studio.engine.due import due_at, send_at
from rt_studio.engine.evaluate import DELIVER, Event, Mode, evaluate, run
from rt_studio.engine.events import METHOD, TIME_EVENTS, VALUE_CHANGE, normalize_event
from rt_studio.engine.rules import RULE_DOCTYPE, parse_rule
from rt_studio.files import rule_files
from rt_studio.files.rule_checks import split_field, throw_problems
from rt_studio.people.permissions import MANAGER

#: Recipients a preview shows with their texts; the counts cover the whole audience.
PREVIEW_SAMPLE = 50


def _compiled(rule_name: str):
	frappe.only_for(MANAGER)
	doc = frappe.get_doc(RULE_DOCTYPE, rule_name)
	rule, problems = parse_rule(doc.as_dict())
	throw_problems(
		problems,
		_("Rule {0} does not compile:").format(frappe.bold(frappe.utils.escape_html(rule_name))),
		_("Rule does not compile"),
	)
	return rule


def _event_for(rule, target, event: str | None) -> Event:
	"""The event to preview: the document as it is now; for Value Change, a simulated change;
	for Method, a call of the rule's method; for a time event, the document coming due now."""
	label = normalize_event(event) if event else rule.event
	if label is None:
		frappe.throw(_("{0} is not an event").format(frappe.bold(event)))
	snapshot = target.as_dict(convert_dates_to_str=False)
	before = simulated_before(rule, snapshot) if label == VALUE_CHANGE and rule.value_changed else None
	method = rule.method if label == METHOD else ""
	return Event(target.doctype, target.name, label, snapshot, before, frappe.session.user, method)


def _target(rule, docname: str):
	if not frappe.db.exists(rule.document_type, docname):
		frappe.throw(_("{0} {1} does not exist").format(rule.document_type, frappe.bold(docname)))
	target = frappe.get_doc(rule.document_type, docname)
	target.check_permission("read")
	return target


@frappe.whitelist()
def preview(rule: str, docname: str, event: str | None = None) -> dict:
	"""The condition result and reason, the count of each verdict over the whole audience, and
	PREVIEW_SAMPLE recipients (those who would get it first) with their rendered texts.

	No side effects: nothing is published, logged, counted or written. Bounded for any
	audience: verdicts are decided in bulk (people/users.py: a few queries per thousand users), texts
	rendered and recipients returned for the sample only.
	"""
	compiled = _compiled(rule)
	target = _target(compiled, docname)
	ev = _event_for(compiled, target, event)
	if compiled.event != ev.event:
		compiled = dataclasses.replace(compiled, event=ev.event)
	ctx = context_for(target)
	outcome = run(compiled, ev, ctx, Mode(preview=True, texts_for=PREVIEW_SAMPLE))
	result = outcome.as_dict()
	result["counts"] = dict(Counter(rec["verdict"] for rec in result["recipients"]))
	result["total"] = len(result["recipients"])
	result["recipients"] = sorted(result["recipients"], key=lambda rec: rec["verdict"] != DELIVER)[
		:PREVIEW_SAMPLE
	]
	result["doctype"], result["docname"] = target.doctype, target.name
	preferences.annotate(result["recipients"], compiled.name, compiled.critical)
	result["simulated_before"] = _simulated(compiled, ev)
	result["due"] = _due(compiled, ev)
	return result


def _simulated(rule, event: Event) -> dict | None:
	"""The watched value the preview pretended the document had before (per row for table.field)."""
	if event.before is None:
		return None
	table, field = split_field(rule.value_changed)
	if field is None:
		return {table: event.before.get(table)}
	return {rule.value_changed: [row.get(field) for row in event.before.get(table) or ()]}


def _due(rule, event: Event) -> dict | None:
	"""For a time rule: when its message about this document is due and when it may go out."""
	if rule.event not in TIME_EVENTS:
		return None
	due = due_at(rule, event.doc)
	sending = send_at(rule, due) if due else None
	return {
		"due_at": due.isoformat(sep=" ") if due else None,
		"send_at": sending.isoformat(sep=" ") if sending else None,
	}


@frappe.whitelist(methods=["POST"])
def test_fire(rule: str, docname: str, to: str = "me", background: bool | None = None) -> dict:
	"""Send the rule's message for a document now, whatever the condition says.

	`to="me"` sends to the caller only; `to="audience"` to the rule's real audience, with
	every permission verdict applied. Rate limits are neither applied nor used up. An
	audience of more than LARGE_AUDIENCE users is handed to a worker that reports progress,
	as a live save hands it to the delivery job: the server decides, `background` (sent by
	earlier desk code) is ignored.
	"""
	if to not in ("me", "audience"):
		frappe.throw(_("to must be 'me' or 'audience'"))
	compiled = _compiled(rule)
	target = _target(compiled, docname)
	result = _test_fire(compiled, target, to, defer_above=LARGE_AUDIENCE)
	if result.get("deferred"):
		frappe.enqueue(
			"rt_studio.desk.authoring.test_fire_job",
			queue="long",
			rule=rule,
			docname=docname,
			enqueue_after_commit=True,
		)
		return {"queued": True, "recipients": result["deferred"]}
	return result


def _test_fire(compiled, target, to: str, progress=None, defer_above: int | None = None) -> dict:
	ev = _event_for(compiled, target, None)
	ctx = context_for(target)
	ctx.limiter = UnlimitedRateLimiter()
	ctx.progress = progress
	if to == "me":
		compiled = dataclasses.replace(compiled, exclude_actor=False)
		outcome = evaluate(compiled, ev, ctx, check_condition=False, only_users=[frappe.session.user])
	else:
		outcome = evaluate(compiled, ev, ctx, check_condition=False, defer_above=defer_above)
		if outcome.deferred:
			return {"deferred": outcome.deferred}
	if outcome.error is None:
		for delivery in outcome.deliveries:
			delivery.message["test_fire"] = True  # a test: never emailed when left unread
		outbox.publish(outcome)
	trace_log.record(outcome, target.doctype, target.name, test=True)
	result = outcome.as_dict()
	result["sent"] = len(outcome.deliveries)
	preferences.annotate(result["recipients"], compiled.name, compiled.critical)
	result["doctype"], result["docname"] = target.doctype, target.name
	return result


def test_fire_job(rule: str, docname: str) -> None:
	"""Background test-fire to a large audience, with a progress bar for the user who asked."""
	title = _("Test fire: {0}").format(rule)
	frappe.publish_progress(1, title=title, description=_("Checking the audience"))
	compiled = _compiled(rule)
	target = _target(compiled, docname)

	def progress(done: int, total: int) -> None:
		frappe.publish_progress(
			max(1, done * 99 // total), title=title, description=_("{0} of {1} checked").format(done, total)
		)

	result = _test_fire(compiled, target, "audience", progress)
	frappe.db.commit()
	frappe.publish_progress(100, title=title)
	frappe.publish_realtime(
		"msgprint",
		_("Test fire of {0} sent to {1} recipient(s).").format(
			frappe.bold(frappe.utils.escape_html(rule)), result["sent"]
		),
		user=frappe.session.user,
	)


@frappe.whitelist()
def audience_size(rule: str, docname: str) -> dict:
	"""How many would receive a test-fire to the audience (for the confirmation): verdicts in
	bulk, no text rendered."""
	compiled = _compiled(rule)
	target = _target(compiled, docname)
	mode = Mode(preview=True, check_condition=False, texts_for=0)
	outcome = run(compiled, _event_for(compiled, target, None), context_for(target), mode)
	return {
		"deliver": sum(1 for r in outcome.recipients if r.verdict == DELIVER),
		"total": len(outcome.recipients),
	}


@frappe.whitelist()
def export_rules(names: list[str] | str | None = None) -> list[dict]:
	"""Rules (and the channels they name) in the format `bench export-fixtures` writes."""
	frappe.only_for(MANAGER)
	if isinstance(names, str):
		try:
			names = json.loads(names) if names.strip().startswith("[") else [names]
		except ValueError as e:
			frappe.throw(_("names must be a rule name or a JSON list of names: {0}").format(e))
	return rule_files.export(names)


@frappe.whitelist(methods=["POST"])
def validate_rules(data: str | list) -> dict:
	"""Every problem of every rule and channel in `data`, without writing anything."""
	frappe.only_for(MANAGER)
	documents = rule_files.read_documents(data)
	return {"problems": [p.as_dict() for p in rule_files.problems_of(documents)], "count": len(documents)}


@frappe.whitelist(methods=["POST"])
def import_rules(data: str | list) -> dict:
	"""Import rules and channels all or nothing: every one is validated before any is written."""
	frappe.only_for(MANAGER)
	documents = rule_files.read_documents(data)
	problems = rule_files.problems_of(documents)
	throw_problems(
		problems,
		_("Nothing was imported:"),
		_("Nothing imported: {0} problem(s)").format(len(problems)),
		name_rules=True,
	)
	if len(documents) > rule_files.BACKGROUND_IMPORT_AT:
		frappe.enqueue(
			"rt_studio.files.rule_files.import_job",
			queue="long",
			documents=documents,
			enqueue_after_commit=True,
		)
		return {"queued": True, "count": len(documents)}
	return {"imported": rule_files.import_all(documents)}


@frappe.whitelist()
def trace(rule: str | None = None, limit: int = 50) -> list[dict]:
	"""The last evaluations of one rule (or of all rules), newest first."""
	frappe.only_for(MANAGER)
	return trace_log.read(rule, limit=min(int(limit), trace_log.ALL_RULES))


@frappe.whitelist(methods=["POST"])
def check_rule(doc: str | dict) -> list[dict]:
	"""Problems of an unsaved rule as the form holds it, for live checks while editing."""
	frappe.only_for(MANAGER)
	try:
		data = json.loads(doc) if isinstance(doc, str) else doc
	except (ValueError, RecursionError):
		frappe.throw(_("doc must be the rule as a JSON object"))
	if not isinstance(data, dict):
		frappe.throw(_("doc must be the rule as a JSON object"))
	return [p.as_dict() for p in rule_files.rule_problems(data)]


@frappe.whitelist()
def backtest(rule: str, days: int = 7) -> dict:
	"""What the rule would have sent over the document history of the last `days` days: counts
	per day and per recipient, a few rendered samples, and what could not be replayed. Sends
	nothing and writes nothing (see rt_studio.desk.backtest)."""
	compiled = _compiled(rule)
	days = frappe.utils.cint(days)
	if not 1 <= days <= history.MAX_DAYS:
		frappe.throw(_("Backtest {0} days: choose 1 to {1}").format(days, history.MAX_DAYS))
	since, now = history.period(days)
	events, notes, cut = history.history(compiled, since, now)
	stopped: list = []
	report = replay(compiled, history.timed(events, context_for, stopped))
	if stopped:
		notes.append(
			_("Stopped after {0} seconds: events from {1} on were not replayed").format(
				history.MAX_SECONDS, stopped[0]
			)
		)
	return {
		"rule": compiled.name,
		"event": compiled.event,
		"days": days,
		"from": since,
		"to": now,
		**report,
		"notes": notes,
		# {"limit", "replayed", "from"} when only the latest events of the period were replayed
		"cut": cut,
		"complete": not (cut or stopped),
	}
