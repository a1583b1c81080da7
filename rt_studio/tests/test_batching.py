"""Batching instead of dropping: what exceeds a rule's rate limit arrives as one summary.

Saves are committed by another process (as a web worker would), the summary is delivered by
the scheduled job in a real RQ worker, and what was published is read from Redis. The tests of
claims call `deliver_due` in this process, to make a run fail and to move its claim timeout.
"""

import json
import time
from unittest.mock import patch

import frappe
from frappe.utils.background_jobs import get_job

from rt_studio.api import preview
from rt_studio.delivery import batches, summaries, trace
from rt_studio.delivery.batches import RedisBatches
from rt_studio.delivery.outbox import publish
from rt_studio.delivery.summaries import deliver_due, deliver_when_due
from rt_studio.tests.factories import (
	ORDER,
	RULE_PREFIX,
	TESTER,
	RealtimeListener,
	RTTestCase,
	SiteProcess,
	clear_rate_keys,
	make_order,
	make_rule,
	make_users,
	run_background_jobs,
)

#: The rate-limit window of the test rule: short, so the test waits for its end, and long
#: enough for 30 saves on a loaded machine (they take one to three seconds).
WINDOW = 8


def run_scheduled_delivery() -> str:
	"""Enqueue the batch delivery as Frappe's scheduler does each minute, and run the worker."""
	job = frappe.get_doc("Scheduled Job Type", {"method": "rt_studio.delivery.summaries.deliver_due"})
	self_enqueued = job.enqueue(force=True)
	frappe.db.commit()
	return f"enqueued: {self_enqueued}\n" + run_background_jobs("short,default,long")


def cancel_timers() -> None:
	"""Drop this site's queued summary timers and their mark: a test that checks what the per-minute
	run does alone, or that ended before its batches came due, leaves none for a later test."""
	from frappe.utils.background_jobs import get_queue

	for name in ("short", "default", "long"):
		queue = get_queue(name)
		for job_id in queue.get_job_ids():
			if job_id.startswith(f"{frappe.local.site}::{batches.TIMER_PREFIX}"):
				queue.remove(job_id)
	frappe.cache.delete(frappe.cache.make_key(batches.TIMER_KEY))


def hold_timers() -> None:
	"""Arm no timer until cancel_timers (a mark "armed for the epoch" is earlier than any batch):
	for a test of what the per-minute run does alone, with the bench's own worker running."""
	frappe.cache.set(frappe.cache.make_key(batches.TIMER_KEY), 0, ex=300)


def due_time(rule: str, user: str) -> float | None:
	"""When the user's batch of `rule` is due (None when none is collecting)."""
	return frappe.cache.zscore(RedisBatches().due_key, batches._member(rule, user))


class WorkerDied(Exception):
	"""Stands for whatever stops a delivery run between claiming and committing."""


def publish_then_die(outcome) -> None:
	publish(outcome)
	raise WorkerDied("the run stopped after queueing its summaries, before its commit")


def drop_due_batches() -> None:
	"""Delete the suite's batches, due, collecting or claimed: no summary of a test is left for a
	later run. Batches of the site's own rules (a lived-in site has some) are left as they are."""
	store = RedisBatches()

	def ours(member: bytes | None) -> bool:
		return bool(member) and json.loads(member)[0].startswith(RULE_PREFIX)

	pipe = frappe.cache.pipeline()  # plain Redis commands (RedisWrapper's pickle its values)
	pipe.zrange(store.due_key, 0, -1)
	pipe.zrange(store.claimed_key, 0, -1)
	due, claims = pipe.execute()
	pipe = frappe.cache.pipeline()
	for claim in claims:
		pipe.hget(store.prefix + b"claim:" + claim, "member")
	owners = pipe.execute() if claims else []
	pipe = frappe.cache.pipeline()
	for member in filter(ours, due):
		pipe.zrem(store.due_key, member)
		pipe.delete(store.prefix + member, store.prefix + member + b":docs")
	pipe.execute()
	store.release([claim.decode() for claim, owner in zip(claims, owners, strict=True) if ours(owner)])


def take_ours(store: RedisBatches, rule: str) -> list:
	"""`store.take_due` keeping only the claims of `rule`'s batches for release: a batch of the
	site's own rules that came due meanwhile stays claimed, and a run after CLAIM_SECONDS
	delivers it (late, never lost)."""
	before = len(store.claims)
	taken = store.take_due(10**6)
	claims = store.claims[before:]
	store.claims[before:] = [c for c, b in zip(claims, taken, strict=True) if b.rule == rule]
	return [b for b in taken if b.rule == rule]


def batch_left(rule: str, user: str) -> list[str]:
	"""What Redis still holds of the user's batches of `rule`: due or collecting, claimed."""
	store = RedisBatches()
	member = batches._member(rule, user)
	key = store.prefix + member.encode()
	pipe = frappe.cache.pipeline()
	pipe.zscore(store.due_key, member)
	pipe.exists(key, key + b":docs")
	pipe.zrange(store.claimed_key, 0, -1)
	due, keys, claims = pipe.execute()
	pipe = frappe.cache.pipeline()
	for claim in claims:
		pipe.hget(store.prefix + b"claim:" + claim, "member")
	ours = [
		claim.decode()
		for claim, owner in zip(claims, pipe.execute(), strict=True)
		if owner == member.encode()
	]
	return [*(["in the due index"] if due is not None else []), *([f"{keys} keys"] if keys else []), *ours]


class TestBatching(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def limited_rule(self, **fields):
		rule = self.enterContext(
			make_rule(
				[{"audience_type": "User", "user": self.reader}],
				commit=True,
				rate_limit_count=3,
				rate_limit_seconds=WINDOW,
				**fields,
			)
		)
		clear_rate_keys(rule.name)
		self.addCleanup(drop_due_batches)
		self.addCleanup(cancel_timers)
		return rule

	def five_saves(self, rule, listener: RealtimeListener) -> None:
		"""Five saves of an order committed by another process: three messages, then a batch of two."""
		order = self.enterContext(make_order(commit=True))
		with SiteProcess() as process:
			process.ask("save", doctype=ORDER, name=order.name, times=5)
		self.assertEqual(len(listener.received(rule=rule.name, count=3)), 3)

	def due_batch(self, rule, docnames: list[str]) -> None:
		"""The reader's batch of `rule`, one message per document name, due now (committed, as
		the saves that collect it commit)."""
		store = RedisBatches()
		for name in docnames:
			store.collect(rule.name, [self.reader], name, window=0)
		frappe.db.commit()

	def test_thirty_saves_against_a_limit_of_three_give_three_messages_and_a_summary(self):
		rule = self.limited_rule(subject="Order {{ doc.qty }}")
		order = self.enterContext(make_order(commit=True, qty=0))
		with SiteProcess() as process, RealtimeListener() as listener:
			started = time.monotonic()
			self.assertEqual(process.ask("save", doctype=ORDER, name=order.name, times=30), {"saved": 30})
			saving = time.monotonic() - started
			singles = listener.received(rule=rule.name, count=3, quiet=0.5)
			self.assertEqual([s.message["subject"] for s in singles], ["Order 1", "Order 2", "Order 3"])
			# preview and trace say batched while the batch collects
			verdicts = [r["verdict"] for r in preview(rule.name, order.name)["recipients"]]
			self.assertEqual(verdicts, ["batched"])
			reasons = [entry["reason"] for entry in trace.read(rule.name, limit=27)]
			self.assertEqual(reasons, ["0 of 1 recipients (1 batched)"] * 27)
			time.sleep(max(0, WINDOW - (time.monotonic() - started)) + 0.5)
			log = run_scheduled_delivery()
			[summary] = listener.received(rule=rule.name, count=1)
		self.assertLess(saving, WINDOW, "the 30 saves must fit in the window for this test to mean anything")
		message = summary.message
		self.assertEqual(summary.user, self.reader)
		self.assertEqual(message["batch_count"], 27, log)
		self.assertEqual(message["subject"], f"27 more {ORDER} changes")
		self.assertEqual(message["docnames"], [order.name])
		self.assertEqual(message["seq"], singles[-1].message["seq"] + 1)
		self.assertEqual((message["rule"], message["doctype"], message["docname"]), (rule.name, ORDER, None))
		[entry] = trace.read(rule.name, limit=1)
		self.assertEqual(entry["reason"], "summary of batched messages: 1 of 1 recipients")

	def test_nothing_is_due_before_the_window_ends_and_a_disabled_rule_sends_no_summary(self):
		rule = self.limited_rule()
		hold_timers()  # the per-minute run alone (a timer would deliver at the window's end)
		with RealtimeListener() as listener:
			self.five_saves(rule, listener)
			self.assertEqual(RedisBatches().collecting(rule.name, [self.reader]), {self.reader})
			run_scheduled_delivery()
			self.assertEqual(listener.received(rule=rule.name), [])  # still collecting
			frappe.db.set_value("Realtime Rule", rule.name, "enabled", 0)
			rule.clear_cache()
			frappe.db.commit()
			time.sleep(WINDOW + 0.5)
			run_scheduled_delivery()
			self.assertEqual(listener.received(rule=rule.name), [])
		self.assertEqual(RedisBatches().collecting(rule.name, [self.reader]), set())
		[entry] = trace.read(rule.name, limit=1)
		self.assertIn("not sent: the rule was deleted or disabled", entry["reason"])

	def test_a_summary_goes_out_when_its_window_ends_through_the_timer_job_once(self):
		rule = self.limited_rule()
		with RealtimeListener() as listener:
			self.five_saves(rule, listener)
			due = due_time(rule.name, self.reader)
			timer = f"{batches.TIMER_PREFIX}{int(due * 1000)}"
			# the timer job waits in the worker until the window ends, then delivers (the bench's own
			# worker may have run it and, busy, queued it behind another job on default)
			log = run_background_jobs()
			received = listener.received(rule=rule.name, count=1)
			late = time.time() - due
			# (the bench's own worker may have run the timer: the job runner waits for it then)
			self.assertEqual(len(received), 1, f"no summary from the timer job {timer}; job runner: {log}")
			[summary] = received
			run_scheduled_delivery()  # the per-minute run comes too: it finds nothing left
			self.assertEqual(listener.received(rule=rule.name), [])
		self.assertEqual(summary.message["batch_count"], 2)
		self.assertEqual(batch_left(rule.name, self.reader), [])
		print(f"summary published {late:.2f} s after its window ended (timer job)")

	def test_the_timer_and_the_per_minute_run_together_send_one_summary(self):
		rule = self.limited_rule()
		self.due_batch(rule, ["A", "B"])
		due = due_time(rule.name, self.reader)
		with RealtimeListener() as listener:
			deliver_when_due(due)  # the timer's work, in this process
			deliver_due()  # and the per-minute run after it
			with patch.object(batches, "CLAIM_SECONDS", 0):
				deliver_due()  # even one that takes over every claim
			[summary] = listener.received(rule=rule.name, count=1)
		self.assertEqual((summary.message["batch_count"], summary.message["docnames"]), (2, ["A", "B"]))
		self.assertEqual(batch_left(rule.name, self.reader), [])

	def pending_timer(self, *waiting: str) -> tuple:
		"""A batch of a new rule due in WINDOW seconds whose timer runs in this process only, and
		the one queue (Redis key) its worker listens to, holding the job ids `waiting`."""
		rule = self.limited_rule()
		hold_timers()
		RedisBatches().collect(rule.name, [self.reader], "B", window=WINDOW)
		frappe.db.commit()
		busy = f"rt-studio-test-busy:{frappe.generate_hash(length=8)}"
		conn = frappe.utils.background_jobs.get_redis_conn()
		conn.rpush(busy, *waiting)
		self.addCleanup(conn.delete, busy)
		return rule, due_time(rule.name, self.reader), busy

	def test_a_pending_timer_steps_aside_at_once_for_a_job_that_waits_and_delivers_later(self):
		rule, due, busy = self.pending_timer("another-apps-job")
		with (
			patch.object(summaries, "_worker_queues", return_value=[("default", busy)], create=True),
			RealtimeListener() as listener,
		):
			started = time.monotonic()
			deliver_when_due(due)
			held = time.monotonic() - started
			self.assertEqual(listener.received(rule=rule.name), [], "not due yet")
		self.assertLess(held, 1, "a timer does not keep its worker from a job that waits")
		hop = get_job(f"{batches.TIMER_PREFIX}{int(due * 1000)}:1")
		self.assertEqual(
			hop and hop.kwargs["kwargs"], {"due": due, "hop": 1}, "the timer queued itself again"
		)
		with RealtimeListener() as listener:
			deliver_when_due(due)  # its next turn, with nothing waiting: waits for the window's end
			[summary] = listener.received(rule=rule.name, count=1)
		self.assertGreaterEqual(time.time(), due)
		self.assertEqual(summary.message["batch_count"], 1)

	def test_a_pending_timer_does_not_step_aside_for_other_timers(self):
		# two workers, each holding a timer, with a third timer waiting: stepping aside for it made
		# the timers trade places, a job each time, until they were due (seen on a two-worker bench);
		# a timer due later, or at the same time, does not go first
		later = int(time.time() * 1000) + 60_000
		rule, due, busy = self.pending_timer(
			f"other.localhost::{batches.TIMER_PREFIX}{later}:3",
			f"{frappe.local.site}::{batches.TIMER_PREFIX}{later}",
		)
		self.assertFalse(batches.goes_first(f"x::{batches.TIMER_PREFIX}{int(due * 1000)}:2", due))
		with (
			patch.object(summaries, "_worker_queues", return_value=[("default", busy)], create=True),
			patch.object(summaries, "TIMER_SLICE", WINDOW + 5),  # one wait, no slices
			RealtimeListener() as listener,
		):
			deliver_when_due(due)
			[summary] = listener.received(rule=rule.name, count=1)
		self.assertGreaterEqual(time.time(), due, "it waited for its due time")
		self.assertEqual(summary.message["batch_count"], 1)
		self.assertIsNone(
			get_job(f"{batches.TIMER_PREFIX}{int(due * 1000)}:1"), "it did not queue itself again"
		)

	def test_a_timer_steps_aside_behind_the_first_job_that_is_not_a_timer_or_is_due_earlier(self):
		conn = frappe.utils.background_jobs.get_redis_conn()
		key = f"rt-studio-test-queue:{frappe.generate_hash(length=8)}"
		self.addCleanup(conn.delete, key)
		prefix, mine = batches.TIMER_PREFIX, 5_000

		def step_aside(*waiting: str) -> list[str]:
			conn.delete(key)
			conn.rpush(key, *waiting, "me")
			conn.eval(batches.STEP_ASIDE, 1, key, "me", prefix, batches.TIMER_PEEK, mine)
			return [item.decode() for item in conn.lrange(key, 0, -1)]

		later, same, earlier = f"a::{prefix}9000", f"b::{prefix}5000:3", f"c::{prefix}4000:1"
		self.assertEqual(step_aside(later, "a::app-job", same), [later, "a::app-job", "me", same])
		self.assertEqual(
			step_aside(later, same, earlier, "a::app-job"), [later, same, earlier, "me", "a::app-job"]
		)
		self.assertEqual(step_aside(later, same), [later, same, "me"], "only timers due later: the back")
		# and the waiting timer's own test agrees with the script
		self.assertEqual(
			[batches.goes_first(job, mine / 1000) for job in (later, same, earlier, "a::app-job")],
			[False, False, True, True],
		)

	def test_opening_a_batch_arms_one_timer_for_its_window_end(self):
		rule = self.limited_rule()
		cancel_timers()
		store = RedisBatches()
		store.collect(rule.name, [self.reader], "A", window=30)
		frappe.db.commit()
		store.collect(rule.name, [self.reader], "B", window=30)  # joins the open batch
		frappe.db.commit()
		due = due_time(rule.name, self.reader)
		from frappe.utils.background_jobs import get_queue

		timers = [
			j
			for j in get_queue("short").get_job_ids()
			if batches.TIMER_PREFIX in j and frappe.local.site in j
		]
		self.assertLessEqual(len(timers), 1, "one timer however many messages join the batch")
		self.assertEqual(float(frappe.cache.get(frappe.cache.make_key(batches.TIMER_KEY))), due)

	def test_a_due_batch_is_summarised_once_and_leaves_nothing_in_redis(self):
		rule = self.limited_rule()
		self.due_batch(rule, ["A", "A", "B"])
		with RealtimeListener() as listener:
			deliver_due()
			self.assertEqual(batch_left(rule.name, self.reader), [])
			with patch.object(batches, "CLAIM_SECONDS", 0):
				deliver_due()  # a later run, even one that takes over every claim, finds nothing
			[summary] = listener.received(rule=rule.name, count=1)
		self.assertEqual(summary.user, self.reader)
		self.assertEqual((summary.message["batch_count"], summary.message["docnames"]), (3, ["A", "B"]))

	def test_of_two_runs_at_once_one_claims_a_batch_and_a_new_message_opens_a_new_one(self):
		rule = self.limited_rule()
		self.due_batch(rule, ["A"])
		first, second = RedisBatches(), RedisBatches()
		taken = [(b.user, b.count, b.docnames) for b in take_ours(first, rule.name)]
		self.assertEqual(taken, [(self.reader, 1, ["A"])])
		self.assertEqual(take_ours(second, rule.name), [])
		self.assertEqual(len(batch_left(rule.name, self.reader)), 1, "claimed until its summary is committed")
		self.due_batch(rule, ["B"])
		taken = [(b.user, b.count, b.docnames) for b in take_ours(second, rule.name)]
		self.assertEqual(taken, [(self.reader, 1, ["B"])])
		first.release_on_commit()
		second.release_on_commit()
		frappe.db.commit()
		self.assertEqual(batch_left(rule.name, self.reader), [])

	def test_a_summary_whose_run_died_before_its_commit_is_delivered_once_by_a_run_after_the_claim_timeout(
		self,
	):
		rule = self.limited_rule()
		self.due_batch(rule, ["A", "B"])
		with RealtimeListener() as listener:
			with patch("rt_studio.delivery.outbox.publish", publish_then_die), self.assertRaises(WorkerDied):
				deliver_due()
			frappe.db.rollback()  # as Frappe's execute_job does when a job raises
			self.assertEqual(listener.received(rule=rule.name), [])
			self.assertEqual(RedisBatches().collecting(rule.name, [self.reader]), set())
			self.assertEqual(len(batch_left(rule.name, self.reader)), 1, "the failed run's claim is kept")
			deliver_due()  # within the claim timeout the run that claimed it may still be going
			self.assertEqual(listener.received(rule=rule.name), [])
			with patch.object(batches, "CLAIM_SECONDS", 0):  # the claim has timed out
				deliver_due()
				deliver_due()
			[summary] = listener.received(rule=rule.name, count=1)
		self.assertEqual(summary.user, self.reader)
		self.assertEqual((summary.message["batch_count"], summary.message["docnames"]), (2, ["A", "B"]))
		self.assertEqual(batch_left(rule.name, self.reader), [])
