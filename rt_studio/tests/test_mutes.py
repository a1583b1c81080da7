"""Mutes: each user mutes rules and channels for themselves; critical rules cannot be muted."""

import time

import frappe
from frappe.utils import add_to_date, now_datetime

from rt_studio.api import mute, my_notifications, preview, publish, unmute
from rt_studio.delivery import delivery_log, trace
from rt_studio.delivery import mutes as site_mutes
from rt_studio.tests.factories import (
	MANAGER,
	ORDER,
	TESTER,
	RealtimeListener,
	RTTestCase,
	make_channel,
	make_order,
	make_rule,
	make_users,
	new_request,
	test_user_email,
)
from rt_studio.tests.test_delivery_log import clear_log


def as_user(user: str, fn, *args, **kwargs):
	"""Call an API function as `user` and commit, as a web request would."""
	frappe.set_user(user)
	try:
		result = fn(*args, **kwargs)
		frappe.db.commit()
		return result
	finally:
		frappe.set_user("Administrator")


def as_if_delivered(user: str, rule: str | None = None, channel: str | None = None) -> None:
	"""What a delivery of `rule` (or a post of `channel`) leaves in the user's delivery log, from
	which `mute` accepts a rule: the desk offers to mute only what reached the user."""
	delivery_log.stamp([(user, {"rule": rule, "channel": channel, "subject": "as if delivered"})])


def lose_mutes_in_redis() -> None:
	"""What a Redis restart or `bench clear-cache` does to the mutes' hashes and markers."""
	for key in frappe.cache.keys(frappe.cache.make_key("rt_studio:mutes*")):
		frappe.cache.delete(key)
	new_request()


def entries(key: bytes) -> dict[bytes, bytes]:
	"""A mutes hash as Redis holds it: {user: end}."""
	return frappe.cache.pipeline().hgetall(key).execute()[0]


def second_connection():
	"""A connection of its own to the site's database, as another web worker has."""
	from frappe.database import get_db

	conf = frappe.conf
	return get_db(conf.db_host, conf.db_name, conf.db_password, conf.db_port, conf.db_name)


def drop_mutes(*users: str) -> None:
	for user in users:
		for row in frappe.get_all("Realtime Mute", filters={"user": user}, fields=["rule", "channel"]):
			as_user(user, unmute, rule=row.rule, channel=row.channel)


class TestMutes(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.users = cls.enterClassContext(
			make_users({"reader": {"roles": [TESTER]}, "other": {"roles": [TESTER]}})
		)
		cls.reader, cls.other = cls.users["reader"], cls.users["other"]

	def setUp(self):
		super().setUp()
		drop_mutes(self.reader, self.other)
		clear_log(self.reader)
		clear_log(self.other)
		self.addCleanup(drop_mutes, self.reader, self.other)

	def rule_to_both(self, delivered: bool = True, **fields):
		"""A rule to the reader and the other, which (as their delivery logs tell) reached both
		unless `delivered` is False."""
		audience = [{"audience_type": "User", "user": user} for user in (self.reader, self.other)]
		rule = self.enterContext(make_rule(audience, commit=True, **fields))
		for user in (self.reader, self.other) if delivered else ():
			as_if_delivered(user, rule=rule.name)
		return rule

	def save(self, order, rule) -> dict[str, str]:
		"""Save and commit; {user: subject} of what was really published for `rule`."""
		with RealtimeListener() as listener:
			order.reload()
			order.qty += 1
			order.save()
			frappe.db.commit()
			return {sent.user: sent.message["subject"] for sent in listener.received(rule=rule.name)}

	def test_a_muted_user_gets_nothing_and_preview_and_trace_say_muted(self):
		rule = self.rule_to_both()
		order = self.enterContext(make_order(commit=True))
		self.assertEqual(as_user(self.reader, mute, rule=rule.name)["until"], None)
		self.assertEqual(set(self.save(order, rule)), {self.other})
		verdicts = {r["user"]: r["verdict"] for r in preview(rule.name, order.name)["recipients"]}
		self.assertEqual(verdicts, {self.reader: "muted", self.other: "deliver"})
		[entry] = trace.read(rule.name, limit=1)
		self.assertEqual((entry["reason"], entry["muted"]), ("1 of 2 recipients (1 muted)", 1))
		as_user(self.reader, unmute, rule=rule.name)
		self.assertEqual(set(self.save(order, rule)), {self.reader, self.other})

	def test_a_timed_mute_ends(self):
		rule = self.rule_to_both()
		order = self.enterContext(make_order(commit=True))
		result = as_user(self.reader, mute, rule=rule.name, minutes=60)
		expected = add_to_date(now_datetime(), minutes=60)
		self.assertLess(abs((result["until"] - expected).total_seconds()), 5)
		self.assertEqual(set(self.save(order, rule)), {self.other})
		# an hour later (the end moved into the past, in the database and in Redis)
		past = add_to_date(now_datetime(), minutes=-1)
		frappe.db.set_value("Realtime Mute", {"user": self.reader, "rule": rule.name}, "until", past)
		frappe.cache.pipeline().hset(
			site_mutes._hash(f"rule:{rule.name}"), self.reader, site_mutes.epoch(past)
		).execute()
		frappe.db.commit()
		self.assertEqual(set(self.save(order, rule)), {self.reader, self.other})

	def test_a_critical_rule_cannot_be_muted_and_ignores_earlier_mutes(self):
		rule = self.rule_to_both()
		order = self.enterContext(make_order(commit=True))
		as_user(self.reader, mute, rule=rule.name)
		rule.reload()
		rule.critical = 1
		rule.save()
		frappe.db.commit()
		self.assertEqual(set(self.save(order, rule)), {self.reader, self.other})
		with self.assertRaisesRegex(frappe.ValidationError, "is critical"):
			as_user(self.other, mute, rule=rule.name, minutes=60)
		listing = as_user(self.reader, my_notifications)
		self.assertEqual([(m["rule"], m["critical"]) for m in listing["mutes"]], [(rule.name, True)])

	def test_users_change_only_their_own_mutes(self):
		rule = self.rule_to_both()
		as_user(self.reader, mute, rule=rule.name)
		as_user(self.other, unmute, rule=rule.name)  # the other's unmute touches only the other
		[row] = frappe.get_all("Realtime Mute", filters={"rule": rule.name}, fields=["name", "user"])
		self.assertEqual(row.user, self.reader)
		doc = frappe.get_doc("Realtime Mute", row.name)
		for user in (self.other, self.reader, test_user_email(MANAGER)):
			for ptype in ("write", "delete", "create"):
				self.assertFalse(frappe.has_permission("Realtime Mute", ptype, doc, user=user), (user, ptype))
		self.assertFalse(frappe.has_permission("Realtime Mute", "read", doc, user=self.other))
		frappe.set_user("Guest")
		with self.assertRaises(frappe.PermissionError):
			mute(rule=rule.name)

	def test_bad_requests_name_the_problem(self):
		rule = self.rule_to_both()
		for kwargs, text in (
			({}, "Name one rule or one channel"),
			({"rule": rule.name, "channel": "x"}, "Name one rule or one channel"),
			({"rule": "no such rule"}, "You have received nothing from"),
			({"channel": "no such channel"}, "You have received nothing from"),
			({"rule": rule.name, "minutes": 0}, "minutes must be between 1 and"),
			({"rule": rule.name, "minutes": 10**7}, "minutes must be between 1 and"),
		):
			with self.subTest(kwargs), self.assertRaisesRegex(frappe.ValidationError, text):
				as_user(self.reader, mute, **kwargs)

	def test_a_user_mutes_only_what_reached_them_and_learns_nothing_else(self):
		to_reader = [{"audience_type": "User", "user": self.reader}]
		quiet = self.enterContext(make_rule(to_reader, commit=True))
		critical = self.enterContext(make_rule(to_reader, commit=True, critical=1))
		channel = self.enterContext(make_channel([{"member_type": "User", "user": self.other}], commit=True))
		answers = set()
		for kwargs in (
			{"rule": quiet.name},
			{"rule": critical.name},
			{"rule": "rt-test-no such rule"},
			{"channel": channel.name},  # the reader is no member
			{"channel": "rt-test-no such channel"},
		):
			name = kwargs.get("rule") or kwargs.get("channel")
			for call in (mute, unmute):
				with (
					self.subTest(call=call.__name__, **kwargs),
					self.assertRaises(frappe.ValidationError) as caught,
				):
					as_user(self.reader, call, **kwargs)
				answers.add(str(caught.exception).replace(name, "NAME"))
		self.assertEqual(
			answers,
			{
				"You have received nothing from <strong>NAME</strong> to mute: mute it from one of its messages",
				"You have not muted <strong>NAME</strong>: there is nothing to unmute",
			},
		)
		self.assertEqual(frappe.get_all("Realtime Mute", filters={"user": self.reader}), [])
		# once a message of the rule has reached them, they may mute it
		order = self.enterContext(make_order(commit=True))
		self.assertEqual(set(self.save(order, quiet)), {self.reader})
		as_user(self.reader, mute, rule=quiet.name)
		self.assertEqual(self.save(order, quiet), {})
		self.assertEqual(set(self.save(order, critical)), {self.reader})
		with self.assertRaisesRegex(frappe.ValidationError, "is critical"):
			as_user(self.reader, mute, rule=critical.name)

	def test_a_system_manager_may_mute_any_rule_and_is_told_what_is_wrong(self):
		manager = test_user_email(MANAGER)
		self.addCleanup(drop_mutes, manager)
		to_reader = [{"audience_type": "User", "user": self.reader}]
		quiet = self.enterContext(make_rule(to_reader, commit=True))
		critical = self.enterContext(make_rule(to_reader, commit=True, critical=1))
		self.assertEqual(as_user(manager, mute, rule=quiet.name, minutes=60)["rule"], quiet.name)
		for name, text in ((critical.name, "is critical"), ("rt-test-no such rule", "does not exist")):
			with self.subTest(name), self.assertRaisesRegex(frappe.ValidationError, text):
				as_user(manager, mute, rule=name)

	def test_a_muted_channel_member_gets_no_post(self):
		members = [{"member_type": "User", "user": user} for user in (self.reader, self.other)]
		channel = self.enterContext(make_channel(members, commit=True))
		as_user(self.reader, mute, channel=channel.name, minutes=24 * 60)
		with RealtimeListener() as listener:
			result = publish(channel.name, "deploy at five")
			frappe.db.commit()
			received = listener.received(channel=channel.name, count=1)
		self.assertEqual((result["sent"], result["muted"]), (1, 1))
		self.assertEqual([sent.user for sent in received], [self.other])

	def test_a_rule_made_again_under_a_deleted_rules_name_reaches_who_muted_the_first(self):
		rule = self.rule_to_both()
		as_user(self.reader, mute, rule=rule.name)
		frappe.delete_doc("Realtime Rule", rule.name)
		frappe.db.commit()
		self.assertEqual(frappe.get_all("Realtime Mute", filters={"rule": rule.name}), [])
		again = self.rule_to_both(rule_name=rule.name)
		order = self.enterContext(make_order(commit=True))
		self.assertEqual(set(self.save(order, again)), {self.reader, self.other})
		verdicts = {r["user"]: r["verdict"] for r in preview(again.name, order.name)["recipients"]}
		self.assertEqual(verdicts, {self.reader: "deliver", self.other: "deliver"})

	def test_a_rule_deletion_that_rolls_back_keeps_its_mutes(self):
		rule = self.rule_to_both()
		order = self.enterContext(make_order(commit=True))
		as_user(self.reader, mute, rule=rule.name)
		frappe.delete_doc("Realtime Rule", rule.name)
		frappe.db.rollback()
		new_request()
		self.assertEqual(set(self.save(order, rule)), {self.other})
		self.assertEqual(
			frappe.get_all("Realtime Mute", filters={"rule": rule.name}, pluck="user"), [self.reader]
		)

	def test_a_channel_made_again_under_a_deleted_channels_name_reaches_who_muted_the_first(self):
		members = [{"member_type": "User", "user": user} for user in (self.reader, self.other)]
		channel = self.enterContext(make_channel(members, commit=True))
		as_user(self.reader, mute, channel=channel.name)
		frappe.delete_doc("Realtime Channel", channel.name)
		frappe.db.commit()
		again = self.enterContext(make_channel(members, commit=True, channel_name=channel.name))
		with RealtimeListener() as listener:
			result = publish(again.name, "deploy at five")
			frappe.db.commit()
			received = listener.received(channel=again.name, count=2)
		self.assertEqual((result["sent"], result["muted"]), (2, 0))
		self.assertEqual({sent.user for sent in received}, {self.reader, self.other})

	def test_the_clean_up_removes_the_redis_entries_of_the_mutes_it_deletes(self):
		# a rule deleted without its mutes (before they went with it, or straight from the
		# database): the clean-up deletes the mute, and a rule made again mutes nobody
		rule = self.rule_to_both()
		as_user(self.reader, mute, rule=rule.name)
		frappe.db.delete("Realtime Rule Audience", {"parent": rule.name})
		frappe.db.delete("Realtime Rule", rule.name)
		frappe.db.commit()
		site_mutes.clean_up()
		self.assertEqual(frappe.get_all("Realtime Mute", filters={"rule": rule.name}), [])
		again = self.rule_to_both(rule_name=rule.name)
		order = self.enterContext(make_order(commit=True))
		new_request()
		self.assertEqual(set(self.save(order, again)), {self.reader, self.other})

	def test_the_clean_up_leaves_mutes_in_force_and_a_mute_made_again_alone(self):
		rule = self.rule_to_both()
		as_user(self.reader, mute, rule=rule.name, minutes=60)
		as_user(self.other, mute, rule=rule.name)
		key = site_mutes._hash(f"rule:{rule.name}")
		# the reader's mute ended, in the database; in Redis a mute made again since holds its end
		past = add_to_date(now_datetime(), minutes=-1)
		frappe.db.set_value("Realtime Mute", {"user": self.reader, "rule": rule.name}, "until", past)
		frappe.db.commit()
		made_again = entries(key).get(self.reader.encode())
		site_mutes.clean_up()
		self.assertEqual(
			frappe.get_all("Realtime Mute", filters={"rule": rule.name}, pluck="user"), [self.other]
		)
		self.assertEqual(entries(key).get(self.reader.encode()), made_again)
		self.assertEqual(
			site_mutes.SiteMutes().muted(f"rule:{rule.name}", [self.reader, self.other]),
			{self.reader, self.other},
		)
		# and without a mute made again, the ended row's entry becomes a tombstone
		frappe.cache.pipeline().hset(key, self.reader, site_mutes.epoch(past)).execute()
		as_user(self.reader, mute, rule=rule.name, minutes=60)
		frappe.db.set_value("Realtime Mute", {"user": self.reader, "rule": rule.name}, "until", past)
		frappe.db.commit()
		frappe.cache.pipeline().hset(key, self.reader, site_mutes.epoch(past)).execute()
		site_mutes.clean_up()
		self.assertLess(float(entries(key).get(self.reader.encode())), 0)
		self.assertEqual(float(entries(key).get(self.other.encode())), 0)
		# and so does a missing one (Redis lost it), which a reload under way must not fill back
		as_user(self.reader, mute, rule=rule.name, minutes=60)
		frappe.db.set_value("Realtime Mute", {"user": self.reader, "rule": rule.name}, "until", past)
		frappe.db.commit()
		frappe.cache.pipeline().hdel(key, self.reader).execute()
		site_mutes.clean_up()
		self.assertLess(float(entries(key).get(self.reader.encode())), 0)

	def test_the_clean_up_sweeps_old_tombstones_and_ended_entries(self):
		key = site_mutes._hash("rule:rt-test-swept")
		now = time.time()
		old = now - site_mutes.TOMBSTONE_SECONDS - 60
		written = {"old-tomb": -old, "old-end": old, "new-tomb": -now, "for-ever": 0, "later": now + 3600}
		frappe.cache.pipeline().hset(key, mapping=written).execute()
		self.addCleanup(frappe.cache.delete, key)
		site_mutes.clean_up()
		self.assertEqual(sorted(entries(key)), [b"for-ever", b"later", b"new-tomb"])

	def test_mutes_survive_redis_losing_them(self):
		rule = self.rule_to_both()
		order = self.enterContext(make_order(commit=True))
		as_user(self.reader, mute, rule=rule.name)
		lose_mutes_in_redis()
		self.assertEqual(set(self.save(order, rule)), {self.other})

	def test_a_reload_that_read_a_mute_before_its_unmute_does_not_bring_it_back(self):
		# Redis lost the hashes; a reload reads the rows (the mute is among them); the user
		# unmutes (committed, Redis written); only then does the reload fill the hashes.
		rule = self.rule_to_both()
		order = self.enterContext(make_order(commit=True))
		as_user(self.reader, mute, rule=rule.name)
		lose_mutes_in_redis()
		token = site_mutes._begin_reload()
		read_before_the_unmute = site_mutes._rows_in_database()
		self.assertIn(self.reader, [row.user for row in read_before_the_unmute if row.rule == rule.name])
		as_user(self.reader, unmute, rule=rule.name)
		self.assertTrue(site_mutes._fill(token, read_before_the_unmute))
		new_request()
		self.assertEqual(set(self.save(order, rule)), {self.reader, self.other})

	def test_a_reload_reads_the_mutes_committed_since_its_transaction_began(self):
		# its transaction's snapshot would miss the mute committed meanwhile by another connection
		rule = self.rule_to_both()
		frappe.db.commit()
		frappe.db.sql("select name from `tabRealtime Mute` limit 1")  # the snapshot is taken here
		another = second_connection()
		try:
			another.sql(
				"insert into `tabRealtime Mute` (name, user, rule, creation, modified, owner, modified_by)"
				" values (%(name)s, %(user)s, %(rule)s, now(), now(), %(user)s, %(user)s)",
				{"name": frappe.generate_hash(length=10), "user": self.reader, "rule": rule.name},
			)
			another.commit()
			self.assertEqual(frappe.get_all("Realtime Mute", filters={"rule": rule.name}), [])
			rows = site_mutes._rows_in_database()
			self.assertIn(self.reader, [row.user for row in rows if row.rule == rule.name])
		finally:
			frappe.db.rollback()
			another.sql("delete from `tabRealtime Mute` where rule = %s", rule.name)
			another.commit()
			another.close()

	def test_a_reload_during_which_redis_lost_its_data_again_is_dropped(self):
		# as above, but Redis loses the unmute's entry before the reload fills the hashes: the
		# fill is dropped and the next evaluation reads the database again
		rule = self.rule_to_both()
		order = self.enterContext(make_order(commit=True))
		as_user(self.reader, mute, rule=rule.name)
		lose_mutes_in_redis()
		token = site_mutes._begin_reload()
		read_before_the_unmute = site_mutes._rows_in_database()
		as_user(self.reader, unmute, rule=rule.name)
		lose_mutes_in_redis()
		self.assertFalse(site_mutes._fill(token, read_before_the_unmute))
		self.assertEqual(entries(site_mutes._hash(f"rule:{rule.name}")), {})
		self.assertEqual(set(self.save(order, rule)), {self.reader, self.other})

	def test_my_notifications_lists_recent_senders_and_mutes(self):
		rule = self.rule_to_both(delivered=False, subject="Order {{ doc.qty }}")
		order = self.enterContext(make_order(commit=True, qty=1))
		self.save(order, rule)
		self.save(order, rule)
		as_user(self.reader, mute, rule=rule.name, minutes=60)
		listing = as_user(self.reader, my_notifications)
		[recent] = [r for r in listing["recent"] if r["rule"] == rule.name]
		self.assertEqual((recent["count"], recent["last_subject"], recent["critical"]), (2, "Order 3", False))
		self.assertEqual([m["rule"] for m in listing["mutes"]], [rule.name])
		self.assertEqual(listing["durations"], {"1 hour": 60, "1 day": 1440, "until unmuted": None})
		self.assertNotIn(rule.name, [m["rule"] for m in as_user(self.other, my_notifications)["mutes"]])
		self.assertEqual(frappe.db.get_value(ORDER, order.name, "qty"), 3)
