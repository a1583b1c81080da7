"""Time rules on the site: the scheduler entry that sends what came due, each message once.

`run_time_rules(now=None)` runs every minute (hooks.py `scheduler_events`). For every enabled
Days/Minutes Before/After rule it asks the database for the documents whose date puts a
message's send time into (last run, now] (`engine.due.field_range`; a late run reaches back
at most `engine.due.CATCH_UP`), then decides per document with the engine (`due_in`) and
evaluates it exactly as a document event is evaluated (`handler.fire`): audience, read
permission, mutes, templates, rate limits, large audiences, trace and errors included.

Exactly once: before a message is evaluated, a Realtime Rule Due Log row named after (rule,
document, due time) is inserted in the same transaction that queues the message, and committed
with it. A repeated, late or overlapping run meets that row (MariaDB makes a second insert of
the name wait for the first transaction, then refuse it) and skips. The time of the last run is
kept in the database and moves only when a run has handled its whole interval: a run stopped by
its time limit or a crash is redone by the next one, which skips what was sent.

A rule disabled when its message comes due sends nothing then, nor later: the next runs only
look at their own intervals.
"""

import hashlib
from datetime import datetime, timedelta
from time import monotonic

import frappe
from frappe.utils import get_datetime, now_datetime

from rt_studio import rule_cache as cache
from rt_studio.delivery.context import context_for
from rt_studio.engine import due
from rt_studio.engine.evaluate import Event
from rt_studio.save.handler import fire
from rt_studio.schedule.documents import due_documents

LOG_DOCTYPE = "Realtime Rule Due Log"
#: Where the time of the last completed run is kept: a Single of its own (a global default
#: would do, but setting one clears the whole site's cache, every minute).
STATE_DOCTYPE = "Realtime Rule Schedule"
#: How often hooks.py runs `run_time_rules`: the first run ever looks back this far.
INTERVAL = timedelta(minutes=1)
#: Seconds one run may spend before it stops and leaves the rest to the next run: well inside
#: the 300 seconds RQ gives a job on Frappe's default queue.
RUN_SECONDS = 200
#: Days a due log row is kept: far longer than any run looks back (CATCH_UP plus a send
#: window's longest hold), and long enough to answer "was my reminder sent?".
KEEP_DAYS = 30


def run_time_rules(now: datetime | None = None) -> dict:
	"""Send what the time rules have due in (last run, now]; `now` is a naive datetime in the
	site's time zone (default: the current time), so tests control the clock.

	Returns {"since", "now", "sent", "complete"}: the interval, the messages handled (a rule
	may have found no one to deliver to) and whether the whole interval was handled.
	"""
	now = now or now_datetime()
	since = due.catch_up_since(last_run(), now, INTERVAL)
	deadline = monotonic() + RUN_SECONDS
	handled = 0
	for rule in cache.get_index().time_rules():
		for name, due_at in due_documents(rule, since, now):
			if monotonic() > deadline:
				return {"since": since, "now": now, "sent": handled, "complete": False}
			handled += send(rule, name, due_at, now)
	if since < now:
		set_last_run(now)
		frappe.db.commit()
	return {"since": since, "now": now, "sent": handled, "complete": True}


def last_run() -> datetime | None:
	value = frappe.db.get_single_value(STATE_DOCTYPE, "last_run", cache=False)
	return get_datetime(value) if value else None


def set_last_run(moment: datetime | None) -> None:
	frappe.db.set_single_value(STATE_DOCTYPE, "last_run", moment, update_modified=False)


def send(rule, docname: str, due_at: datetime, now: datetime) -> int:
	"""Evaluate and send the document's message unless a run already did; commit. 1 when this
	run handled it, else 0. A failure is logged and rolled back."""
	try:
		doc = frappe.get_doc(rule.document_type, docname)
		snapshot = doc.as_dict(convert_dates_to_str=False)
		if not claim(rule.name, doc.doctype, doc.name, due_at, now):
			return 0
		event = Event(doc.doctype, doc.name, rule.event, snapshot, None, actor="")
		outcome = fire(rule, event, context_for(doc))
		name = log_name(rule.name, doc.doctype, doc.name, due_at)
		frappe.db.set_value(LOG_DOCTYPE, name, "result", outcome.reason, update_modified=False)
		frappe.db.commit()
		return 1
	except Exception:
		frappe.db.rollback()
		frappe.log_error(
			title=f"RT Studio: time rule {rule.name} failed",
			reference_doctype=rule.document_type,
			reference_name=docname,
		)
		frappe.db.commit()
		return 0


def log_name(rule: str, doctype: str, docname: str, due_at: datetime) -> str:
	"""The due log's name for one message: the same (rule, document, due time), the same name."""
	key = "\n".join((rule, doctype, docname, due_at.isoformat(sep=" ")))
	return hashlib.sha1(key.encode()).hexdigest()


def claim(rule: str, doctype: str, docname: str, due_at: datetime, now: datetime) -> bool:
	"""Insert the message's due log row; False when a run already has it (sent, or sending)."""
	name = log_name(rule, doctype, docname, due_at)
	if frappe.db.exists(LOG_DOCTYPE, name):
		return False
	try:
		frappe.get_doc(
			{
				"doctype": LOG_DOCTYPE,
				"rule": rule,
				"reference_doctype": doctype,
				"reference_name": docname,
				"due_at": due_at,
				"sent_at": now,
			}
		).insert(ignore_permissions=True, set_name=name)
	except frappe.DuplicateEntryError:
		return False
	return True


def clean_up() -> None:
	"""Daily: forget due log rows older than KEEP_DAYS."""
	frappe.db.delete(LOG_DOCTYPE, {"due_at": ["<", now_datetime() - timedelta(days=KEEP_DAYS)]})
