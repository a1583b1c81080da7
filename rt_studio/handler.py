"""The document-event hook: the hot path every save, submit and delete of the site runs.

It returns before any work during install, migrate, patches and data import, for Frappe's
log DocTypes and RT Studio's own, and for DocTypes with no enabled rule (one dict lookup
after the per-request Redis read of the rules' token). It never raises into the save.
"""

import frappe

from rt_studio import cache, delivery, trace
from rt_studio.engine.docview import freeze
from rt_studio.engine.evaluate import Context, Event, evaluate
from rt_studio.engine.events import events_for_hook

#: Audiences larger than this are checked and delivered by a background job after the
#: commit, so a rule for a big role never slows the user's save.
LARGE_AUDIENCE = 100

#: DocTypes that never trigger rules: RT Studio's own and Frappe's logs, which are written
#: as a side effect of other work (a rule on them could feed itself).
IGNORED_DOCTYPES = frozenset(
	{
		"Realtime Rule",
		"Realtime Rule Audience",
		"Realtime Channel",
		"Realtime Channel Member",
		"Realtime Channel Publish Role",
		"Realtime Mute",
		"Error Log",
		"Notification Log",
		"Version",
		"Activity Log",
		"Access Log",
		"Route History",
		"Scheduled Job Log",
		"Email Queue",
		"Email Queue Recipient",
		"Submission Queue",
		"Prepared Report",
		"Deleted Document",
		"DocType",
		"Custom Field",
		"Property Setter",
		"Session Default Settings",
	}
)


def on_document_event(doc, method: str) -> None:
	"""`doc_events["*"]` entry point for every hook RT Studio listens to."""
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
		rules = index.match(doctype, events) if events else ()
		if rules:
			run_rules(doc, rules)
	except Exception:
		frappe.log_error(title="RT Studio: document event failed", reference_doctype=doctype)


def _action(doc, method: str) -> str | None:
	"""The save action under way, or None when on_change comes from db_set (no save)."""
	if method == "on_change" and (doc.doctype, doc.name) not in (frappe.flags.currently_saving or ()):
		# db_set, or the on_change Frappe runs while deleting (which is no value change)
		return "delete" if doc.flags.in_delete else None
	return getattr(doc, "_action", None)


def run_rules(doc, rules) -> None:
	"""Evaluate matched rules once per transaction each, publish and trace the outcomes."""
	done = _fired_this_transaction()
	before = doc.get_doc_before_save()
	ctx = context_for(doc)
	snapshot = freeze(doc.as_dict(convert_dates_to_str=False))
	before_snapshot = freeze(before.as_dict(convert_dates_to_str=False)) if before is not None else None
	actor = frappe.session.user
	for rule in rules:
		key = (rule.name, doc.doctype, doc.name, rule.event)
		if key in done:
			continue
		done.add(key)
		event = Event(doc.doctype, doc.name, rule.event, snapshot, before_snapshot, actor)
		outcome = evaluate(rule, event, ctx, defer_above=LARGE_AUDIENCE)
		if outcome.deferred:
			defer(rule, event)
			continue
		finish(rule, outcome, doc.doctype, doc.name)


def finish(rule, outcome, doctype: str, docname: str) -> None:
	if outcome.error:
		delivery.record_error(outcome, rule.version)
	else:
		delivery.publish(outcome)
	trace.record(outcome, doctype, docname)


def defer(rule, event: Event) -> None:
	"""Hand a large audience to a worker, once the user's transaction has committed."""
	frappe.enqueue(
		"rt_studio.handler.deliver_deferred",
		queue="short",
		enqueue_after_commit=True,
		rule=rule.name,
		doctype=event.doctype,
		docname=event.docname,
		rule_event=event.event,  # `event` is a parameter of frappe.enqueue itself
		doc=dict(event.doc),
		before=dict(event.before) if event.before is not None else None,
		actor=event.actor,
	)


def deliver_deferred(
	rule: str, doctype: str, docname: str, rule_event: str, doc: dict, before, actor: str
) -> None:
	"""Background half of a large delivery: verdicts for every user, then publish.

	Evaluates the document as it was at the event (the snapshot), with the rule as it is
	now; a rule deleted or disabled meanwhile sends nothing.
	"""
	compiled = cache.get_index().rules.get(rule)
	if compiled is None or not compiled.enabled:
		return
	source = frappe.get_doc(doctype, docname) if frappe.db.exists(doctype, docname) else None
	ctx = context_for(source)
	outcome = evaluate(compiled, Event(doctype, docname, rule_event, doc, before, actor), ctx)
	finish(compiled, outcome, doctype, docname)


def context_for(doc) -> Context:
	"""The engine context for one event on this site (Frappe's utils, Redis limits, mutes, batches)."""
	from rt_studio.batches import RedisBatches
	from rt_studio.mutes import SiteMutes
	from rt_studio.site import FrappeDirectory, RedisRateLimiter, frappe_utils, site_now

	return Context(
		FrappeDirectory(doc),
		RedisRateLimiter(),
		mutes=SiteMutes(),
		batches=RedisBatches(),
		utils=frappe_utils(),
		now=site_now,
	)


def _fired_this_transaction() -> set:
	done = getattr(frappe.local, "rt_studio_fired", None)
	if done is None:
		done = frappe.local.rt_studio_fired = set()
		frappe.db.after_commit.add(_reset_fired)
		frappe.db.after_rollback.add(_reset_fired)
	return done


def _reset_fired() -> None:
	frappe.local.rt_studio_fired = None
