"""A save either fails visibly with nothing sent, or commits and every recipient gets its message
once: the writes RT Studio makes just before a commit (the inbox, the bell) never turn a failed
transaction into a saved one.

The forced cases make the database do what InnoDB does on a deadlock (roll the whole transaction
back, then raise 1213) at the statement RT Studio runs; the concurrent case makes real deadlocks
likely with eight connections inserting and deleting at once.

These tests commit and remove what they committed.
"""

import threading
from contextlib import contextmanager
from unittest.mock import patch

import frappe
import pymysql
import redis

from rt_studio import rule_cache
from rt_studio.api import publish
from rt_studio.delivery import bulk, delivery_log, trace
from rt_studio.delivery.inbox import DOCTYPE, keep
from rt_studio.save import handler
from rt_studio.tests.factories import (
	ORDER,
	TESTER,
	RealtimeListener,
	RTTestCase,
	make_channel,
	make_order,
	make_rule,
	make_users,
	new_order,
	purge_order,
)

INBOX_INSERT = "insert into `tabRealtime Inbox Item`"
BELL_INSERT = "insert into `tabNotification Log`"


def deadlock() -> Exception:
	"""What Frappe raises for InnoDB's error 1213 (after InnoDB rolled the transaction back)."""
	return frappe.QueryDeadlockError(
		pymysql.err.OperationalError(
			1213, "Deadlock found when trying to get lock; try restarting transaction"
		)
	)


@contextmanager
def failing_statement(prefix: str, error, roll_back: bool):
	"""The first statement starting with `prefix` fails with `error`; with `roll_back`, the server
	first rolls the whole transaction back, as InnoDB does on a deadlock."""
	real_sql = frappe.db.sql
	state = {"failed": 0}

	def sql(query, *args, **kwargs):
		if not state["failed"] and str(query).lstrip().lower().startswith(prefix.lower()):
			state["failed"] += 1
			if roll_back:
				frappe.db._conn.rollback()  # the server's own rollback: Frappe's callbacks do not run
			raise error
		return real_sql(query, *args, **kwargs)

	with patch.object(frappe.db, "sql", sql):
		yield state


class CommitFaultTestCase(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		users = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))
		cls.reader = users["reader"]

	def setUp(self):
		super().setUp()
		self.forget()
		self.addCleanup(self.forget)

	def forget(self):
		frappe.db.rollback()
		frappe.db.delete(DOCTYPE, {"user": self.reader})
		frappe.db.delete("Notification Log", {"for_user": self.reader})
		frappe.db.delete("Error Log", {"method": ("like", "RT Studio: could not%")})
		frappe.db.delete("Error Log", {"method": "RT Studio: document event failed"})
		for key in frappe.cache.get_keys("rt_studio:write_error:"):
			frappe.cache.delete(key)
		frappe.db.commit()

	def rule(self, **fields):
		audience = [{"audience_type": "User", "user": self.reader}]
		return self.enterContext(make_rule(audience, commit=True, **fields))

	def replayable(self, rule: str) -> list[dict]:
		return [m for m in delivery_log.read(self.reader, 0) if m.get("rule") == rule]


class TestAbortedCommit(CommitFaultTestCase):
	def check_aborted_commit_sends_nothing(self, rule, prefix: str):
		order = self.enterContext(make_order(commit=True))
		before = len(self.replayable(rule.name))
		with RealtimeListener() as listener:
			order.qty = 7
			order.save()
			with failing_statement(prefix, deadlock(), roll_back=True) as state:
				with self.assertRaises(frappe.QueryDeadlockError):
					frappe.db.commit()
			frappe.db.rollback()
			self.assertEqual(state["failed"], 1)
			self.assertEqual(listener.received(rule=rule.name, quiet=1), [])
			self.assertEqual(frappe.db.get_value(ORDER, order.name, "qty"), 1)
			self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 0)
			self.assertEqual(len(self.replayable(rule.name)), before, "missed() would replay it")

			# the next save of the same process commits and sends its own message once, and
			# nothing of the failed one
			order.reload()
			order.qty = 8
			order.save()
			frappe.db.commit()
			sent = listener.received(rule=rule.name, count=1)
		self.assertEqual([s.user for s in sent], [self.reader])
		self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 1)
		return sent

	def test_a_deadlock_in_the_inbox_write_fails_the_commit_and_sends_nothing(self):
		self.check_aborted_commit_sends_nothing(self.rule(), INBOX_INSERT)

	def test_after_a_failed_commit_frappes_own_realtime_queue_still_goes_out(self):
		"""The failed commit took Frappe's after-commit flush of `publish_realtime` with it: later
		transactions of the process must still publish theirs."""
		self.check_aborted_commit_sends_nothing(self.rule(), INBOX_INSERT)
		room = f"user:{self.reader}"
		with RealtimeListener() as listener:
			frappe.publish_realtime(
				"rt_test_after_failed_commit", {"n": 1}, user=self.reader, after_commit=True
			)
			frappe.db.commit()
			self.assertEqual(len(listener.of_event("rt_test_after_failed_commit", room)), 1)

	def test_a_deadlock_in_the_bell_write_fails_the_commit_and_sends_nothing(self):
		rule = self.rule(display="Notification Log")
		sent = self.check_aborted_commit_sends_nothing(rule, BELL_INSERT)
		self.assertEqual(frappe.db.count("Notification Log", {"for_user": self.reader}), 1, sent)

	def test_a_deadlock_while_forgetting_a_deleted_documents_messages_fails_the_delete(self):
		rule = self.rule(event="Delete", subject="Deleted {{ doc.name }}")
		order = new_order().insert()
		frappe.db.commit()
		self.addCleanup(purge_order, order.name)
		with RealtimeListener() as listener:
			with failing_statement("delete from `tabRealtime Inbox Item`", deadlock(), roll_back=True):
				with failing_statement("select `name` from `tabRealtime Inbox Item`", deadlock(), True):
					with self.assertRaises(frappe.QueryDeadlockError):
						frappe.delete_doc(ORDER, order.name)
						frappe.db.commit()
			frappe.db.rollback()
			self.assertEqual(listener.received(rule=rule.name, quiet=1), [])
		self.assertTrue(frappe.db.exists(ORDER, order.name))


class TestFailedStatement(CommitFaultTestCase):
	def test_a_statement_error_in_the_inbox_write_is_logged_once_and_the_save_goes_on(self):
		rule = self.rule()
		order = self.enterContext(make_order(commit=True))
		duplicate = pymysql.err.IntegrityError(1062, "Duplicate entry 'x' for key 'PRIMARY'")
		with RealtimeListener() as listener:
			for qty in (5, 6):
				order.reload()
				order.qty = qty
				order.save()
				with failing_statement(INBOX_INSERT, duplicate, roll_back=False):
					frappe.db.commit()
			sent = listener.received(rule=rule.name, count=2)
		self.assertEqual(len(sent), 2)
		self.assertEqual(frappe.db.get_value(ORDER, order.name, "qty"), 6)
		self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 0)
		logged = frappe.get_all(
			"Error Log", {"method": "RT Studio: could not keep delivered messages in the inbox"}
		)
		self.assertEqual(len(logged), 1)

	def test_a_fault_every_save_meets_is_logged_once_and_the_saves_go_on(self):
		self.rule()
		order = self.enterContext(make_order(commit=True))
		frappe.db.delete("Error Log", {"method": "RT Studio: document event failed"})
		with patch.object(handler, "run_rules", side_effect=RuntimeError("a fault of RT Studio's own")):
			for qty in (4, 5, 6):
				order.reload()
				order.qty = qty
				order.save()
				frappe.db.commit()
		self.assertEqual(frappe.db.get_value(ORDER, order.name, "qty"), 6)
		logged = frappe.get_all("Error Log", {"method": "RT Studio: document event failed"})
		self.assertEqual(len(logged), 1)

	def test_a_subject_longer_than_its_column_is_cut_and_the_rows_are_written(self):
		# 90,000 characters of 3 bytes each: four times what a TEXT column holds
		self.rule(subject="{{ '€' * 90000 }}", display="Notification Log")
		order = self.enterContext(make_order(commit=True))
		order.qty = 3
		order.save()
		frappe.db.commit()
		subject = frappe.db.get_value(DOCTYPE, {"user": self.reader}, "subject")
		self.assertLessEqual(len(subject.encode()), 65535)
		self.assertTrue(subject.startswith("€€€") and subject.endswith("…"))
		bell = frappe.db.get_value("Notification Log", {"for_user": self.reader}, "subject")
		self.assertLessEqual(len(bell.encode()), 65535)
		self.assertFalse(frappe.get_all("Error Log", {"method": ("like", "RT Studio: could not%")}))


class TestBulkWrites(CommitFaultTestCase):
	def test_rows_beyond_a_packet_are_written_in_several_statements(self):
		# 300 messages of 100,000 characters: 30 MB, more than MariaDB's default max_allowed_packet
		message = {"rule": "rt-test-big", "display": "Alert", "subject": "big", "message": "x" * 100_000}
		entries = [(self.reader, {**message, "seq": seq}) for seq in range(1, 301)]
		self.assertGreater(sum(len(m["message"]) for _u, m in entries), 16 * 1024 * 1024)
		statements = []
		real_insert = bulk.insert

		def counting_insert(*args):
			statements.append(real_insert(*args))

		with patch.object(bulk, "insert", counting_insert):
			keep(entries)
		frappe.db.commit()
		self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 300)
		self.assertGreater(statements[0], 1)
		self.assertLessEqual(statements[0], 30 * 1024 * 1024 // bulk.MAX_STATEMENT_BYTES + 1)

	def test_a_channel_post_is_kept_in_each_members_inbox(self):
		"""A post's subject is the channel's escaped name (markupsafe Markup): written as a plain
		string, not quoted by Markup into invalid SQL."""
		channel = self.enterContext(make_channel([{"member_type": "User", "user": self.reader}], commit=True))
		publish(channel.name, "deploy at five")
		frappe.db.commit()
		kept = frappe.get_all(DOCTYPE, {"user": self.reader, "channel": channel.name}, ["subject", "payload"])
		self.assertEqual(len(kept), 1)
		self.assertEqual(kept[0].subject, channel.name)
		self.assertFalse(frappe.get_all("Error Log", {"method": ("like", "RT Studio: could not%")}))

	def test_row_names_do_not_repeat(self):
		names = bulk.new_names(200_000)
		self.assertEqual(len(set(names)), 200_000)
		self.assertEqual({len(name) for name in names}, {16})


class TestConcurrentDeletes(CommitFaultTestCase):
	"""Eight connections insert an order and delete it again, while a New rule and a Delete rule
	tell the reader: every delete that reports success is real and announced once; every delete
	that failed left its order in place and announced nothing."""

	THREADS = 8
	ROUNDS = 12

	def test_concurrent_deletes_never_announce_a_delete_that_did_not_happen(self):
		self.rule(event="New", subject="New {{ doc.name }}")
		delete_rule = self.rule(event="Delete", subject="Deleted {{ doc.name }}")
		site, sites_path, user = frappe.local.site, frappe.local.sites_path, frappe.session.user
		results: list[tuple[str, bool, str]] = []
		lock = threading.Lock()

		def client():
			frappe.init(site=site, sites_path=sites_path)
			frappe.connect()
			frappe.set_user(user)
			try:
				for _ in range(self.ROUNDS):
					order = new_order().insert()
					frappe.db.commit()
					try:
						frappe.delete_doc(ORDER, order.name)
						frappe.db.commit()
						outcome = (order.name, True, "")
					except Exception as e:
						frappe.db.rollback()
						outcome = (order.name, False, type(e).__name__)
					with lock:
						results.append(outcome)
			finally:
				frappe.destroy()

		with RealtimeListener() as listener:
			threads = [threading.Thread(target=client) for _ in range(self.THREADS)]
			for thread in threads:
				thread.start()
			for thread in threads:
				thread.join(timeout=120)
			announced = listener.received(rule=delete_rule.name, quiet=2)
		frappe.db.rollback()
		names = [name for name, _ok, _why in results]
		self.addCleanup(lambda: [purge_order(name) for name in names] and frappe.db.commit())
		self.assertEqual(len(results), self.THREADS * self.ROUNDS)
		announced_names = [s.message["docname"] for s in announced]
		failed = [(name, why) for name, ok, why in results if not ok]
		for name, ok, _why in results:
			exists = bool(frappe.db.exists(ORDER, name))
			self.assertEqual(exists, not ok, f"{name}: delete reported {'success' if ok else 'failure'}")
			self.assertEqual(announced_names.count(name), 0 if exists else 1, name)
		kept = frappe.get_all(
			DOCTYPE, {"user": self.reader, "rule": delete_rule.name}, pluck="reference_name"
		)
		self.assertEqual(sorted(kept), sorted(n for n, ok, _why in results if ok))
		# the inbox no longer takes gap locks on deletes: no delete deadlocks at all
		self.assertEqual(failed, [])


class TestServersGoingAway(CommitFaultTestCase):
	def test_a_step_after_the_commit_that_fails_does_not_stop_the_publish(self):
		"""The trace is written after the commit to the cache Redis; when that fails (Redis
		restarting), the message still goes out and the committed save answers normally."""
		rule = self.rule()
		order = self.enterContext(make_order(commit=True))
		with RealtimeListener() as listener:
			order.qty = 9
			order.save()
			with patch.object(trace, "write", side_effect=redis.exceptions.ConnectionError("restarting")):
				frappe.db.commit()
			sent = listener.received(rule=rule.name, count=1)
		self.assertEqual([s.user for s in sent], [self.reader])
		self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 1)

	def test_states_of_a_request_that_died_with_its_connection_are_forgotten(self):
		"""A request whose database connection died never ended: the next one on the thread, on a
		new connection, sends and keeps its own message once, and nothing of the dead one."""
		rule = self.rule()
		order = self.enterContext(make_order(commit=True))
		with RealtimeListener() as listener:
			order.qty = 11
			order.save()  # queued on this connection; the request then dies without an end
			dead = frappe.local.db
			dead._conn.rollback()  # what the server does with the transaction of a connection gone
			frappe.connect()  # the next request's connection
			self.addCleanup(dead.close)
			order.reload()
			order.qty = 12
			order.save()
			frappe.db.commit()
			sent = listener.received(rule=rule.name, quiet=1)
		self.assertEqual([s.message["docname"] for s in sent], [order.name])
		self.assertEqual(frappe.db.get_value(ORDER, order.name, "qty"), 12)
		self.assertEqual(frappe.db.count(DOCTYPE, {"user": self.reader}), 1)
		self.assertEqual(len(self.replayable(rule.name)), 1)

	def test_redis_out_of_reach_fails_a_save_with_rules_and_spares_one_without(self):
		self.rule(event="New")
		down = redis.exceptions.ConnectionError(
			"Error 111 connecting to 127.0.0.1:13000. Connection refused."
		)
		real_get_value = frappe.cache.get_value

		def get_value(key, generator=None, *args, **kwargs):
			# what Frappe's wrapper answers with Redis gone: the generator's value, else None
			if key == rule_cache.STATE_KEY:
				return None
			return real_get_value(key, generator, *args, **kwargs)

		with (
			patch.object(frappe.cache, "get_value", side_effect=get_value),
			patch.object(frappe.cache, "set", side_effect=down),
			patch.object(frappe.cache, "hmget", side_effect=down),
			patch.object(frappe.cache, "pipeline", side_effect=down),
		):
			frappe.local.cache = {}
			frappe.local.rt_studio_index = None
			with self.assertRaises(redis.exceptions.ConnectionError):
				new_order().insert()
			frappe.db.rollback()
			note = frappe.get_doc(
				{"doctype": "Note", "title": f"rt-test-redis-down {frappe.generate_hash(6)}"}
			)
			note.insert()  # no rule on Note: RT Studio reads its rules from MariaDB and lets it be
		frappe.db.rollback()
