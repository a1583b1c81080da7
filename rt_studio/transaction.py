"""State that lives as long as the current database transaction, and what happens when it ends:
the one mechanism every part of RT Studio uses for it (the handler's fired set, the outbox,
the delivery log's numbering, the rule cache's invalidation, idempotency claims, error marks
and mutes).

RT Studio queues its deliveries, traces and rate-limit hits while a transaction runs and acts
on them only when it ends: just before a commit (number, write the inbox and the bell), after a
commit (publish) or after a rollback (drop, mark, give back). Frappe runs `frappe.db.before_commit`
callbacks before a commit, `after_commit` ones after it and `after_rollback` ones after a
rollback, and forgets the other kind, so each state is armed once per transaction, the first
time it is used, however often it is used.

A write before the commit never decides the transaction's fate by accident. Its statements run
in a savepoint (`guarded_write`; a write of one statement needs none, InnoDB undoes a failed
statement whole): a statement error (a duplicate key, a value too long) rolls back to it, is
logged once, and the commit goes on without that write. An error after which the
transaction is gone or must not commit (`aborts_transaction`: a deadlock, a lock wait timeout, a
lost connection, a packet too large) propagates: the commit fails as it would without RT Studio.
Frappe has by then forgotten its `after_rollback` callbacks (`commit()` resets them before it
runs `before_commit`), so when one of RT Studio's `before_commit` steps raises, every state of the
transaction is taken here and handed to its rollback callback, and what was already done outside
the database for this commit (the replay log's entries) is undone (`undo_if_commit_fails`):
nothing is published, kept or replayed for a save that did not commit.
"""

import hashlib
import random
import string
from collections.abc import Callable
from contextlib import contextmanager, suppress

import frappe
import pymysql

#: MariaDB error codes after which a transaction must not go on: 1213 deadlock (InnoDB rolled the
#: whole transaction back), 1205 lock wait timeout, 1153 packet too large (the server drops the
#: connection), 2006 / 2013 / 2055 the connection is gone, 1927 the connection was killed, 1317 the
#: query was interrupted.
ABORTING_CODES = frozenset({1213, 1205, 1153, 2006, 2013, 2055, 1927, 1317})
#: How long a failed write before the commit is not logged again with the same error.
ERROR_SEEN_SECONDS = 3600

_STATES = "rt_studio_transaction_states"
_UNDO = "rt_studio_undo_if_commit_fails"
#: The database connection the states were armed on (their callbacks wait in its callback lists).
_DB = "rt_studio_transaction_db"


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
	if getattr(frappe.local, _DB, None) is not getattr(frappe.local, "db", None):
		_forget_stale()
	value = getattr(frappe.local, name, None)
	if value is None:
		value = factory()
		setattr(frappe.local, name, value)
		_armed()[name] = on_rollback
		if before_commit is not None:
			frappe.db.before_commit.add(lambda: _before_commit(name, factory, before_commit))
		frappe.db.after_commit.add(lambda: _end(name, factory, on_commit))
		frappe.db.after_rollback.add(lambda: _end(name, factory, on_rollback))
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


def undo_if_commit_fails(fn: Callable[[], None]) -> None:
	"""Run `fn` if a later step of this commit raises (called from a `before_commit` step that did
	something outside the database, such as logging messages for replay)."""
	queued(_UNDO, ignore, ignore).append(fn)


def aborts_transaction(error: BaseException) -> bool:
	"""Whether `error` (or an error it was raised from) means the transaction is gone or must not
	commit: see ABORTING_CODES. Frappe wraps deadlocks and lock wait timeouts in its own classes."""
	seen = set()
	while error is not None and id(error) not in seen:
		seen.add(id(error))
		if isinstance(error, frappe.QueryDeadlockError | frappe.QueryTimeoutError):
			return True
		if error.args and isinstance(error.args[0], int) and error.args[0] in ABORTING_CODES:
			return True
		if isinstance(error, pymysql.err.InterfaceError):  # the connection is closed
			return True
		error = error.__cause__ or error.__context__
	return False


def lost_redis(error: BaseException) -> bool:
	"""Whether `error` says a Redis server could not be reached (restarting, gone, loading its
	data): what RT Studio keeps there (numbers for replay, mutes, rate limits) is then unknown,
	and a save that delivers must fail rather than send what could not be kept."""
	import redis

	return isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError)


@contextmanager
def guarded_write(title: str, statements: int = 2):
	"""Run a write that must not fail the user's transaction by itself, in a savepoint.

	A statement error rolls back to the savepoint and is written to the Error Log once (per
	`title` and error, for ERROR_SEEN_SECONDS); the transaction goes on without the write. An error
	that `aborts_transaction` propagates untouched. A write of one statement (`statements=1`) needs
	no savepoint, and saves its two round trips: InnoDB undoes a failed statement by itself.
	"""
	savepoint = "rt_studio_" + "".join(random.choices(string.ascii_lowercase, k=10))
	if statements > 1:
		frappe.db.savepoint(savepoint)
	try:
		yield
	except Exception as e:
		if aborts_transaction(e):
			raise
		if statements > 1:
			frappe.db.rollback(save_point=savepoint)
		log_once(title, e)
	else:
		if statements > 1:
			frappe.db.release_savepoint(savepoint)


def log_once(title: str, error: BaseException, **reference) -> None:
	"""Write the current exception to the Error Log unless the same title and error were logged
	within ERROR_SEEN_SECONDS: an error that every save meets would flood it, and cost each save
	the Error Log's traceback with variables (about 30 ms here)."""
	digest = hashlib.sha1(f"{title}\n{type(error).__name__}: {error}".encode()).hexdigest()
	if frappe.cache.set(
		frappe.cache.make_key(f"rt_studio:write_error:{digest}"), 1, ex=ERROR_SEEN_SECONDS, nx=True
	):
		frappe.log_error(title=title, **reference)


def _before_commit(name: str, factory: Callable, callback: Callable) -> None:
	value = _take(name, factory)
	try:
		callback(value)
	except BaseException:
		commit_failed()
		raise


def commit_failed() -> None:
	"""A step before the commit raised: undo what this commit did outside the database and hand
	every state of the transaction to its rollback callback (Frappe will not: it forgot them)."""
	undo = _take(_UNDO, list)
	armed = getattr(frappe.local, _STATES, None) or {}
	setattr(frappe.local, _STATES, None)
	# Frappe's own after-commit realtime queue has lost its flush and its clear as well: without
	# this, later `publish_realtime(after_commit=True)` calls of the process would join a queue
	# nobody sends (frappe.realtime.clear_realtime_log)
	if hasattr(frappe.local, "_realtime_log"):
		del frappe.local._realtime_log
	for fn in undo:
		with suppress(Exception):  # best effort: the error that stopped the commit is what matters
			fn()
	for name, on_rollback in armed.items():
		value = getattr(frappe.local, name, None)
		setattr(frappe.local, name, None)
		if value is not None and on_rollback is not None:
			with suppress(Exception):
				on_rollback(value)


def _end(name: str, factory: Callable, callback: Callable | None) -> None:
	"""Hand the state to the callback of the transaction's end. A callback that fails (Redis gone
	while the trace is written) is logged, never raised: the transaction has ended, and Frappe runs
	the callbacks in one loop that a raise would leave, taking the others (the outbox's publish)
	with it and turning a committed save into an error page."""
	armed = getattr(frappe.local, _STATES, None)
	if armed is not None:
		armed.pop(name, None)
	value = _take(name, factory)
	if callback is not None:
		try:
			callback(value)
		except Exception:
			frappe.logger("rt_studio").exception(f"RT Studio: {name} failed after the transaction ended")


def _armed() -> dict:
	armed = getattr(frappe.local, _STATES, None)
	if armed is None:
		armed = {}
		setattr(frappe.local, _STATES, armed)
		setattr(frappe.local, _DB, getattr(frappe.local, "db", None))
	return armed


def _forget_stale() -> None:
	"""States left by a transaction of another database connection: a request that died with its
	connection (MariaDB went away) and never ended, on this thread. Its callbacks wait on the dead
	connection and will never run; its messages belong to a commit that did not happen. Undo what
	it did outside the database, give back what it took, and start afresh on this connection."""
	if getattr(frappe.local, _STATES, None):
		commit_failed()
	setattr(frappe.local, _STATES, None)
	setattr(frappe.local, _DB, getattr(frappe.local, "db", None))


def _run_each(fns: list) -> None:
	for fn in fns:
		fn()


def _take(name: str, factory: Callable):
	value = getattr(frappe.local, name, None)
	setattr(frappe.local, name, None)
	return value if value is not None else factory()


def ignore(_value) -> None:
	"""For a state that has nothing to do at one of the ends."""
