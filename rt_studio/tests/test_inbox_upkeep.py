"""The inbox kept right over time: escalation that starts when it is switched on and survives one
bad item, a daily clean-up in small indexed batches that tells open tabs, messages that leave or
follow a deleted or renamed document whatever the rules, a page whose read access is decided in
bulk, and a clear error for bad input (issue 20, point 5).

These tests commit (the inbox is written just before a commit) and remove what they committed.
"""

import json
from datetime import timedelta

import frappe
from frappe.utils import get_datetime, now_datetime

from rt_studio.api import archive, inbox, inbox_count, mark_read, mark_seen
from rt_studio.delivery import escalation, inbox_cleanup, inbox_references
from rt_studio.delivery.escalation import escalate_due
from rt_studio.delivery.inbox import DOCTYPE, INBOX_EVENT
from rt_studio.desk import authoring
from rt_studio.tests.counting import QueryCounter
from rt_studio.tests.factories import ORDER, RealtimeListener, make_order
from rt_studio.tests.test_inbox import InboxTestCase, as_user, outgoing_email_account


def forget_outgoing_account():
	"""Frappe remembers the outgoing Email Account for the request (a scheduled job is a new one)."""
	if hasattr(frappe.local, "outgoing_email_account"):
		del frappe.local.outgoing_email_account


class ItemsTestCase(InboxTestCase):
	next_seq = 1

	def add_items(self, user: str, count: int, *, sent_at=None, rule="rt-test-upkeep", **fields) -> list[int]:
		"""`count` committed items of `user` (seqs increasing); `fields` apply to each, a callable
		value is called with the item's index."""
		sent_at = sent_at or now_datetime()
		seqs, rows = [], []
		for i in range(count):
			seq = ItemsTestCase.next_seq = ItemsTestCase.next_seq + 1
			values = {k: (v(i) if callable(v) else v) for k, v in fields.items()}
			message = {
				"seq": seq,
				"rule": rule,
				"display": "Alert",
				"subject": "upkeep",
				"event": values.pop("event", "Save"),
				"doctype": values.get("reference_doctype"),
				"docname": values.get("reference_name"),
			}
			row = {
				"name": frappe.generate_hash(length=10),
				"user": user,
				"seq": seq,
				"rule": rule,
				"payload": json.dumps(message),
				"sent_at": sent_at,
				"creation": sent_at,
				"modified": sent_at,
				**values,
			}
			rows.append(row)
			seqs.append(seq)
		fields_ = list(rows[0])
		frappe.db.bulk_insert(DOCTYPE, fields_, [tuple(row[f] for f in fields_) for row in rows])
		frappe.db.commit()
		return seqs

	def seqs(self, user: str) -> list[int]:
		return frappe.get_all(DOCTYPE, filters={"user": user}, pluck="seq", order_by="seq asc")


class TestEscalationStartsWhenSwitchedOn(ItemsTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.enterClassContext(outgoing_email_account())

	def emails(self, order) -> int:
		return frappe.db.count("Email Queue", {"reference_name": order.name})

	def sent_at(self, order) -> object:
		return get_datetime(
			frappe.db.get_value(DOCTYPE, {"user": self.reader, "reference_name": order.name}, "max(sent_at)")
		)

	def test_switching_escalation_on_does_not_email_the_messages_already_unread(self):
		rule = self.rule()
		old = self.enterContext(make_order(commit=True))
		self.deliver(old, times=3)
		rule.reload()
		rule.escalate_after_minutes = 30
		rule.save()
		frappe.db.commit()
		new = self.enterContext(make_order(commit=True))
		self.deliver(new)
		escalate_due(now=self.sent_at(new) + timedelta(minutes=30))
		self.assertEqual(self.emails(old), 0)
		self.assertEqual(self.emails(new), 2)
		old_items = frappe.get_all(DOCTYPE, {"reference_name": old.name}, ["escalated_at", "escalation"])
		self.assertEqual({(i.escalated_at, i.escalation) for i in old_items}, {(None, None)})

	def test_escalation_switched_on_outside_the_form_starts_at_the_next_run(self):
		rule = self.rule()
		old = self.enterContext(make_order(commit=True))
		self.deliver(old)
		frappe.db.set_value("Realtime Rule", rule.name, "escalate_after_minutes", 10)
		frappe.db.commit()
		rule.clear_cache()
		first_run = self.sent_at(old) + timedelta(minutes=15)
		escalate_due(now=first_run)
		self.assertEqual(self.emails(old), 0)
		new = self.enterContext(make_order(commit=True))
		self.deliver(new)
		# the run that noticed the change is the start: a message sent after it is emailed
		frappe.db.set_value(
			DOCTYPE, {"reference_name": new.name}, "sent_at", first_run + timedelta(minutes=1)
		)
		frappe.db.commit()
		escalate_due(now=first_run + timedelta(minutes=11))
		self.assertEqual((self.emails(old), self.emails(new)), (0, 2))

	def test_switched_off_and_on_again_starts_again(self):
		rule = self.rule(escalate_after_minutes=30)
		rule.escalate_after_minutes = 0
		rule.save()
		frappe.db.commit()
		old = self.enterContext(make_order(commit=True))
		self.deliver(old)
		rule.reload()
		rule.escalate_after_minutes = 30
		rule.save()
		frappe.db.commit()
		escalate_due(now=self.sent_at(old) + timedelta(minutes=31))
		self.assertEqual(self.emails(old), 0)


class TestEscalationFaults(ItemsTestCase):
	def emails(self, order) -> list[str]:
		queued = frappe.get_all("Email Queue", {"reference_name": order.name}, pluck="name")
		return frappe.get_all("Email Queue Recipient", {"parent": ("in", queued or [""])}, pluck="recipient")

	def due(self, order):
		sent = frappe.db.get_value(DOCTYPE, {"reference_name": order.name}, "max(sent_at)")
		return get_datetime(sent) + timedelta(minutes=10)

	def test_one_item_that_fails_does_not_stop_the_others_and_is_logged_once(self):
		with outgoing_email_account():
			first = self.rule(escalate_after_minutes=10)
			self.rule(escalate_after_minutes=10)  # a second rule, emailed for both users
			order = self.enterContext(make_order(commit=True))
			self.deliver(order)
			# the reader's item of the first rule cannot be read back (a hand-edited payload)
			broken = frappe.db.get_value(DOCTYPE, {"user": self.reader, "rule": first.name})
			frappe.db.set_value(DOCTYPE, broken, "payload", '{"rule": ', update_modified=False)
			frappe.db.commit()
			logged = {"reference_doctype": DOCTYPE, "reference_name": broken}
			errors = frappe.db.count("Error Log", logged)
			escalate_due(now=self.due(order))
			self.assertEqual(sorted(self.emails(order)), sorted([self.other, self.reader, self.other]))
			self.assertEqual(frappe.db.get_value(DOCTYPE, broken, "escalation"), escalation.FAILED)
			self.assertEqual(frappe.db.count("Error Log", logged), errors + 1)
			escalate_due(now=self.due(order) + timedelta(minutes=1))
			self.assertEqual(frappe.db.count("Error Log", logged), errors + 1)
			self.assertEqual(len(self.emails(order)), 3)

	def test_a_deadlock_is_not_swallowed(self):
		with outgoing_email_account():
			self.rule(escalate_after_minutes=10)
			order = self.enterContext(make_order(commit=True))
			self.deliver(order)
			original = escalation._send_email

			def deadlock(*args):
				raise frappe.QueryDeadlockError("forced")

			escalation._send_email = deadlock
			try:
				with self.assertRaises(frappe.QueryDeadlockError):
					escalate_due(now=self.due(order))
			finally:
				escalation._send_email = original
			frappe.db.rollback()
			self.assertEqual(
				frappe.db.count(DOCTYPE, {"reference_name": order.name, "escalated_at": ("is", "set")}), 0
			)
			escalate_due(now=self.due(order))
			self.assertEqual(len(self.emails(order)), 2)

	def test_no_email_account_is_not_final_and_never_sends_twice(self):
		if frappe.db.exists("Email Account", {"enable_outgoing": 1}):
			self.skipTest("this site has an outgoing Email Account")
		self.rule(escalate_after_minutes=10)
		order = self.enterContext(make_order(commit=True))
		self.deliver(order)
		forget_outgoing_account()
		escalate_due(now=self.due(order))
		self.assertEqual(self.emails(order), [])
		self.assertEqual(
			frappe.db.count(DOCTYPE, {"reference_name": order.name, "escalated_at": ("is", "set")}), 0
		)
		with outgoing_email_account():
			escalate_due(now=self.due(order) + timedelta(minutes=5))
			escalate_due(now=self.due(order) + timedelta(minutes=6))
			self.assertEqual(sorted(self.emails(order)), sorted([self.reader, self.other]))

	def test_a_test_fire_message_is_not_emailed(self):
		with outgoing_email_account():
			rule = self.rule(escalate_after_minutes=10)
			order = self.enterContext(make_order(commit=True))
			authoring.test_fire(rule.name, order.name, to="audience")
			frappe.db.commit()
			payloads = frappe.get_all(DOCTYPE, {"reference_name": order.name}, pluck="payload")
			self.assertEqual(len(payloads), 2)
			self.assertTrue(all(json.loads(p).get(escalation.TEST_FIRE_KEY) for p in payloads))
			escalate_due(now=self.due(order))
			self.assertEqual(self.emails(order), [])

	def test_a_message_marked_as_test_fire_is_not_emailed(self):
		with outgoing_email_account():
			self.rule(escalate_after_minutes=10)
			order = self.enterContext(make_order(commit=True))
			self.deliver(order)
			for name, payload in frappe.get_all(
				DOCTYPE, {"reference_name": order.name}, ["name", "payload"], as_list=True
			):
				marked = {**json.loads(payload), escalation.TEST_FIRE_KEY: True}
				frappe.db.set_value(DOCTYPE, name, "payload", json.dumps(marked), update_modified=False)
			frappe.db.commit()
			escalate_due(now=self.due(order))
			self.assertEqual(self.emails(order), [])
			self.assertEqual(
				set(frappe.get_all(DOCTYPE, {"reference_name": order.name}, pluck="escalation")),
				{escalation.TEST_FIRE},
			)


class TestCleanUpInBatches(ItemsTestCase):
	"""The clean-up runs over the whole site, as the daily job does: with Frappe's own limits (on
	the demo site it removes only what the daily job would), in batches of 3 here."""

	def setUp(self):
		super().setUp()
		self.batch = inbox_cleanup.BATCH
		inbox_cleanup.BATCH = 3
		self.addCleanup(setattr, inbox_cleanup, "BATCH", self.batch)

	def test_deletes_by_name_in_small_committed_batches(self):
		old = now_datetime() - timedelta(days=inbox_cleanup.KEEP_DAYS + 1)
		self.add_items(self.reader, 7, sent_at=old)
		with QueryCounter() as counter:
			inbox_cleanup.clean_up()
		deletes = [q for q in counter.queries if q.lstrip().lower().startswith("delete")]
		self.assertGreaterEqual(len(deletes), 3)  # 3 + 3 + 1 of the reader's, and any others
		for statement in deletes:
			self.assertRegex(statement.lower(), r"where `?name`? in")
		statements = [q.strip().lower() for q in counter.queries]
		for at, statement in enumerate(statements):
			if statement.startswith("delete"):
				self.assertIn("commit", statements[at + 1 : at + 3])  # each batch its own commit
		self.assertEqual(self.seqs(self.reader), [])

	def test_a_crowded_inbox_loses_read_and_archived_items_before_unread_ones(self):
		now = now_datetime()
		unread_old = self.add_items(self.reader, 5, sent_at=now - timedelta(hours=3))
		read = self.add_items(self.reader, 3, sent_at=now - timedelta(hours=2), read_at=now)
		archived = self.add_items(self.reader, 2, sent_at=now - timedelta(hours=2), archived_at=now)
		unread_new = self.add_items(
			self.reader, inbox_cleanup.MAX_ITEMS_PER_USER - 5, sent_at=now - timedelta(hours=1)
		)
		inbox_cleanup.clean_up()
		# five over the limit: the five read or archived go, every unread one stays
		self.assertEqual(self.seqs(self.reader), unread_old + unread_new)
		self.assertFalse(set(read + archived) & set(self.seqs(self.reader)))

	def test_beyond_the_limit_in_unread_items_alone_the_oldest_go(self):
		unread = self.add_items(self.reader, inbox_cleanup.MAX_ITEMS_PER_USER + 2)
		inbox_cleanup.clean_up()
		self.assertEqual(self.seqs(self.reader), unread[2:])

	def test_open_tabs_hear_the_new_count(self):
		old = now_datetime() - timedelta(days=inbox_cleanup.KEEP_DAYS + 1)
		self.add_items(self.reader, 4, sent_at=old)
		kept = self.add_items(self.reader, 2)
		with RealtimeListener() as listener:
			inbox_cleanup.clean_up()
			[sent] = listener.of_event(INBOX_EVENT, f"user:{self.reader}")
		self.assertEqual((sent.message["unread"], sent.message["latest"]), (2, kept[-1]))
		self.assertEqual(listener.of_event(INBOX_EVENT, f"user:{self.other}"), [])


class TestDocumentGoneOrRenamed(ItemsTestCase):
	def todo(self) -> str:
		doc = frappe.get_doc({"doctype": "ToDo", "description": "rt-test upkeep"}).insert()
		frappe.db.commit()
		self.addCleanup(self.drop_todo, doc.name)
		return doc.name

	def drop_todo(self, name: str):
		frappe.db.rollback()
		frappe.db.delete("ToDo", {"name": name})
		frappe.db.commit()

	def delivered_then_rule_gone(self, how: str):
		"""Two orders with a message each in both inboxes from a rule that is then disabled or deleted."""
		rule = self.rule()
		orders = [self.enterContext(make_order(commit=True)) for _ in range(2)]
		for order in orders:
			self.deliver(order)
		if how == "disabled":
			rule.reload()
			rule.enabled = 0
			rule.save()
		else:
			frappe.delete_doc("Realtime Rule", rule.name, force=True)
		frappe.db.commit()
		self.assertEqual(as_user(self.reader, inbox_count)["unread"], 2)
		return orders

	def test_deleting_a_document_whose_rule_is_disabled_or_deleted_takes_its_messages_out(self):
		for how in ("disabled", "deleted"):
			self.forget_items()
			gone, kept = self.delivered_then_rule_gone(how)
			frappe.delete_doc(ORDER, gone.name)
			frappe.db.commit()
			for user in (self.reader, self.other):
				self.assertEqual(as_user(user, inbox_count)["unread"], 1, how)
				self.assertEqual([item["docname"] for item in as_user(user, inbox)["items"]], [kept.name])

	def test_renaming_a_document_whose_rule_is_deleted_takes_its_messages_along(self):
		order, _ = self.delivered_then_rule_gone("deleted")
		new_name = f"{order.name}-renamed"
		frappe.rename_doc(ORDER, order.name, new_name, force=True)
		frappe.db.commit()
		self.addCleanup(self.purge, new_name)
		[item, _] = as_user(self.reader, inbox)["items"][::-1]
		self.assertEqual((item["doctype"], item["docname"]), (ORDER, new_name))
		self.assertEqual(frappe.db.count(DOCTYPE, {"reference_name": new_name}), 2)

	def purge(self, name: str):
		from rt_studio.tests.factories import purge_order

		frappe.db.rollback()
		purge_order(name)
		frappe.db.commit()

	def test_forget_document_takes_no_lock_when_nothing_matches_and_deletes_by_name(self):
		from rt_studio.delivery.inbox import forget_document

		name = self.todo()
		with QueryCounter() as counter:
			forget_document("ToDo", name)
		self.assertFalse([q for q in counter.queries if "delete" in q.lower()], counter.queries)
		self.add_items(self.reader, 2, reference_doctype="ToDo", reference_name=name)
		with QueryCounter() as counter:
			forget_document("ToDo", name)
		[delete] = [q for q in counter.queries if "delete" in q.lower()]
		self.assertRegex(delete.lower(), r"where `?name`? in")
		self.assertNotIn("for update", " ".join(counter.queries).lower())
		frappe.db.commit()
		self.assertEqual(self.seqs(self.reader), [])

	def test_concurrent_deletes_take_no_gap_locks_that_an_inbox_insert_waits_on(self):
		"""Two transactions each delete a document, then write its Delete message (as the inbox
		writer does before the commit). A DELETE by the reference index locked the gap between
		the two names in both, so each INSERT waited on the other (a deadlock; here a lock wait
		timeout, one thread driving both)."""
		from rt_studio.delivery.inbox import forget_document

		mine, theirs = frappe.local.db, self.second_connection()
		for db in (mine, theirs):
			db.sql("set session innodb_lock_wait_timeout = 2")
		self.addCleanup(mine.sql, "set session innodb_lock_wait_timeout = 50")
		try:
			for db, name in ((mine, "rt-test-gap-a"), (theirs, "rt-test-gap-b")):
				frappe.local.db = db
				forget_document(ORDER, name)
			for db, name in ((mine, "rt-test-gap-a"), (theirs, "rt-test-gap-b")):
				frappe.local.db = db
				db.sql(
					f"""insert into `tab{DOCTYPE}` (name, user, seq, reference_doctype, reference_name,
					payload, sent_at) values (%s, %s, %s, %s, %s, '{{}}', now())""",
					(
						frappe.generate_hash(length=12),
						self.reader,
						ItemsTestCase.next_seq + 1000,
						ORDER,
						name,
					),
				)
				ItemsTestCase.next_seq += 1
		finally:
			frappe.local.db = mine
			theirs.rollback()
			theirs.close()
			mine.rollback()

	def second_connection(self):
		from frappe.database import get_db

		db = frappe.local.db
		other = get_db(db.host, db.user, db.password, db.port, db.cur_db_name)
		other.connect()
		return other

	def test_a_doctype_that_never_had_messages_costs_no_query(self):
		quiet = next(
			doctype
			for doctype in ("Note", "Web Page", "Letter Head", "Print Heading", "Kanban Board")
			if not frappe.db.exists("Realtime Rule", {"document_type": doctype})
			and not frappe.db.exists(DOCTYPE, {"reference_doctype": doctype})
		)
		inbox_references.may_have_items(quiet)  # warm
		with QueryCounter() as counter:
			self.assertFalse(inbox_references.may_have_items(quiet))
		self.assertEqual(counter.count, 0)


class TestInboxPageReadAccessInBulk(ItemsTestCase):
	def test_a_page_of_twenty_costs_a_constant_number_of_queries_and_equals_has_permission(self):
		# the reader may read no order whose Owner User is another user (a User Permission on User)
		hidden = self.enterContext(make_order(commit=True, owner_user=self.other))
		orders = [hidden, *(self.enterContext(make_order(commit=True)) for _ in range(21))]
		deleted, deleted_with_notice = orders[1], orders[2]
		for order in orders:
			event = "Delete" if order is deleted_with_notice else "Save"
			for user in (self.reader, self.other):
				self.add_items(user, 1, reference_doctype=ORDER, reference_name=order.name, event=event)
		frappe.db.delete(ORDER, {"name": ("in", [deleted.name, deleted_with_notice.name])})
		self.hide_others_orders_from_reader()
		for user in (self.reader, self.other):
			as_user(user, inbox)  # warm Frappe's caches (meta, roles, user permissions)
			frappe.set_user(user)
			try:
				with QueryCounter() as counter:
					listed = inbox(limit=20)["items"]
			finally:
				frappe.set_user("Administrator")
			print(f"inbox page of {len(listed)} for {user}: {counter.count} queries")
			self.assertLessEqual(counter.count, 8, counter.queries)
			readable = [
				o.name
				for o in orders
				if o is deleted_with_notice
				or (
					frappe.db.exists(ORDER, o.name)
					and frappe.has_permission(ORDER, "read", doc=o.name, user=user)
				)
			]
			self.assertEqual([item["docname"] for item in listed], readable[::-1][:20])
			self.assertEqual(hidden.name in readable, user == self.other)
			self.assertNotIn(deleted.name, readable)

	def test_a_user_who_lost_access_to_600_documents_gets_an_empty_page_in_few_queries(self):
		now = now_datetime()
		tag = frappe.generate_hash(length=8)  # 600 random names of their own collided once
		names = [f"rt-test-hidden-{tag}-{i:03d}" for i in range(600)]
		frappe.db.bulk_insert(
			ORDER,
			["name", "title", "status", "qty", "owner_user", "owner", "modified_by", "creation", "modified"],
			[
				(name, "Test order", "Draft", 1, self.other, "Administrator", "Administrator", now, now)
				for name in names
			],
		)
		self.addCleanup(self.drop_orders, names)
		self.add_items(self.reader, len(names), reference_doctype=ORDER, reference_name=names.__getitem__)
		self.hide_others_orders_from_reader()
		frappe.set_user(self.reader)
		try:
			inbox()  # warm
			with QueryCounter() as counter:
				page = inbox()
		finally:
			frappe.set_user("Administrator")
		print(f"empty inbox page over 600 hidden documents: {counter.count} queries")
		self.assertEqual(page["items"], [])
		self.assertLessEqual(counter.count, 30)  # 2,015 when decided one document at a time

	def hide_others_orders_from_reader(self):
		"""The reader may read no order whose Owner User is another user (a User Permission on User)."""
		frappe.get_doc(
			{
				"doctype": "User Permission",
				"user": self.reader,
				"allow": "User",
				"for_value": self.reader,
				"apply_to_all_doctypes": 0,
				"applicable_for": ORDER,
			}
		).insert()
		frappe.db.commit()
		self.addCleanup(self.drop_user_permissions)

	def drop_orders(self, names: list[str]):
		frappe.db.rollback()
		frappe.db.delete(ORDER, {"name": ("in", names)})
		frappe.db.commit()

	def drop_user_permissions(self):
		frappe.db.delete("User Permission", {"user": self.reader, "allow": "User"})
		frappe.db.commit()
		frappe.clear_cache(user=self.reader)


class TestBadInput(ItemsTestCase):
	def test_bad_seqs_name_the_parameter_and_what_it_accepts(self):
		for call, value in (
			(mark_read, "not json"),
			(mark_seen, "[1,"),
			(archive, '{"a": 1}'),
			(mark_read, "[true]"),
		):
			with self.assertRaises(frappe.ValidationError) as raised:
				as_user(self.reader, call, value)
			self.assertIn("seqs", str(raised.exception))
			self.assertIn("list of message numbers", str(raised.exception))
