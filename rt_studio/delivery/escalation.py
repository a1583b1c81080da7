"""Email when a message stays unread: each rule's Email If Not Read Within
(`escalate_after_minutes`), run by the scheduler every minute over the inbox's items.

Called by: the scheduler (`escalate_due`).
"""

import json
from datetime import datetime, timedelta
from html import unescape

import frappe
from frappe.utils import escape_html, get_url_to_form, get_url_to_list, now_datetime, strip_html

from rt_studio import rule_cache as cache
from rt_studio.delivery.inbox import DOCTYPE
from rt_studio.delivery.mutes import SiteMutes
from rt_studio.engine.due import LONGEST_HOLD
from rt_studio.engine.mutes import rule_target

#: Due escalations decided per transaction: a backlog (after downtime) goes out in commits of this
#: size, each holding row locks only on its own items for a couple of hundred emails' worth of work.
ESCALATE_CHUNK = 200

SENT, MUTED, NO_EMAIL, NO_PERMISSION, NO_EMAIL_ACCOUNT = (
	"Sent",
	"Muted",
	"No Email",
	"No Permission",
	"No Email Account",
)


def escalate_due(now: datetime | None = None) -> None:
	"""Email every message still unread and not archived whose rule's Email If Not Read Within has
	passed since it was sent (scheduled every minute; `now`, in the site's time zone, lets tests
	set the clock).

	Each item is decided once: sent, or why not (the user muted the rule, has no email or may no
	longer read the document). A rule whose send window is closed waits for it to open; a message
	whose email is more than LONGEST_HOLD overdue (the rule was disabled meanwhile, the scheduler
	was off) is left alone. Items are claimed with SKIP LOCKED, so two runs at once never email
	the same message twice; a read committed before the claim prevents the email.
	"""
	now = now or now_datetime()
	no_account = False
	for rule in cache.get_index().rules.values():
		if not (rule.enabled and rule.escalate_after_minutes) or not _window_open(rule, now):
			continue
		due_since = now - timedelta(minutes=rule.escalate_after_minutes)
		while items := _claim_due(rule.name, due_since - LONGEST_HOLD, due_since):
			for item in items:
				no_account = _escalate(item, rule, now) == NO_EMAIL_ACCOUNT or no_account
			frappe.db.commit()
	if no_account:
		frappe.log_error(
			title="RT Studio: unread messages were not emailed",
			message="The site has no outgoing Email Account: set one up in Email Account (Default "
			"Outgoing) so rules that email unread messages can send them.",
		)


def _window_open(rule, now: datetime) -> bool:
	return rule.send_window is None or rule.send_window.next_open(now) == now


def _claim_due(rule: str, sent_after: datetime, sent_before: datetime) -> list:
	item = frappe.qb.DocType(DOCTYPE)
	return (
		frappe.qb.from_(item)
		.select(item.name, item.user, item.payload)
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


def _escalate(item, rule, now: datetime) -> str:
	"""Send the item's email or record why not."""
	message = json.loads(item.payload)
	outcome = _why_not(item.user, message, rule)
	if outcome is None:
		try:
			_send_email(item.user, message)
			outcome = SENT
		except frappe.OutgoingEmailError:
			outcome = NO_EMAIL_ACCOUNT
	frappe.db.set_value(
		DOCTYPE, item.name, {"escalated_at": now, "escalation": outcome}, update_modified=False
	)
	return outcome


def _why_not(user: str, message: dict, rule) -> str | None:
	if not rule.critical and SiteMutes().muted(rule_target(rule.name), [user]):
		return MUTED
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
