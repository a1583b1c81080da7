"""What a user's desk asks about their own mutes: mute, unmute and "My realtime notifications".

The desk calls them as `rt_studio.api.mute`, `unmute` and `my_notifications`; the state they
change (Realtime Mute rows and the Redis hashes evaluation reads) is kept by delivery/mutes.py.

Only the session user's own mutes are changed, through `mute` and `unmute`: the API takes
no user, and the desk lets System Managers read mutes, never write them (Administrator, as
everywhere in Frappe, is not bound by permissions). A `critical` rule cannot be muted. A user
mutes only what reached them (a message in their delivery log), a channel they are a member
of, or, if they may read Realtime Rules (System Managers), any rule: anyone else naming a rule
or channel gets one and the same answer, so `mute` tells nobody which rules exist or which are
critical (`_concerns`).
"""

import frappe
from frappe import _
from frappe.utils import add_to_date, cint, now_datetime

from rt_studio.delivery.delivery_log import read, received_from
from rt_studio.delivery.mutes import MUTE_DOCTYPE, apply_after_commit, epoch, target_of
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE
from rt_studio.people.permissions import is_manager, is_member

#: The longest timed mute (a year); anything longer is "until unmuted".
MAX_MINUTES = 366 * 24 * 60
#: The durations the desk offers, in minutes (None: until unmuted).
DURATIONS = {"1 hour": 60, "1 day": 24 * 60, "until unmuted": None}


def _session_user() -> str:
	user = frappe.session.user
	if user == "Guest":
		raise frappe.PermissionError(_("Log in to change your notifications"))
	return user


def _checked_target(user: str, rule: str | None, channel: str | None) -> tuple[str | None, str | None]:
	"""The rule or channel named, after checking it concerns the user, exists and may be muted."""
	if bool(rule) == bool(channel):
		frappe.throw(_("Name one rule or one channel to mute"), title=_("Mute"))
	if not _concerns(user, rule, channel):
		frappe.throw(
			_("You have received nothing from {0} to mute: mute it from one of its messages").format(
				frappe.bold(rule or channel)
			),
			title=_("Mute"),
		)
	if rule:
		critical = frappe.db.get_value(RULE_DOCTYPE, rule, "critical")
		if critical is None:
			frappe.throw(_("Realtime Rule {0} does not exist").format(frappe.bold(rule)))
		if cint(critical):
			frappe.throw(
				_("Realtime Rule {0} is critical: everyone it names receives it, it cannot be muted").format(
					frappe.bold(rule)
				)
			)
		return rule, None
	if not frappe.db.exists(CHANNEL_DOCTYPE, channel):
		frappe.throw(_("Realtime Channel {0} does not exist").format(frappe.bold(channel)))
	return None, channel


def _concerns(user: str, rule: str | None, channel: str | None) -> bool:
	"""Whether the user may mute `rule` or `channel`, without telling anyone else it exists.

	A rule: if a message of it is in the user's delivery log (what the desk's alerts and "My
	realtime notifications" offer to mute), or if the user may read Realtime Rules (System
	Managers: they list every rule anyway, and may mute one before it sends them anything). A
	channel: if a post of it is in the log, or if the user may read it (a member, or a System
	Manager). Anyone else learns nothing from the answer: not whether it exists, nor whether it
	is critical.
	"""
	if rule:
		return frappe.has_permission(RULE_DOCTYPE, "read", user=user) or received_from(user, rule=rule)
	if is_manager(user) or (frappe.db.exists(CHANNEL_DOCTYPE, channel) and is_member(channel, user)):
		return True
	return received_from(user, channel=channel)


def _minutes(minutes) -> int | None:
	if minutes in (None, "", "null"):
		return None
	value = cint(minutes)
	if not 1 <= value <= MAX_MINUTES:
		frappe.throw(
			_("minutes must be between 1 and {0}, or empty to mute until you unmute").format(MAX_MINUTES)
		)
	return value


@frappe.whitelist(methods=["POST"])
def mute(rule: str | None = None, channel: str | None = None, minutes: int | None = None) -> dict:
	"""Mute a rule or a channel for the session user: for `minutes`, or until unmuted (None)."""
	user = _session_user()
	rule, channel = _checked_target(user, rule, channel)
	minutes = _minutes(minutes)
	_delete_own(user, rule, channel)
	until = add_to_date(now_datetime(), minutes=minutes) if minutes else None
	frappe.get_doc(
		{"doctype": MUTE_DOCTYPE, "user": user, "rule": rule, "channel": channel, "until": until}
	).insert(ignore_permissions=True)
	apply_after_commit(user, target_of(rule, channel), epoch(until))
	return {"rule": rule, "channel": channel, "until": until}


@frappe.whitelist(methods=["POST"])
def unmute(rule: str | None = None, channel: str | None = None) -> dict:
	"""Undo the session user's mute of a rule or a channel (nothing happens when there is none).

	Accepted for what the user has muted, or may mute (`_concerns`); anything else gets one
	answer, whether it exists or not."""
	user = _session_user()
	if bool(rule) == bool(channel):
		frappe.throw(_("Name one rule or one channel to unmute"), title=_("Unmute"))
	removed = _delete_own(user, rule, channel)
	if not removed and not _concerns(user, rule, channel):
		frappe.throw(
			_("You have not muted {0}: there is nothing to unmute").format(frappe.bold(rule or channel)),
			title=_("Unmute"),
		)
	apply_after_commit(user, target_of(rule, channel), None)
	return {"rule": rule, "channel": channel, "unmuted": removed}


def _delete_own(user: str, rule: str | None, channel: str | None) -> int:
	filters = {"user": user, "rule": rule} if rule else {"user": user, "channel": channel}
	names = frappe.get_all(MUTE_DOCTYPE, filters=filters, pluck="name")
	for name in names:
		frappe.delete_doc(MUTE_DOCTYPE, name, ignore_permissions=True, force=True)
	return len(names)


def own_mutes(user: str) -> list[dict]:
	"""The user's mutes in force, with whether each names a critical rule (then it does nothing)."""
	rows = frappe.get_all(
		MUTE_DOCTYPE,
		filters={"user": user},
		fields=["rule", "channel", "until"],
		order_by="creation desc",
		limit_page_length=0,
	)
	now = now_datetime()
	critical = set(frappe.get_all(RULE_DOCTYPE, filters={"critical": 1}, pluck="name"))
	return [
		{"rule": row.rule, "channel": row.channel, "until": row.until, "critical": row.rule in critical}
		for row in rows
		if not row.until or row.until > now
	]


@frappe.whitelist()
def my_notifications() -> dict:
	"""The session user's mutes, and the rules and channels that sent them messages lately
	(from their delivery log), for the desk's "My realtime notifications" list."""
	user = _session_user()
	mutes = own_mutes(user)
	rules = {r.name: r.critical for r in frappe.get_all(RULE_DOCTYPE, fields=["name", "critical"])}
	channels = set(frappe.get_all(CHANNEL_DOCTYPE, pluck="name"))
	critical = {name for name, flag in rules.items() if flag}
	recent: dict[tuple, dict] = {}
	for message in reversed(read(user, 0)):  # newest first
		rule, channel = message.get("rule"), message.get("channel")
		if rule not in rules and channel not in channels:
			continue  # deleted since, or neither
		entry = recent.setdefault(
			(rule, channel),
			{
				"rule": rule,
				"channel": channel,
				"count": 0,
				"last_subject": message.get("subject"),
				"last_sent_at": message.get("sent_at"),
				"critical": rule in critical,
			},
		)
		entry["count"] += 1
	return {"mutes": mutes, "recent": list(recent.values()), "durations": DURATIONS}
