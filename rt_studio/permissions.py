"""Who may see a Realtime Channel: System Managers, and members (by user or by role)."""

import frappe

from rt_studio.engine.audience import channel_members
from rt_studio.site import FrappeDirectory, load_channel

MANAGER = "System Manager"


def is_manager(user: str | None = None) -> bool:
	user = user or frappe.session.user
	return user == "Administrator" or MANAGER in frappe.get_roles(user)


def is_member(channel_name: str, user: str) -> bool:
	channel = load_channel(channel_name)
	return channel is not None and user in channel_members(channel, FrappeDirectory())


def channel_has_permission(doc, ptype: str = "read", user: str | None = None) -> bool:
	"""Members may read their channel; only System Managers may change channels."""
	user = user or frappe.session.user
	if is_manager(user):
		return True
	if ptype != "read" or doc.is_new():
		return False
	return is_member(doc.name, user)


def channel_query_conditions(user: str | None = None) -> str:
	"""List views show a non-manager the channels that name them or one of their roles."""
	user = user or frappe.session.user
	if is_manager(user):
		return ""
	roles = ", ".join(frappe.db.escape(r) for r in frappe.get_roles(user))
	return (
		"`tabRealtime Channel`.name in (select parent from `tabRealtime Channel Member` "
		f"where parenttype = 'Realtime Channel' and ((member_type = 'User' and user = {frappe.db.escape(user)}) "
		f"or (member_type = 'Role' and role in ({roles}))))"
	)
