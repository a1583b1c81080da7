"""The session user's own notification preferences: "My Notification Preferences" and its API.

`my_preferences`, `set_preference`, `set_quiet_hours` and `set_digest` (as `rt_studio.api.<name>`)
read and change the session user's Realtime Preference rows only; the API takes no user. A change
is cached again after its commit (rt_studio.delivery.preferences), so the next delivery sees it.
A user sets preferences for rules and channels that concern them (the same test as muting: a
message of it in their inbox, a channel they are a member of, or any rule for a System Manager);
anyone else gets one answer, whether the rule exists or not. A critical rule ignores preferences,
and setting one for it is refused with that reason.
"""

import re

import frappe
from frappe import _
from frappe.utils import cint

from rt_studio.delivery import preferences as state
from rt_studio.delivery.inbox import DOCTYPE as INBOX
from rt_studio.engine import preferences as decide
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE
from rt_studio.people.permissions import is_manager, is_member

DOCTYPE = state.DOCTYPE
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _session_user() -> str:
	user = frappe.session.user
	if user == "Guest":
		raise frappe.PermissionError(_("Log in to change your notification preferences"))
	return user


@frappe.whitelist()
def my_preferences() -> dict:
	"""The session user's preferences: the default, each rule and channel they received from or
	chose for (effective values), quiet hours, digest and the time zone both are read in."""
	user = _session_user()
	value = state.from_database([user])[user]
	received = frappe.db.sql(
		f"select distinct rule, channel from `tab{INBOX}` where user = %s", user, as_dict=True
	)
	rules = {row.rule for row in received if row.rule} | set(value.get("rules") or {})
	channels = {row.channel for row in received if row.channel} | set(value.get("channels") or {})
	rules &= set(frappe.get_all(RULE_DOCTYPE, filters={"name": ("in", list(rules) or [""])}, pluck="name"))
	channels &= set(
		frappe.get_all(CHANNEL_DOCTYPE, filters={"name": ("in", list(channels) or [""])}, pluck="name")
	)
	quiet = value.get("quiet")
	return {
		"default": decide.effective(value),
		"rules": {rule: decide.effective(value, rule=rule) for rule in sorted(rules)},
		"channels": {channel: decide.effective(value, channel=channel) for channel in sorted(channels)},
		"quiet_hours": {"start": quiet[0], "end": quiet[1]} if quiet else None,
		"digest": value.get("digest") or "Off",
		"time_zone": state.time_zones([user])[user],
	}


@frappe.whitelist()
def my_critical_rules() -> list[str]:
	"""Which of the rules on the user's preferences page are critical (they ignore preferences)."""
	user = _session_user()
	received = frappe.db.sql_list(
		f"select distinct rule from `tab{INBOX}` where user = %s and rule is not null", user
	)
	if not received:
		return []
	return frappe.get_all(RULE_DOCTYPE, filters={"name": ("in", received), "critical": 1}, pluck="name")


@frappe.whitelist(methods=["POST"])
def set_preference(
	rule: str | None = None,
	channel: str | None = None,
	alert: bool | None = None,
	browser: bool | None = None,
	email: str | None = None,
) -> dict:
	"""Change the session user's preference for a rule, a channel, or (neither) their default. None
	leaves a value as it is; a rule or channel without a row of its own starts from the default."""
	user = _session_user()
	rule, channel = rule or None, channel or None
	_check_target(user, rule, channel)
	if email is not None and email not in decide.EMAIL_CHOICES:
		frappe.throw(_("email {0}: choose one of {1}").format(email, ", ".join(decide.EMAIL_CHOICES)))
	doc = _own_row(user, rule, channel)
	for field, given in (("alert", alert), ("browser", browser)):
		if given is not None:
			doc.set(field, 1 if _flag(given) else 0)
	if email is not None:
		doc.email = email
	doc.save(ignore_permissions=True)
	state.refresh_after_commit(user)
	return {"alert": bool(doc.alert), "browser": bool(doc.browser), "email": doc.email}


@frappe.whitelist(methods=["POST"])
def set_quiet_hours(start: str | None = None, end: str | None = None) -> dict | None:
	"""Quiet hours from `start` to `end` ("HH:MM", the user's own time zone; may run over midnight),
	or none when both are empty."""
	user = _session_user()
	start, end = start or None, end or None
	if start or end:
		for name, value in (("start", start), ("end", end)):
			if not value or not HHMM.match(value):
				frappe.throw(
					_("Quiet hours {0} {1}: give a time as HH:MM, such as 22:00").format(name, value or "")
				)
		if start == end:
			frappe.throw(_("Quiet hours start and end at {0}: give two different times").format(start))
	doc = _own_row(user, None, None)
	doc.quiet_hours_start, doc.quiet_hours_end = start, end
	doc.save(ignore_permissions=True)
	state.refresh_after_commit(user)
	return {"start": start, "end": end} if start else None


@frappe.whitelist(methods=["POST"])
def set_digest(frequency: str) -> str:
	"""Off, Daily or Weekly: an email of the user's unread messages, in their morning."""
	user = _session_user()
	if frequency not in decide.DIGEST_CHOICES:
		frappe.throw(_("Digest {0}: choose one of {1}").format(frequency, ", ".join(decide.DIGEST_CHOICES)))
	doc = _own_row(user, None, None)
	doc.digest = frequency
	doc.save(ignore_permissions=True)
	state.refresh_after_commit(user)
	return frequency


def _flag(value) -> bool:
	if isinstance(value, str):
		return value.lower() in ("1", "true", "yes", "on")
	return bool(cint(value))


def _own_row(user: str, rule: str | None, channel: str | None):
	"""The user's row for the target, made (from the effective default) when missing."""
	name = state.name_of(user, rule, channel)
	if frappe.db.exists(DOCTYPE, name):
		return frappe.get_doc(DOCTYPE, name, for_update=True)
	start = decide.effective(state.from_database([user])[user])
	doc = frappe.get_doc(
		{
			"doctype": DOCTYPE,
			"name": name,
			"user": user,
			"rule": rule,
			"channel": channel,
			"alert": int(start["alert"]),
			"browser": int(start["browser"]),
			"email": start["email"],
		}
	)
	doc.set("__islocal", 1)  # named by us: save() inserts it
	return doc


def _check_target(user: str, rule: str | None, channel: str | None) -> None:
	"""A rule or channel that concerns the user, and not a critical rule; neither is the default."""
	if rule and channel:
		frappe.throw(_("Name one rule, one channel, or neither (your default)"))
	if not (rule or channel):
		return
	if not _concerns(user, rule, channel):
		frappe.throw(
			_("You have received nothing from {0}: set preferences for what reaches you").format(
				frappe.bold(rule or channel)
			)
		)
	if rule and cint(frappe.db.get_value(RULE_DOCTYPE, rule, "critical")):
		frappe.throw(
			_(
				"Realtime Rule {0} is critical: it reaches everyone it names as it is, preferences do not apply"
			).format(frappe.bold(rule))
		)


def _concerns(user: str, rule: str | None, channel: str | None) -> bool:
	if rule:
		if not frappe.db.exists(RULE_DOCTYPE, rule):
			return False
		return is_manager(user) or bool(frappe.db.exists(INBOX, {"user": user, "rule": rule}))
	if not frappe.db.exists(CHANNEL_DOCTYPE, channel):
		return False
	return (
		is_manager(user)
		or is_member(channel, user)
		or bool(frappe.db.exists(INBOX, {"user": user, "channel": channel}))
	)
