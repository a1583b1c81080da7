"""State that lives as long as the current database transaction, and what happens when it ends.

RT Studio queues its deliveries, traces and rate-limit hits while a transaction runs and acts
on them only when it ends: after a commit (publish, write, keep) or after a rollback (drop, mark,
give back). Frappe runs `frappe.db.after_commit` callbacks after a commit and
`after_rollback` ones after a rollback, and forgets the other kind, so each queue is armed once
per transaction, the first time something is put in it.
"""

from collections.abc import Callable

import frappe


def queued(name: str, on_commit: Callable[[list], None], on_rollback: Callable[[list], None]) -> list:
	"""This transaction's list `frappe.local.<name>`, made (and the callbacks armed) on first use.

	At the end of the transaction the list is taken away and handed to `on_commit` or
	`on_rollback`.
	"""
	items = getattr(frappe.local, name, None)
	if items is None:
		items = []
		setattr(frappe.local, name, items)
		frappe.db.after_commit.add(lambda: on_commit(_take(name)))
		frappe.db.after_rollback.add(lambda: on_rollback(_take(name)))
	return items


def _take(name: str) -> list:
	items = getattr(frappe.local, name, None) or []
	setattr(frappe.local, name, None)
	return items


def ignore(items: list) -> None:
	"""For a queue that has nothing to do at one of the ends."""
