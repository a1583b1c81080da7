"""Whether a rule is any use: its deliveries, reads and escalations, counted from what is kept anyway.

Every figure is read from rows and lists that exist for other reasons: the Realtime Inbox Item
of each delivery (sent, seen, read, archived, the escalation's outcome), the Realtime Mute rows and
the evaluation trace in Redis (rt_studio.delivery.trace). Nothing is written for analytics, so the
save path costs what it cost before. The inbox counts are a few GROUP BY queries over the
`rule_sent_at` / `sent_at` indexes; the trace holds each rule's last evaluations only (PER_RULE,
and ALL_RULES across rules), so fired / not fired / errors describe those, and say how many.

Counts cover messages sent in the last `days` days (site time zone); reads per day are counted on
the day they were read. The daily clean-up of the inbox bounds how far back anything is known.
"""

import json
from datetime import datetime

import frappe
from frappe import _
from frappe.utils import add_days, cint, get_datetime, getdate, now_datetime

from rt_studio.delivery import trace as trace_log
from rt_studio.delivery.escalation import SENT
from rt_studio.delivery.inbox import DOCTYPE as INBOX
from rt_studio.delivery.mutes import MUTE_DOCTYPE
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE

MANAGER = "System Manager"
#: The longest period asked for at once.
MAX_DAYS = 366
#: Rows of the Studio's evaluations list per page, at most.
MAX_PAGE = 100
#: Values of `result` in the evaluations filter.
RESULTS = ("fired", "not fired", "error")


@frappe.whitelist()
def rule_analytics(rule: str | None = None, channel: str | None = None, days: int = 30) -> dict:
	"""What happened to the messages of one rule, one channel, or (neither) all of them in the last
	`days` days: delivered, seen, read, archived, escalated by email, how many people mute it now,
	the read rate (read / delivered, None before the first delivery), the median minutes from
	sending to reading, and deliveries and reads per day (every day of the period, oldest first)."""
	frappe.only_for(MANAGER)
	days = _days(days)
	if rule and channel:
		frappe.throw(_("Ask for a rule or a channel, not both"))
	if rule and not frappe.db.exists(RULE_DOCTYPE, rule):
		frappe.throw(_("Realtime Rule {0} not found").format(rule), frappe.DoesNotExistError)
	if channel and not frappe.db.exists(CHANNEL_DOCTYPE, channel):
		frappe.throw(_("Realtime Channel {0} not found").format(channel), frappe.DoesNotExistError)
	since = _since(days)
	where, values = _target(rule, channel)
	values["since"] = since
	totals = frappe.db.sql(
		f"""select count(*) as delivered, count(seen_at) as seen, count(read_at) as `read`,
			count(archived_at) as archived, coalesce(sum(escalation = %(sent)s), 0) as escalated
		from `tab{INBOX}` where {where} and sent_at >= %(since)s""",
		{**values, "sent": SENT},
		as_dict=True,
	)[0]
	delivered = cint(totals.delivered)
	read = cint(totals.read)
	return {
		"delivered": delivered,
		"seen": cint(totals.seen),
		"read": read,
		"archived": cint(totals.archived),
		"escalated": cint(totals.escalated),
		"muted": _muted_by(rule, channel),
		"read_rate": round(read / delivered, 4) if delivered else None,
		"median_minutes_to_read": _median_minutes(where, values) if read else None,
		"per_day": _per_day(where, values, days),
	}


@frappe.whitelist()
def rules_overview(days: int = 30) -> dict:
	"""Every rule and channel with its deliveries and reads in the last `days` days, most delivered
	first (rules that sent nothing last), and each rule's kept evaluations (fired, not fired,
	errors): the Studio's table for finding the rule nobody reads."""
	frappe.only_for(MANAGER)
	days = _days(days)
	since = _since(days)
	rows = []
	for kind, doctype in (("rule", RULE_DOCTYPE), ("channel", CHANNEL_DOCTYPE)):
		counted = {
			row.name: row
			for row in frappe.db.sql(
				f"""select `{kind}` as name, count(*) as delivered, count(read_at) as `read`,
					coalesce(sum(escalation = %(sent)s), 0) as escalated
				from `tab{INBOX}` where `{kind}` is not null and sent_at >= %(since)s group by `{kind}`""",
				{"since": since, "sent": SENT},
				as_dict=True,
			)
		}
		for doc in frappe.get_all(doctype, fields=["name", "enabled"], order_by="name"):
			row = counted.get(doc.name) or frappe._dict(delivered=0, read=0, escalated=0)
			delivered, read = cint(row.delivered), cint(row.read)
			rows.append(
				{
					kind: doc.name,
					"kind": kind,
					"enabled": cint(doc.enabled),
					"delivered": delivered,
					"read": read,
					"escalated": cint(row.escalated),
					"read_rate": round(read / delivered, 4) if delivered else None,
				}
			)
	_add_evaluations([row for row in rows if row["kind"] == "rule"])
	rows.sort(
		key=lambda row: (-row["delivered"], row["read_rate"] or 0, row.get("rule") or row.get("channel"))
	)
	return {"days": days, "rows": rows}


@frappe.whitelist()
def evaluations(
	rule: str | None = None,
	result: str | None = None,
	doctype: str | None = None,
	since: str | None = None,
	until: str | None = None,
	start: int = 0,
	page_length: int = 20,
) -> dict:
	"""One page of the kept evaluations (newest first), filtered on the server by rule, result
	("fired", "not fired", "error"), DocType and time (site time zone, inclusive), with how many
	match, how many of those fired, did not and failed, and how many are kept to search in."""
	frappe.only_for(MANAGER)
	if result and result not in RESULTS:
		frappe.throw(_("Result {0}: choose one of {1}").format(result, ", ".join(RESULTS)))
	start = max(cint(start), 0)
	page_length = min(max(cint(page_length), 1), MAX_PAGE)
	kept = trace_log.read(rule, limit=trace_log.PER_RULE if rule else trace_log.ALL_RULES)
	low, high = _moment(since, "since"), _moment(until, "until")
	matching = [
		entry
		for entry in kept
		if (not doctype or entry.get("doctype") == doctype) and _within(entry, low, high)
	]
	counts = _result_counts(matching)
	if result:
		matching = [entry for entry in matching if _result(entry) == result]
	return {
		"entries": matching[start : start + page_length],
		"total": len(matching),
		"start": start,
		"page_length": page_length,
		"counts": counts,
		"kept": len(kept),
	}


def _days(days) -> int:
	days = cint(days)
	if not 1 <= days <= MAX_DAYS:
		frappe.throw(_("Analytics over {0} days: choose 1 to {1}").format(days, MAX_DAYS))
	return days


def _since(days: int) -> datetime:
	"""The start of the period: midnight of the first of its `days` days (today included)."""
	return get_datetime(add_days(getdate(now_datetime()), 1 - days))


def _target(rule: str | None, channel: str | None) -> tuple[str, dict]:
	if rule:
		return "rule = %(target)s", {"target": rule}
	if channel:
		return "channel = %(target)s", {"target": channel}
	return "1 = 1", {}


def _muted_by(rule: str | None, channel: str | None) -> int:
	"""People whose mute of the rule (channel, or anything) is in force now."""
	filters = {"rule": rule} if rule else {"channel": channel} if channel else {}
	where = " and ".join(f"`{field}` = %({field})s" for field in filters) or "1 = 1"
	return cint(
		frappe.db.sql(
			f"""select count(distinct user) from `tab{MUTE_DOCTYPE}`
			where {where} and (until is null or until > %(now)s)""",
			{**filters, "now": now_datetime()},
		)[0][0]
	)


def _median_minutes(where: str, values: dict) -> float:
	"""The median of read_at - sent_at over the period's read messages, in MariaDB."""
	median = frappe.db.sql(
		f"""select distinct percentile_cont(0.5) within group (
				order by timestampdiff(second, sent_at, read_at)) over ()
		from `tab{INBOX}` where {where} and sent_at >= %(since)s and read_at is not null""",
		values,
	)
	return round(float(median[0][0]) / 60, 1)


def _per_day(where: str, values: dict, days: int) -> list[dict]:
	delivered = dict(
		frappe.db.sql(
			f"""select date(sent_at), count(*) from `tab{INBOX}`
			where {where} and sent_at >= %(since)s group by date(sent_at)""",
			values,
		)
	)
	read = dict(
		frappe.db.sql(
			f"""select date(read_at), count(*) from `tab{INBOX}`
			where {where} and read_at >= %(since)s group by date(read_at)""",
			values,
		)
	)
	first = getdate(values["since"])
	dates = [add_days(first, offset) for offset in range(days)]
	return [
		{"date": str(day), "delivered": cint(delivered.get(day)), "read": cint(read.get(day))}
		for day in dates
	]


def _moment(value: str | None, name: str) -> datetime | None:
	if not value:
		return None
	try:
		return get_datetime(value).replace(tzinfo=None)
	except (ValueError, TypeError, OverflowError):
		frappe.throw(_("{0} {1}: give a date and time such as 2026-12-06 09:30").format(name, value))


def _result(entry: dict) -> str:
	if entry.get("error"):
		return "error"
	return "fired" if entry.get("fired") else "not fired"


def _result_counts(entries: list[dict]) -> dict:
	counts = {"fired": 0, "not_fired": 0, "errors": 0}
	for entry in entries:
		counts[{"fired": "fired", "not fired": "not_fired", "error": "errors"}[_result(entry)]] += 1
	return counts


def _within(entry: dict, low: datetime | None, high: datetime | None) -> bool:
	if not (low or high):
		return True
	when = get_datetime(entry["time"]).replace(tzinfo=None)  # written in the site's time zone
	return (not low or when >= low) and (not high or when <= high)


def _add_evaluations(rows: list[dict]) -> None:
	"""Each rule's kept evaluations counted, all lists read in one Redis round trip."""
	if not rows:
		return
	pipe = frappe.cache.pipeline()
	for row in rows:
		pipe.lrange(frappe.cache.make_key(trace_log._key(row["rule"])), 0, trace_log.PER_RULE - 1)
	for row, items in zip(rows, pipe.execute(), strict=True):
		row["evaluations"] = _result_counts([json.loads(item) for item in items])
