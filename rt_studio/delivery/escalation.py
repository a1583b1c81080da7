"""Email when a message stays unread: each rule's Email If Not Read Within
(`escalate_after_minutes`), run by the scheduler every minute over the inbox's items.

Only messages sent since the rule's escalation was switched on are emailed: switching it on for a
busy rule must not email a week of old unread messages at once. The moment is recorded when a save
turns it on (0 to a number of minutes; changing the number keeps the moment) and, for a change
made outside the form (`set_value`, SQL, a patch), by the first run that sees it; it is forgotten
when escalation is switched off or the rule deleted. It is kept in Frappe's DefaultValue table
(parent STARTS), durable and outside the rule, so it changes no rule version and travels in no
export. Each item is decided in its own savepoint: one that fails is recorded as Failed, logged
once, and the run goes on; an error that ends the transaction (deadlock, lock wait timeout, lost
connection) propagates. Without an outgoing Email Account the run stops at the first email to
send (that item shows No Email Account and stays undecided) and every later run tries again, so
the emails go out, once, when an account exists. A message a test fire sent (TEST_FIRE_KEY in
its payload) is never emailed. Cost: two small queries a minute besides the claims.

Called by: the scheduler (`escalate_due`) and the Realtime Rule's doc_events (`on_rule_change`).
"""

import json
import traceback
from datetime import datetime, timedelta
from html import unescape

import frappe
from frappe.utils import (
	escape_html,
	get_datetime,
	get_url_to_form,
	get_url_to_list,
	now_datetime,
	strip_html,
)

from rt_studio import rule_cache as cache
from rt_studio import transaction
from rt_studio.delivery import preferences
from rt_studio.delivery.inbox import DOCTYPE
from rt_studio.delivery.mutes import SiteMutes
from rt_studio.engine.due import LONGEST_HOLD
from rt_studio.engine.mutes import rule_target

#: Due escalations decided per transaction: a backlog (after downtime) goes out in commits of this
#: size, each holding row locks only on its own items for a couple of hundred emails' worth of work.
ESCALATE_CHUNK = 200
#: DefaultValue rows {defkey: rule, defvalue: ISO moment} of when each rule's escalation began.
STARTS = "__rt_studio_escalation_starts"
#: The payload key a test fire sets on its messages: they are never emailed.
TEST_FIRE_KEY = "test_fire"
#: How often, at most, the Error Log hears that the site has no outgoing Email Account.
NO_ACCOUNT_LOG_SECONDS = 24 * 3600

SENT, MUTED, NO_EMAIL, NO_PERMISSION, NO_EMAIL_ACCOUNT = (
	"Sent",
	"Muted",
	"No Email",
	"No Permission",
	"No Email Account",
)
FAILED, TEST_FIRE = "Failed", "Test Fire"
#: The person chose Never (or the digest) for this rule's emails: final.
EMAIL_OFF = "Email Off"
#: Not an outcome that is recorded: the person is in their quiet hours, the item waits for a later
#: run (emails wait until the hours end).
QUIET_HOURS = "Quiet Hours"


def escalate_due(now: datetime | None = None) -> None:
	"""Email every message still unread and not archived whose rule's Email If Not Read Within has
	passed since it was sent, if it was sent after the rule's escalation began (scheduled every
	minute; `now`, in the site's time zone, lets tests set the clock).

	Each item is decided once: sent, or why not (the user muted the rule, has no email or may no
	longer read the document, a test fire, or Failed). A rule whose send window is closed waits
	for it to open; a message whose email is more than LONGEST_HOLD overdue (the rule was disabled
	meanwhile, the scheduler was off) is left alone. Items are claimed with SKIP LOCKED, so two runs
	at once never email the same message twice; a read committed before the claim prevents the email.
	"""
	now = now or now_datetime()
	starts = _starts(now)
	failures: list[tuple[str, str]] = []
	held: set[str] = set()  # items whose person is in quiet hours: left for a later run
	try:
		for rule in cache.get_index().rules.values():
			if not (rule.enabled and rule.escalate_after_minutes and rule.name in starts):
				continue
			if not _window_open(rule, now):
				continue
			due_since = now - timedelta(minutes=rule.escalate_after_minutes)
			sent_after = max(due_since - LONGEST_HOLD, starts[rule.name] - timedelta(microseconds=1))
			while items := _claim_due(rule.name, sent_after, due_since, held):
				for item in items:
					if _decide(item, rule, now, failures) == QUIET_HOURS:
						held.add(item.name)
				_commit(failures)
	except frappe.OutgoingEmailError:
		_commit(failures)  # what was decided before stays decided
		_log_no_account()


def _commit(failures: list[tuple[str, str]]) -> None:
	"""Commit a chunk's decisions; then one Error Log for its items that failed (Failed now, so
	never logged again)."""
	frappe.db.commit()
	if failures:
		_log_failures(failures)
		failures.clear()


def on_rule_change(doc, method: str | None = None) -> None:
	"""doc_events of Realtime Rule: record when its escalation is switched on, forget it when
	switched off or deleted."""
	recorded = frappe.db.exists("DefaultValue", {"parent": STARTS, "defkey": doc.name})
	if method == "on_trash" or not doc.get("escalate_after_minutes"):
		if recorded:
			frappe.defaults.clear_default(key=doc.name, parent=STARTS)
		return
	before = doc.get_doc_before_save()
	if not (recorded and before and before.get("escalate_after_minutes")):
		_record_start(doc.name, now_datetime())


def _starts(now: datetime) -> dict[str, datetime]:
	"""{rule: when its escalation began} of the rules that escalate; a rule switched on outside the
	form begins now, a record of a rule that no longer escalates is dropped."""
	escalating = set(
		frappe.db.sql_list("select name from `tabRealtime Rule` where escalate_after_minutes > 0")
	)
	recorded = dict(frappe.db.sql("select defkey, defvalue from `tabDefaultValue` where parent = %s", STARTS))
	stale, new = set(recorded) - escalating, escalating - set(recorded)
	for rule in stale:
		frappe.defaults.clear_default(key=rule, parent=STARTS)
	for rule in new:
		# never in the future: a run with a test's clock ahead must not hold back real messages
		recorded[rule] = _record_start(rule, min(now, now_datetime()))
	if stale or new:
		frappe.db.commit()
	return {rule: get_datetime(recorded[rule]) for rule in escalating}


def _record_start(rule: str, moment: datetime) -> str:
	value = moment.isoformat(sep=" ")
	frappe.defaults.set_default(rule, value, parent=STARTS)
	return value


def _window_open(rule, now: datetime) -> bool:
	return rule.send_window is None or rule.send_window.next_open(now) == now


def _decide(item, rule, now: datetime, failures: list[tuple[str, str]]) -> str:
	"""Escalate one item in its own savepoint: a failure rolls back only what this item did and
	marks it Failed; errors that end the transaction, and a missing Email Account, propagate. An
	item whose person is in quiet hours is left undecided (QUIET_HOURS returned)."""
	frappe.db.savepoint("rt_studio_escalation")
	try:
		outcome = _escalate(item, rule)
	except frappe.OutgoingEmailError:
		frappe.db.rollback(save_point="rt_studio_escalation")
		_record(item.name, None, NO_EMAIL_ACCOUNT)
		raise
	except Exception as error:
		if transaction.aborts_transaction(error):
			raise
		frappe.db.rollback(save_point="rt_studio_escalation")
		failures.append((item.name, traceback.format_exc()))
		outcome = FAILED
	if outcome != QUIET_HOURS:
		_record(item.name, now, outcome)
	return outcome


def _record(name: str, decided_at: datetime | None, outcome: str) -> None:
	frappe.db.set_value(
		DOCTYPE, name, {"escalated_at": decided_at, "escalation": outcome}, update_modified=False
	)


def _log_failures(failures: list[tuple[str, str]]) -> None:
	names = ", ".join(name for name, _ in failures[:20])
	frappe.log_error(
		title="RT Studio: unread messages could not be emailed",
		message=f"{len(failures)} inbox item(s) failed and will not be emailed: {names}\n\n{failures[0][1]}",
		reference_doctype=DOCTYPE,
		reference_name=failures[0][0],
	)
	frappe.db.commit()


def _log_no_account() -> None:
	key = "rt_studio:escalation_no_account_logged"
	if frappe.cache.get_value(key):
		return
	frappe.cache.set_value(key, 1, expires_in_sec=NO_ACCOUNT_LOG_SECONDS)
	frappe.log_error(
		title="RT Studio: unread messages were not emailed",
		message="The site has no outgoing Email Account: set one up in Email Account (Default "
		"Outgoing) so rules that email unread messages can send them. They are sent once it exists "
		"(messages unread for more than a week past their time are not).",
	)
	frappe.db.commit()


def _claim_due(rule: str, sent_after: datetime, sent_before: datetime, held: set[str]) -> list:
	item = frappe.qb.DocType(DOCTYPE)
	query = frappe.qb.from_(item)
	if held:
		query = query.where(item.name.notin(list(held)))
	return (
		query.select(item.name, item.user, item.payload)
		.where(item.rule == rule)
		.where(item.sent_at > sent_after)
		.where(item.sent_at <= sent_before)
		.where(item.escalated_at.isnull())
		.where(item.read_at.isnull())
		.where(item.archived_at.isnull())
		.orderby(item.sent_at)
		.limit(ESCALATE_CHUNK)
		.for_update(skip_locked=True)
		.run(as_dict=True)
	)


def _escalate(item, rule) -> str:
	"""Send the item's email, or say why not."""
	message = json.loads(item.payload)
	if message.get(TEST_FIRE_KEY):
		return TEST_FIRE
	outcome = _why_not(item.user, message, rule)
	if outcome is None:
		_send_email(item.user, message)
		outcome = SENT
	return outcome


def _why_not(user: str, message: dict, rule) -> str | None:
	if not rule.critical and SiteMutes().muted(rule_target(rule.name), [user]):
		return MUTED
	if not rule.critical and not preferences.emails_when_unread(user, rule.name):
		return EMAIL_OFF
	if not rule.critical and preferences.quiet_until(user):
		return QUIET_HOURS
	facts = frappe.db.get_value("User", user, ["enabled", "email"], as_dict=True)
	if not facts or not facts.enabled or not facts.email:
		return NO_EMAIL
	if message.get("docname") and not _may_read(user, message["doctype"], message["docname"]):
		return NO_PERMISSION
	return None


def _may_read(user: str, doctype: str, docname: str) -> bool:
	# a missing document is checked first: has_permission would report it to the desk as an error
	return bool(frappe.db.exists(doctype, docname)) and bool(
		frappe.has_permission(doctype, "read", doc=docname, user=user)
	)


def _send_email(user: str, message: dict) -> None:
	"""The rule's subject and message, as delivered, in one Email Queue row for the user."""
	subject = unescape(strip_html(message.get("subject") or "")) or message.get("rule") or ""
	body = message.get("message") or ""
	doctype, docname = message.get("doctype"), message.get("docname")
	if docname:
		url, label = get_url_to_form(doctype, docname), f"{doctype} {docname}"
	elif doctype:
		url, label = get_url_to_list(doctype), doctype
	else:
		url = label = None
	if url:
		body += f'<p><a href="{escape_html(url)}">{escape_html(frappe._("Open {0}").format(label))}</a></p>'
	frappe.sendmail(
		recipients=[frappe.db.get_value("User", user, "email")],
		subject=subject,
		message=body,
		reference_doctype=doctype if docname else None,
		reference_name=docname,
		delayed=True,
	)
