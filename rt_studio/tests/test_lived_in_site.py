"""The suite on a site that has lived: other System Managers, hundreds of users, rules and
channels that the suite did not make (an app's, an administrator's, an earlier run's), firing
on the same DocTypes as the suite's own rules.

The class makes that state first, committed (a second System Manager who is a desk user, 250
users of mixed roles, and foreign rules to Everyone, to System Managers and on Note and
ToDo, and a foreign channel), then checks what broke the suite on such sites: a test sees only
its own rules' messages, Everyone goes to the delivery job and reaches exactly the readers, a
DocType without rules is still free, and a test's background jobs run while others are queued.
Everything it made is removed at the end; names start with LIVED_PREFIX, so a run that was
interrupted is cleaned up by the next one (factories.sweep_leftovers).
"""

import frappe

from rt_studio.tests.crowd import Member, crowd_names, insert_crowd, remove_crowd, sweep_crowds
from rt_studio.tests.factories import (
	BYSTANDER,
	LIVED_PREFIX,
	ORDER,
	TESTER,
	RealtimeListener,
	RTTestCase,
	make_rule,
	make_users,
	new_order,
	purge_order,
	run_background_jobs,
)
from rt_studio.tests.test_cache import assert_free_for_doctypes_without_rules

#: Users of a lived-in site: well above the audience a save decides itself (LARGE_AUDIENCE).
RESIDENTS = 250
#: Their roles, in turn: System Managers, readers of the test DocType, desk users who may not
#: read it, and users with no role at all.
RESIDENT_ROLES = (("System Manager",), (TESTER,), (BYSTANDER,), ())


def foreign_rules() -> list[dict]:
	"""Rules the suite did not make: enabled, on the DocTypes the suite's tests use."""
	return [
		{"document_type": ORDER, "event": "Save", "audience": [{"audience_type": "Everyone"}]},
		{"document_type": ORDER, "event": "Save", "audience": [{"audience_type": "Role", "role": TESTER}]},
		{
			"document_type": ORDER,
			"event": "New",
			"audience": [{"audience_type": "Role", "role": "System Manager"}],
		},
		{"document_type": "ToDo", "event": "New", "audience": [{"audience_type": "Everyone"}]},
		{"document_type": "ToDo", "event": "Save", "audience": [{"audience_type": "Owner"}]},
		{"document_type": "Note", "event": "Save", "audience": [{"audience_type": "Owner"}]},
	]


class TestLivedInSite(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		sweep_crowds()
		cls.users = cls.enterClassContext(
			make_users(
				{
					"second-manager": {"roles": ["System Manager"]},
					"reader": {"roles": [TESTER]},
					"outsider": {"roles": [BYSTANDER]},
				}
			)
		)
		members = [
			Member(name, RESIDENT_ROLES[i % len(RESIDENT_ROLES)])
			for i, name in enumerate(crowd_names(RESIDENTS))
		]
		cls.residents = insert_crowd(members)
		cls.foreign = []
		for i, fields in enumerate(foreign_rules()):
			rule = frappe.get_doc(
				{
					"doctype": "Realtime Rule",
					"rule_name": f"{LIVED_PREFIX}rule-{i}",
					"subject": "{{ doc.name }} (a rule the suite did not make)",
					**fields,
				}
			).insert()
			cls.foreign.append(rule.name)
		frappe.get_doc(
			{
				"doctype": "Realtime Channel",
				"channel_name": f"{LIVED_PREFIX}channel",
				"members": [{"member_type": "Role", "role": "System Manager"}],
			}
		).insert()
		frappe.db.commit()
		cls.addClassCleanup(cls.leave)

	@classmethod
	def leave(cls):
		frappe.db.rollback()
		remove_crowd(cls.residents)
		for name in cls.foreign:
			frappe.delete_doc("Realtime Rule", name, force=True, ignore_permissions=True)
		frappe.delete_doc("Realtime Channel", f"{LIVED_PREFIX}channel", force=True, ignore_permissions=True)
		frappe.db.commit()

	def test_a_test_sees_its_own_rule_only(self):
		reader = self.users["reader"]
		rule = self.enterContext(make_rule([{"audience_type": "User", "user": reader}], event="Save"))
		order = new_order().insert()
		with self.action() as save:
			order.qty += 1
			order.save()
		self.assertEqual(save.rules(), {rule.name: 1})
		self.assertEqual(save.users(), [reader])

	def test_everyone_goes_to_the_job_and_reaches_exactly_the_readers(self):
		rule = self.enterContext(make_rule([{"audience_type": "Everyone"}], event="New", commit=True))
		with RealtimeListener() as listener:
			with self.action() as insert:
				order = new_order(title="lived-in").insert()
			self.assertEqual(insert.sent, [], "hundreds of users: the save leaves them to the job")
			try:
				frappe.db.commit()
				expected = sorted(
					u
					for u in frappe.get_all(
						"User", filters={"enabled": 1, "user_type": "System User"}, pluck="name"
					)
					if u != "Administrator" and frappe.has_permission(ORDER, "read", order, user=u)
				)
				log = run_background_jobs("short")
				received = listener.received(rule=rule.name, count=len(expected))
			finally:
				purge_order(order.name)
				frappe.db.commit()
		users = sorted(s.user for s in received)
		self.assertEqual(users, expected, log)
		self.assertIn(self.users["reader"], users)
		self.assertIn(self.users["second-manager"], users)
		self.assertNotIn(self.users["outsider"], users)
		self.assertGreater(len(set(users) & set(self.residents)), RESIDENTS // 4)

	def test_a_doctype_without_rules_is_still_free(self):
		assert_free_for_doctypes_without_rules(self)
