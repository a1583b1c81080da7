"""What the desk runtime needs at boot: the socket event names rules and channels use, and the
user's latest `seq` (replay starts after it).

Hooked as `extend_bootinfo`, not `boot_session`: Frappe caches a user's boot info and runs
`boot_session` only when it builds it, while `extend_bootinfo` runs on every page load after
the cache is read. A reloaded desk so starts from the number current at its load and never
shows again what the page before it showed (tests/browser/replay_reload.js,
test_delivery_log.py).
"""

import frappe

from rt_studio.delivery.delivery_log import current_seq
from rt_studio.engine.rules import DEFAULT_CHANNEL_EVENT_NAME, DEFAULT_EVENT_NAME


def boot_session(bootinfo) -> None:
	if frappe.session.user == "Guest":
		return
	names = {DEFAULT_EVENT_NAME, DEFAULT_CHANNEL_EVENT_NAME}
	names.update(frappe.get_all("Realtime Rule", filters={"enabled": 1}, pluck="event_name", distinct=True))
	names.update(
		frappe.get_all("Realtime Channel", filters={"enabled": 1}, pluck="event_name", distinct=True)
	)
	bootinfo.rt_studio = {
		"events": sorted(n for n in names if n),
		# the desk asks for what it missed after this number (see rt_studio.delivery.delivery_log)
		"seq": current_seq(frappe.session.user),
	}
