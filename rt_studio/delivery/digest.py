"""The digest: a daily or weekly email of a person's unread messages, in their own morning.

A person opts in on My Notification Preferences (`set_digest`: Daily or Weekly). A scheduled run
(`send_due`, every few minutes) finds those whose period (their local day, or ISO week) has reached
its morning (DIGEST_HOUR on their own clock, User's Time Zone else the system's) and whose digest for
that period is not yet decided. Each is decided once, under a lock on their preference row: the
unread, unarchived messages sent in the period before it (the last day, or the last seven), that the
escalation has not emailed already, of rules and channels whose email they did not set to Never,
and whose document they may still read (decided when it is built, in bulk), grouped by rule or
channel, newest first, each linking to its document, in one Email Queue row; nothing at all when
none is left. The period is recorded on the row
(`digest_sent_for`) in the transaction that queues the email, so it is never sent twice.
"""

from collections import defaultdict
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import frappe
from frappe import _
from frappe.utils import escape_html, get_system_timezone, get_url_to_form, now_datetime, strip_html

from rt_studio.delivery.escalation import SENT
from rt_studio.delivery.inbox import DOCTYPE as INBOX
from rt_studio.delivery.preferences import DOCTYPE, entry, time_zones
from rt_studio.engine.preferences import NEVER, effective
from rt_studio.people.readers import readable_by

#: The hour of the person's morning from which their digest is due.
DIGEST_HOUR = 8
#: Messages listed in one digest, at most (the newest).
MAX_ITEMS = 100
DAYS = {"Daily": 1, "Weekly": 7}


def send_due(now: datetime | None = None) -> int:
	"""Send every digest whose morning has come (`now`: naive, the site's time zone, as
	`run_time_rules`; tests set the clock). Returns how many were queued."""
	moment = (now or now_datetime()).replace(tzinfo=ZoneInfo(get_system_timezone()))
	rows = frappe.get_all(
		DOCTYPE,
		filters={"rule": ("is", "not set"), "channel": ("is", "not set"), "digest": ("in", list(DAYS))},
		fields=["name", "user", "digest", "digest_sent_for"],
	)
	zones = time_zones([row.user for row in rows])
	sent = 0
	for row in rows:
		local = moment.astimezone(ZoneInfo(zones[row.user]))
		period = _period(row.digest, local)
		if period is None or row.digest_sent_for == period:
			continue
		sent += _decide(row.name, period, moment)
		frappe.db.commit()
	return sent


def _period(frequency: str, local: datetime) -> str | None:
	"""The period whose digest is due at `local`, or None before the morning (a week's: Monday's)."""
	if frequency == "Daily":
		return local.date().isoformat() if local.hour >= DIGEST_HOUR else None
	year, week, weekday = local.isocalendar()
	if weekday == 1 and local.hour < DIGEST_HOUR:
		return None
	return f"{year}-W{week:02d}"


def _decide(name: str, period: str, moment: datetime) -> int:
	"""Decide one person's digest for `period` under a lock on their row: 1 if an email was queued."""
	row = frappe.db.get_value(
		DOCTYPE, name, ["user", "digest", "digest_sent_for"], as_dict=True, for_update=True
	)
	if not row or row.digest not in DAYS or row.digest_sent_for == period:
		return 0
	since = moment.replace(tzinfo=None) - timedelta(days=DAYS[row.digest])
	items = _items(row.user, since, moment.replace(tzinfo=None))
	if items:
		_send(row.user, row.digest, items)
	frappe.db.set_value(DOCTYPE, name, "digest_sent_for", period, update_modified=False)
	return 1 if items else 0


def _items(user: str, since: datetime, until: datetime) -> list:
	"""The user's unread messages of the period not emailed yet, whose document they may read."""
	item = frappe.qb.DocType(INBOX)
	rows = (
		frappe.qb.from_(item)
		.select(
			item.rule, item.channel, item.subject, item.reference_doctype, item.reference_name, item.sent_at
		)
		.where(item.user == user)
		.where(item.read_at.isnull())
		.where(item.archived_at.isnull())
		.where(item.sent_at > since)
		.where(item.sent_at <= until)
		.where(item.escalation.isnull() | (item.escalation != SENT))
		.orderby(item.sent_at, order=frappe.qb.desc)
		.orderby(item.seq, order=frappe.qb.desc)
		.limit(MAX_ITEMS)
		.run(as_dict=True)
	)
	names = defaultdict(set)
	for row in rows:
		if row.reference_name:
			names[row.reference_doctype].add(row.reference_name)
	readable = {doctype: readable_by(user, doctype, list(found)) for doctype, found in names.items()}
	chosen = entry(user)
	return [
		row
		for row in rows
		if (not row.reference_name or row.reference_name in readable[row.reference_doctype])
		and effective(chosen, row.rule, row.channel)["email"] != NEVER
	]


def _send(user: str, frequency: str, items: list) -> None:
	groups = defaultdict(list)
	for row in items:  # newest first, and so within each group
		groups[row.rule or f"# {row.channel}"].append(row)
	parts = []
	for title, rows in groups.items():
		lines = "".join(f"<li>{_line(row)}</li>" for row in rows)
		parts.append(f"<h4>{escape_html(title)}</h4><ul>{lines}</ul>")
	subject = (
		_("Your daily digest: {0} unread") if frequency == "Daily" else _("Your weekly digest: {0} unread")
	).format(len(items))
	frappe.sendmail(
		recipients=[frappe.db.get_value("User", user, "email")],
		subject=subject,
		message="".join(parts),
		delayed=True,
	)


def _line(row) -> str:
	# the subject as delivered is HTML (and may have been cut): as plain text here
	text = escape_html(unescape(strip_html(row.subject or ""))) or escape_html(row.rule or row.channel or "")
	if row.reference_name:
		url = get_url_to_form(row.reference_doctype, row.reference_name)
		text = f'<a href="{escape_html(url)}">{text}</a>'
	return f"{text} <small>({escape_html(str(row.sent_at)[:16])})</small>"
