"""Realtime Channels read from the database as the engine sees them.

Called by the site's directory (people/site.py, for Channel audience rows), channel permissions
(people/permissions.py) and channel posts (desk/personal.py).
"""

import frappe

from rt_studio.engine.interfaces import Channel
from rt_studio.engine.rules import CHANNEL_DOCTYPE, parse_channel


def load_channel(name: str) -> Channel | None:
	"""The channel as the engine sees it, or None when it does not exist or is invalid."""
	if not frappe.db.exists(CHANNEL_DOCTYPE, name):
		return None
	doc = frappe.get_doc(CHANNEL_DOCTYPE, name)
	channel, _problems = parse_channel(doc.as_dict())
	return channel
