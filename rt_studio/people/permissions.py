"""Who may see a Realtime Channel: System Managers, and members (by user, role or reference).

A check for one user never lists the channel's members: a channel whose members are the
readers of a reference document would otherwise decide read access for every user of the
site on every check (each form load, each list view row).
"""

import frappe

from rt_studio.engine.interfaces import Channel
from rt_studio.engine.user_names import user_key
from rt_studio.people.channels import load_channel
from rt_studio.people.readers import readable_by, readers
from rt_studio.people.users import EVERYONE_ROLES, find_users

MANAGER = "System Manager"


def is_manager(user: str | None = None) -> bool:
	user = user or frappe.session.user
	return user == "Administrator" or MANAGER in frappe.get_roles(user)


def is_member(channel_name: str, user: str) -> bool:
	channel = load_channel(channel_name)
	return channel is not None and member_of(channel, user)


def member_of(channel: Channel, user: str) -> bool:
	"""Whether `user` is among `channel_members(channel, ...)` now, decided for this user alone.

	Named users are members as named; a role stands for its enabled users (for "All" and "Desk
	User", every enabled System User, as the Everyone audience); a reference document for the
	enabled System Users who may read it.
	"""
	key = user_key(user)
	if any(kind == "User" and user_key(value) == key for kind, value in channel.members):
		return True
	record = find_users([user]).get(key)
	if record is None or not record.enabled:
		return False
	if any(kind == "Role" for kind, _value in channel.members):
		if set(member_roles(record.name, record.user_type)) & {v for k, v in channel.members if k == "Role"}:
			return True
	if channel.reference_doctype and channel.reference_name and record.user_type == "System User":
		if frappe.db.exists(channel.reference_doctype, channel.reference_name):
			reference = frappe.get_doc(channel.reference_doctype, channel.reference_name)
			return record.name in readers(reference, [record.name])
	return False


def member_roles(user: str, user_type: str) -> list[str]:
	"""The roles through which a channel's Role rows count `user` as a member."""
	roles = [r for r in frappe.get_roles(user) if r not in EVERYONE_ROLES and r != "Guest"]
	if user_type == "System User":
		roles += sorted(EVERYONE_ROLES)
	return roles


def channel_has_permission(doc, ptype: str = "read", user: str | None = None) -> bool:
	"""Members may read their channel; only System Managers may change channels."""
	user = user or frappe.session.user
	if is_manager(user):
		return True
	if ptype != "read" or doc.is_new():
		return False
	return is_member(doc.name, user)


def channel_query_conditions(user: str | None = None) -> str:
	"""List views show a non-manager the channels they are a member of (as `member_of` decides)."""
	user = user or frappe.session.user
	if is_manager(user):
		return ""
	record = find_users([user]).get(user_key(user))
	if record is None or not record.enabled:
		member_rows = f"member_type = 'User' and user = {frappe.db.escape(user)}"
	else:
		roles = ", ".join(frappe.db.escape(r) for r in member_roles(record.name, record.user_type)) or "''"
		member_rows = (
			f"(member_type = 'User' and user = {frappe.db.escape(user)}) "
			f"or (member_type = 'Role' and role in ({roles}))"
		)
	names = ", ".join(frappe.db.escape(name) for name in _reference_channels_readable_by(record)) or "''"
	return (
		"(`tabRealtime Channel`.name in (select parent from `tabRealtime Channel Member` "
		f"where parenttype = 'Realtime Channel' and ({member_rows})) "
		f"or `tabRealtime Channel`.name in ({names}))"
	)


def _reference_channels_readable_by(record) -> list[str]:
	"""Channels whose reference document the user may read: decided per reference DocType for all
	its documents at once (`readers.readable_by`), so a list view costs a few queries per
	DocType, not a few per channel."""
	if record is None or not record.enabled or record.user_type != "System User":
		return []
	by_doctype: dict[str, list] = {}
	for channel in frappe.get_all(
		"Realtime Channel",
		filters={"reference_doctype": ["is", "set"], "reference_name": ["is", "set"]},
		fields=["name", "reference_doctype", "reference_name"],
	):
		by_doctype.setdefault(channel.reference_doctype, []).append(channel)
	found = []
	for doctype, channels in by_doctype.items():
		readable = readable_by(record.name, doctype, [channel.reference_name for channel in channels])
		found += [channel.name for channel in channels if channel.reference_name in readable]
	return found
