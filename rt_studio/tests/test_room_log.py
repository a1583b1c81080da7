"""Messages to a document's viewers are numbered per room and kept, so a form that reconnects
asks `rt_studio.api.missed_room` for what it missed: only a user who may read the document gets
them, oldest first, above the number asked from."""

import frappe

from rt_studio.api import missed_room
from rt_studio.delivery import room_log
from rt_studio.engine.audience import doc_room
from rt_studio.tests.factories import ORDER, ReaderAndOutsiderTestCase, make_rule, new_order


class TestRoomLog(ReaderAndOutsiderTestCase):
	def setUp(self):
		super().setUp()
		self.enterContext(
			make_rule([{"audience_type": "Document Viewers"}], event="Save", subject="qty {{ doc.qty }}")
		)
		self.order = new_order(qty=0).insert()
		self.room = doc_room(ORDER, self.order.name)
		log = room_log.log_of(self.room)
		self.addCleanup(frappe.cache.delete, log.counter, log.entries)

	def save_times(self, n: int) -> None:
		"""`n` saves, each its own user action, numbered as their commit begins."""
		for qty in range(1, n + 1):
			with self.action():
				self.order.qty = qty
				self.order.save()
		frappe.db.before_commit.run()

	def missed_as(self, user: str, since: int = 0, docname: str | None = None) -> list[dict]:
		frappe.set_user(user)
		try:
			return missed_room(ORDER, docname or self.order.name, since)
		finally:
			frappe.set_user("Administrator")

	def test_a_reader_gets_the_rooms_messages_oldest_first_above_since(self):
		self.save_times(3)
		kept = self.missed_as(self.reader)
		self.assertEqual([m["subject"] for m in kept], ["qty 1", "qty 2", "qty 3"])
		seqs = [m["seq"] for m in kept]
		self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 3)), "numbered in order, none skipped")
		self.assertEqual({m["room"] for m in kept}, {self.room})
		self.assertEqual([m["seq"] for m in self.missed_as(self.reader, since=seqs[0])], seqs[1:])
		self.assertEqual(self.missed_as(self.reader, since=seqs[-1]), [])

	def test_what_is_published_is_what_is_kept(self):
		with self.action() as save:
			self.order.qty = 7
			self.order.save()
		frappe.db.before_commit.run()
		[sent] = save.sent
		self.assertEqual(sent.room, self.room)
		[kept] = self.missed_as(self.reader)
		self.assertEqual(kept, sent.message)

	def test_a_user_who_may_not_read_the_document_gets_nothing(self):
		self.save_times(1)
		with self.assertRaises(frappe.PermissionError):
			self.missed_as(self.outsider)
		with self.assertRaises(frappe.PermissionError):
			self.missed_as(self.reader, docname="no such order")

	def test_the_form_loads_with_its_rooms_number(self):
		self.save_times(2)
		[*_, last] = self.missed_as(self.reader)
		doc = frappe.get_doc(ORDER, self.order.name)
		doc.run_method("onload")
		self.assertEqual(doc.get_onload().get("rt_studio_room_seq"), last["seq"])

	def test_a_rolled_back_save_keeps_nothing(self):
		with self.action():
			self.order.qty = 9
			self.order.save()
		frappe.db.rollback()
		frappe.db.before_commit.run()
		self.assertEqual(room_log.read(self.room, 0), [])
