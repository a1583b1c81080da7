"""The document-event hook: the hot path every save, submit and delete of the site runs.

It returns before any work during install, migrate, patches and data import, for Frappe's
log DocTypes and RT Studio's own, and for DocTypes with no enabled rule (one dict lookup
after the per-request Redis read of the rules' token). Each rule's own code runs under the
evaluation budget (engine/budget.py), so a runaway rule costs the save at most its budget;
its error, like any rule error, is recorded and the save goes on. Anything else failing here
is written to the Error Log (once an hour for the same error: a fault every save meets would
otherwise cost each save the Error Log's traceback), not raised into the save, except an error
after which the transaction cannot go on (a deadlock, a lock wait timeout, a lost connection),
or Redis out of reach while rules of the DocType are evaluated (restarting, gone): that one fails
the save, visibly and with nothing sent, rather than commit a change whose messages are lost. A
DocType without rules is not touched by a Redis outage: its rules are then read from MariaDB.
"""

import frappe

from rt_studio import rule_cache as cache
from rt_studio import transaction
from rt_studio.delivery import outbox, trace
from rt_studio.delivery.context import context_for
from rt_studio.delivery.deferred import LARGE_AUDIENCE, defer
from rt_studio.engine.docview import freeze
from rt_studio.engine.evaluate import Context, Event, evaluate
from rt_studio.engine.events import IGNORED_DOCTYPES, METHOD, events_for_hook


def on_document_event(doc, method: str, *args, **kwargs) -> None:
	"""`doc_events["*"]` entry point for every hook RT Studio listens to (the arguments some
	methods get, such as after_rename's old and new name, are not used)."""
	flags = frappe.local.flags
	if flags.in_install or flags.in_migrate or flags.in_patch or flags.in_import:
		return
	doctype = doc.doctype
	if doctype in IGNORED_DOCTYPES:
		return
	try:
		index = cache.get_index()
		if not index.has_rules(doctype):
			return
		events = events_for_hook(method, in_insert=bool(doc.flags.in_insert), action=_action(doc, method))
		rules = (index.match(doctype, events) if events else ()) + index.match_method(doctype, method)
		if rules:
			run_rules(doc, rules, method)
	except Exception as e:
		if transaction.aborts_transaction(e) or transaction.lost_redis(e):
			# a deadlock, a lost connection, Redis restarting: the save fails, visibly, with
			# nothing sent, rather than commit with its messages lost
			raise
		transaction.log_once("RT Studio: document event failed", e, reference_doctype=doctype)


def _action(doc, method: str) -> str | None:
	"""The save action under way, or None when on_change comes from db_set (no save)."""
	if method == "on_change" and (doc.doctype, doc.name) not in (frappe.flags.currently_saving or ()):
		# db_set, or the on_change Frappe runs while deleting (which is no value change)
		return "delete" if doc.flags.in_delete else None
	return getattr(doc, "_action", None)


def run_rules(doc, rules, method: str = "") -> None:
	"""Evaluate matched rules, publish and trace the outcomes.

	A rule fires at most once per document and event in a transaction (a save then a submit,
	or a script saving twice, is one user action): what fired, or was handed to a delivery
	job, is remembered until the transaction ends. A rule that did not fire is evaluated again
	at the next save, where its condition or transition may hold. A Method rule fires for each
	call of its method: only that method's hook raises it, once per call.
	"""
	fired = _fired_this_transaction()
	before = doc.get_doc_before_save()
	ctx = context_for(doc)
	snapshot = freeze(doc.as_dict(convert_dates_to_str=False))
	before_snapshot = freeze(before.as_dict(convert_dates_to_str=False)) if before is not None else None
	actor = frappe.session.user
	for rule in rules:
		key = (rule.name, doc.doctype, doc.name, rule.event)
		if key in fired:
			continue
		event = Event(doc.doctype, doc.name, rule.event, snapshot, before_snapshot, actor, method)
		outcome = fire(rule, event, ctx)
		if (outcome.deferred or outcome.fired) and rule.event != METHOD:
			fired.add(key)


def fire(rule, event: Event, ctx: Context):
	"""Evaluate one rule for one event as live firing does (document events and time rules
	alike): publish and trace the outcome, or hand a large audience to a job after the commit."""
	outcome = evaluate(rule, event, ctx, defer_above=LARGE_AUDIENCE)
	if outcome.deferred:
		defer(rule, event, outcome)
	else:
		finish(rule, outcome, event.doctype, event.docname)
	return outcome


def finish(rule, outcome, doctype: str, docname: str) -> None:
	if outcome.error:
		outbox.record_error(outcome, rule.version)
	elif outcome.deliveries:
		outbox.publish(outcome)
	trace.record(outcome, doctype, docname)


def _fired_this_transaction() -> set:
	return transaction.state("rt_studio_fired", set)
