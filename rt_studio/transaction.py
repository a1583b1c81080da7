"""State that lives as long as the current database transaction, and what happens when it ends:
the one mechanism every part of RT Studio uses for it (the handler's fired set, the outbox,
the delivery log's numbering, the rule cache's invalidation, idempotency claims, error marks
and mutes).

RT Studio queues its deliveries, traces and rate-limit hits while a transaction runs and acts
on them only when it ends: just before a commit (number), after a commit (publish, write,
keep) or after a rollback (drop, mark, give back). Frappe runs `frappe.db.before_commit`
callbacks before a commit, `after_commit` ones after it and `after_rollback` ones after a
rollback, and forgets the other kind, so each state is armed once per transaction, the first
time it is used, however often it is used.
"""

from collections.abc import Callable

import frappe


def state(
	name: str,
	factory: Callable = list,
	*,
	before_commit: Callable | None = None,
	on_commit: Callable | None = None,
	on_rollback: Callable | None = None,
):
	"""This transaction's `frappe.local.<name>`, made by `factory` (and the callbacks armed) on
	first use. When the transaction ends it is taken away and handed to the callback of that
	end; `before_commit` takes it just before the commit (the others then get a new empty one).
	"""
	value = getattr(frappe.local, name, None)
	if value is None:
		value = factory()
		setattr(frappe.local, name, value)
		if before_commit is not None:
			frappe.db.before_commit.add(lambda: before_commit(_take(name, factory)))
		frappe.db.after_commit.add(lambda: (on_commit or ignore)(_take(name, factory)))
		frappe.db.after_rollback.add(lambda: (on_rollback or ignore)(_take(name, factory)))
	return value


def queued(name: str, on_commit: Callable[[list], None], on_rollback: Callable[[list], None]) -> list:
	"""This transaction's list `frappe.local.<name>`, handed to `on_commit` or `on_rollback`."""
	return state(name, list, on_commit=on_commit, on_rollback=on_rollback)


def after_commit(fn: Callable[[], None]) -> None:
	"""Run `fn` once this transaction has committed (dropped if it rolls back)."""
	queued("rt_studio_after_commit", _run_each, ignore).append(fn)


def after_rollback(fn: Callable[[], None]) -> None:
	"""Run `fn` if this transaction rolls back (dropped if it commits): to undo what was done
	outside the database (a Redis claim, a mark) for a change that did not last."""
	queued("rt_studio_after_rollback", ignore, _run_each).append(fn)


def _run_each(fns: list) -> None:
	for fn in fns:
		fn()


def _take(name: str, factory: Callable):
	value = getattr(frappe.local, name, None)
	setattr(frappe.local, name, None)
	return value if value is not None else factory()


def ignore(_value) -> None:
	"""For a state that has nothing to do at one of the ends."""
