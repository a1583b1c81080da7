"""RT Studio on a live Frappe v15 site: timings printed as numbers and ratios (never asserted).

Run it with the bench's Python from the bench's `sites` folder:

    cd /opt/rtbench/sites && ../env/bin/python /work/main/benchmarks/site.py --site rt.localhost

(`--ops N` changes the workload size, default 300; `--notification-ops N` caps it for (d), whose
operations are ~100x slower, default 60; `--only-large` runs part 2 alone; `--worker` adds a run
through the bench's RQ worker to part 2.) It needs MariaDB and redis_cache/redis_queue up; the
web and socket.io servers are not used. It stops by itself in a few minutes and measures:

1. the cost of a ToDo insert and of a ToDo save (mean us per operation over --ops of each),
   run as an ordinary System User (owner and assignee of its ToDos), for
   (a) no rules and no Notifications,
   (b) 50 enabled Realtime Rules on 50 other DocTypes,
   (c) (b) plus 10 "New" and 10 "Save" rules on ToDo that match and deliver (condition,
       subject and message templates, audience Owner, display Alert, exclude_actor 0),
   (d) no Realtime Rule at all, 10 "New" and 10 "Save" Frappe Notifications on ToDo with the
       same condition and templates (channel System Notification, recipient: owner);
   each absolute and as a ratio of (a). Deliveries are counted per operation (RT: the
   `rt_studio` entries in RT Studio's after-commit outbox; Notification: the
   make_notification_logs jobs enqueued, and a sample of those jobs run to count the
   Notification Logs they create);
2. one rule on ToDo New whose audience is a role of 1,000 and of 10,000 users, cold and warm:
   the save, the delivery job and commit-to-last-delivery (see benchmarks/large_audiences.py);
3. the bell display for 1,000 recipients: Frappe's Notification Log inserted per document (what
   RT Studio did before rt_studio/delivery/bell.py) against the bulk write, time and queries each
   (`--only-bell` runs it alone). Both in one transaction that is rolled back; the realtime events
   both send after a commit are not in the numbers;
4. the inbox write for 1,000 recipients (rt_studio/delivery/inbox.py `keep`: what a delivery
   job's chunk of 1,000 adds before its commit), time and queries, against the budget of the job
   it runs in: RQ's timeout of the "short" queue that delivery jobs use (`--only-inbox` runs it
   alone; rolled back).

Part 1 happens in one database transaction that is rolled back at the end (a commit during it
raises instead of committing). Jobs its workload enqueues go to a scratch RQ queue that no
worker listens to and that is deleted at the end; Redis caches it filled with uncommitted data
(Notification's per-DocType cache, ToDo's meta and permissions, the benchmark user's caches,
RT Studio's rules token) are cleared or restored afterwards. Part 2 must commit (a job only
sees committed data); it deletes everything it made when it ends.
"""

import argparse
import os
import pickle
import statistics
import sys
import time
from contextlib import contextmanager

import frappe
import large_audiences

from rt_studio.tests.crowd import Member, forget_cached, insert_crowd

RT_EVENT = "rt_studio"
SCRATCH_QUEUE = "rt_bench_scratch"
OWNER = "rt.bench.owner@example.com"
RULE_PREFIX = "rt-bench-"
NOTIFICATION_PREFIX = "RT Bench "
CONDITION = "doc.status == 'Open' and doc.priority in ('Medium', 'High')"
SUBJECT = "{{ doc.description }} ({{ doc.priority }})"
MESSAGE = "<b>{{ doc.name }}</b>: {{ doc.description }}, due {{ doc.date or 'never' }}, by {{ doc.owner }}"
WARMUP = 30
NOTIFICATION_LOG_SAMPLE = 20


class CommitRefused(RuntimeError):
	pass


# --------------------------------------------------------------------------- counters


class Counters:
	"""DB queries and Redis commands, counted only while `on` is set."""

	def __init__(self):
		self.on = False
		self.queries = 0
		self.redis = 0

	def reset(self):
		self.queries = self.redis = 0

	@contextmanager
	def counting(self):
		self.reset()
		self.on = True
		try:
			yield self
		finally:
			self.on = False


COUNTERS = Counters()


def install_patches(state: dict) -> None:
	"""Count queries and Redis commands, refuse commits, send jobs to the scratch queue."""
	import redis.client

	db = frappe.db
	original_sql = db.sql

	def counting_sql(*args, **kwargs):
		if COUNTERS.on:
			COUNTERS.queries += 1
		return original_sql(*args, **kwargs)

	db.sql = counting_sql

	def refuse_commit(*args, **kwargs):
		raise CommitRefused("the benchmark runs in one transaction and must not commit")

	state["original_commit"] = db.commit
	db.commit = refuse_commit

	for cls in (redis.client.Redis, redis.client.Pipeline):
		original = cls.__dict__["execute_command"]
		state.setdefault("redis_originals", []).append((cls, original))

		def counting_command(self, *args, _original=original, **kwargs):
			if COUNTERS.on:
				COUNTERS.redis += 1
			return _original(self, *args, **kwargs)

		cls.execute_command = counting_command

	# Jobs: Notification's make_notification_logs really goes through RQ (into a queue no
	# worker reads), so its cost is measured as on a live site; anything else is recorded
	# and dropped.
	import frappe.utils.background_jobs as background_jobs

	frappe.local.conf.setdefault("workers", {})[SCRATCH_QUEUE] = {"timeout": 300}
	original_enqueue = background_jobs.enqueue
	state["original_enqueue"] = frappe.enqueue
	state["jobs"] = []
	state["other_jobs"] = []

	def scratch_enqueue(method, *args, **kwargs):
		name = method if isinstance(method, str) else f"{method.__module__}.{method.__qualname__}"
		if name.endswith("make_notification_logs"):
			kwargs["queue"] = SCRATCH_QUEUE
			kwargs.pop("now", None)
			state["jobs"].append({"doc": kwargs.get("doc"), "users": kwargs.get("users")})
			return original_enqueue(method, *args, **kwargs)
		state["other_jobs"].append(name)
		return None

	frappe.enqueue = scratch_enqueue


def remove_patches(state: dict) -> None:
	frappe.db.__dict__.pop("sql", None)
	if "original_commit" in state:
		frappe.db.commit = state["original_commit"]
		frappe.db.__dict__.pop("commit", None)
	for cls, original in state.get("redis_originals", []):
		cls.execute_command = original
	if "original_enqueue" in state:
		frappe.enqueue = state["original_enqueue"]


# --------------------------------------------------------------------------- helpers


def as_admin():
	frappe.set_user("Administrator")


def as_owner():
	frappe.set_user(OWNER)


def now_str():
	return frappe.utils.now()


def make_rule(name: str, doctype: str, event: str, audience: list[dict], **extra) -> None:
	doc = {
		"doctype": "Realtime Rule",
		"rule_name": name,
		"enabled": 1,
		"document_type": doctype,
		"event": event,
		"condition": extra.pop("condition", None),
		"audience": audience,
		"exclude_actor": 0,
		"subject": SUBJECT if doctype == "ToDo" else "{{ doc.name }}",
		"message": MESSAGE if doctype == "ToDo" else "{{ doc.name }} changed",
		"display": "Alert",
		"indicator": "blue",
		**extra,
	}
	frappe.get_doc(doc).insert()


def make_notification(name: str, event: str) -> None:
	frappe.get_doc(
		{
			"doctype": "Notification",
			"name": name,
			"subject": SUBJECT,
			"document_type": "ToDo",
			"event": event,
			"channel": "System Notification",
			"enabled": 1,
			"condition": CONDITION,
			"message": MESSAGE,
			"message_type": "HTML",
			"recipients": [{"receiver_by_document_field": "owner"}],
		}
	).insert()


def set_rules_enabled(names, enabled: int) -> None:
	from rt_studio import rule_cache as cache

	if names:
		frappe.db.sql(
			"update `tabRealtime Rule` set enabled=%s, modified=%s where name in %s",
			(enabled, now_str(), tuple(names)),
		)
	cache.invalidate()


def set_notifications_enabled(names, enabled: int) -> None:
	if names:
		frappe.db.sql(
			"update `tabNotification` set enabled=%s, modified=%s where name in %s",
			(enabled, now_str(), tuple(names)),
		)
	frappe.cache.hdel("notifications", "ToDo")


def per_request_reset() -> None:
	"""What a new request would not have: the local copies of the two systems' Redis reads.

	Each request starts with an empty `frappe.local.cache`, so RT Studio pays one GET of its
	rules token and Notification one HGET of its per-DocType list. The realtime queue is
	emptied because it lives for one request (its duplicate check is a linear scan).
	"""
	from rt_studio.rule_cache import STATE_KEY

	local_cache = frappe.local.cache
	local_cache.pop(frappe.cache.make_key(STATE_KEY), None)
	local_cache.pop(frappe.cache.make_key("notifications"), None)
	for name in ("_realtime_log", "rt_studio_outbox"):
		log = getattr(frappe.local, name, None)
		if log:
			log.clear()


def rt_deliveries() -> int:
	"""RT messages waiting for the commit (RT Studio's outbox; Frappe's queue for older versions)."""
	log = (getattr(frappe.local, "rt_studio_outbox", None) or []) + (
		getattr(frappe.local, "_realtime_log", None) or []
	)
	return sum(1 for event, _message, _room in log if event == RT_EVENT)


def workload(n: int, state: dict, tag: str) -> dict:
	"""n ToDo inserts, then n saves of those ToDos; each op timed on its own."""
	as_owner()
	jobs_before = len(state["jobs"])
	docs, insert_times, save_times = [], [], []
	delivered = {"insert": 0, "save": 0}
	per_request_reset()
	for i in range(n):
		doc = frappe.get_doc(
			{
				"doctype": "ToDo",
				"description": f"rt bench {tag} {i}",
				"allocated_to": OWNER,
				"priority": "Medium",
			}
		)
		t = time.perf_counter()
		doc.insert()
		insert_times.append(time.perf_counter() - t)
		delivered["insert"] += rt_deliveries()
		per_request_reset()
		docs.append(doc)
	jobs_after_insert = len(state["jobs"])
	for i, doc in enumerate(docs):
		doc.description = f"rt bench {tag} {i} edited"
		t = time.perf_counter()
		doc.save()
		save_times.append(time.perf_counter() - t)
		delivered["save"] += rt_deliveries()
		per_request_reset()
	jobs_after_save = len(state["jobs"])
	return {
		"n": n,
		"insert_us": statistics.fmean(insert_times) * 1e6,
		"save_us": statistics.fmean(save_times) * 1e6,
		"insert_median_us": statistics.median(insert_times) * 1e6,
		"save_median_us": statistics.median(save_times) * 1e6,
		"rt_insert": delivered["insert"] / n,
		"rt_save": delivered["save"] / n,
		"jobs_insert": (jobs_after_insert - jobs_before) / n,
		"jobs_save": (jobs_after_save - jobs_after_insert) / n,
	}


def measure(label: str, n: int, state: dict, warmup: int = WARMUP) -> dict:
	workload(warmup, state, f"{label}-warmup")
	return workload(n, state, label)


# --------------------------------------------------------------------------- part 1


def part_one(args, state: dict) -> dict:
	from rt_studio.save.handler import IGNORED_DOCTYPES

	n = args.ops
	results = {}
	print(
		f"\n1. ToDo insert and save, {n} of each ((d): {min(n, args.notification_ops)}) after a warm-up,"
		f" as {OWNER} (System User, owner and assignee of its ToDos)"
	)
	results["a"] = measure("a", n, state)

	as_admin()
	others = frappe.get_all(
		"DocType",
		filters={
			"istable": 0,
			"issingle": 0,
			"is_virtual": 0,
			"name": ("not in", [*IGNORED_DOCTYPES, "ToDo"]),
		},
		pluck="name",
		order_by="name",
		limit_page_length=50,
	)
	for i, doctype in enumerate(others):
		make_rule(
			f"{RULE_PREFIX}other-{i:02d}", doctype, "New", [{"audience_type": "Owner"}], condition="doc.name"
		)
	state["rules"] += [f"{RULE_PREFIX}other-{i:02d}" for i in range(len(others))]
	results["b"] = measure("b", n, state)

	as_admin()
	todo_rules = []
	for event in ("New", "Save"):
		for i in range(10):
			name = f"{RULE_PREFIX}todo-{event.lower()}-{i}"
			make_rule(name, "ToDo", event, [{"audience_type": "Owner"}], condition=CONDITION)
			todo_rules.append(name)
	state["rules"] += todo_rules
	results["c"] = measure("c", n, state)

	as_admin()
	set_rules_enabled(state["rules"], 0)
	notifications = []
	for event in ("New", "Save"):
		for i in range(10):
			name = f"{NOTIFICATION_PREFIX}{event} {i}"
			make_notification(name, event)
			notifications.append(name)
	state["notifications"] += notifications
	jobs_before = len(state["jobs"])
	n_d = min(n, args.notification_ops)
	results["d"] = measure("d", n_d, state, warmup=min(WARMUP, 10))
	jobs_in_d = state["jobs"][jobs_before:]

	# The worker's half of Notification: run a sample of the jobs (here, inline) and count logs.
	as_admin()
	from frappe.desk.doctype.notification_log.notification_log import make_notification_logs

	logs_before = frappe.db.count("Notification Log")
	sample = jobs_in_d[:NOTIFICATION_LOG_SAMPLE]
	t = time.perf_counter()
	for job in sample:
		make_notification_logs(job["doc"], job["users"])
	worker_s = time.perf_counter() - t
	logs_made = frappe.db.count("Notification Log") - logs_before
	set_notifications_enabled(notifications, 0)
	# Nothing enabled again: (a) once more shows how much the machine drifted meanwhile.
	results["a2"] = measure("a2", n, state)

	base = results["a"]
	labels = {
		"a": "(a) no rules, no Notifications",
		"b": "(b) 50 rules on 50 other DocTypes",
		"c": "(c) (b) + 10 New & 10 Save rules on ToDo",
		"d": "(d) 10 New & 10 Save Notifications on ToDo",
		"a2": "(a') as (a), measured again after (d)",
	}
	print(
		f"   {'':44} {'ops':>4} {'insert us':>10} {'x (a)':>6} {'save us':>10} {'x (a)':>6}"
		"   delivered per insert / save"
	)
	for key, label in labels.items():
		r = results[key]
		what = f"{r['rt_insert']:.1f} / {r['rt_save']:.1f} RT messages"
		if key == "d" or r["jobs_insert"] or r["jobs_save"]:
			what += f", {r['jobs_insert']:.1f} / {r['jobs_save']:.1f} Notification jobs"
		print(
			f"   {label:44} {r['n']:4d} {r['insert_us']:10.0f} {r['insert_us'] / base['insert_us']:6.2f}"
			f" {r['save_us']:10.0f} {r['save_us'] / base['save_us']:6.2f}   {what}"
		)
	print(
		"   medians (us): "
		+ ", ".join(
			f"{k} {results[k]['insert_median_us']:.0f}/{results[k]['save_median_us']:.0f}" for k in labels
		)
	)
	rt_extra = (results["c"]["insert_us"] - results["b"]["insert_us"]) / max(results["c"]["rt_insert"], 1)
	nt_extra = (results["d"]["insert_us"] - base["insert_us"]) / max(results["d"]["jobs_insert"], 1)
	print(
		f"   marginal cost per delivery on insert: RT {rt_extra:.0f} us/message,"
		f" Notification {nt_extra:.0f} us/job (in the request; the Notification Log is made later)"
	)
	print(
		f"   Notification check: {len(jobs_in_d)} make_notification_logs jobs enqueued in (d) (scratch queue);"
		f" {len(sample)} of them run here made {logs_made} Notification Logs,"
		f" {worker_s / max(len(sample), 1) * 1e6:.0f} us each (worker-side cost)"
	)
	if state["other_jobs"]:
		names = sorted(set(state["other_jobs"]))
		print(f"   other jobs enqueued by the workload (dropped): {len(state['other_jobs'])} x {names}")
	post_commit_costs(state)
	return results


def post_commit_costs(state: dict) -> None:
	"""What a real request pays after its commit and this run never does (it rolls back)."""
	from frappe.realtime import emit_via_redis

	message = {
		"rule": "x",
		"channel": None,
		"subject": "rt bench (Medium)",
		"message": "<b>x</b>: rt bench",
		"display": "Alert",
		"indicator": "blue",
		"alert_seconds": 5,
		"doctype": "ToDo",
		"docname": "abcdef1234",
		"event": "New",
		"fields": {},
		"actor": OWNER,
		"sent_at": now_str(),
	}
	n = 200
	t = time.perf_counter()
	for _ in range(n):
		emit_via_redis(RT_EVENT, message, "rt_bench:empty-room")
	emit_us = (time.perf_counter() - t) / n * 1e6
	pipe = frappe.cache.pipeline()
	key = frappe.cache.make_key("rt_bench:scratch")
	t = time.perf_counter()
	for _ in range(n // 10):
		pipe = frappe.cache.pipeline()
		for _ in range(10):
			for _ in range(2):
				pipe.lpush(key, pickle.dumps(message))
				pipe.ltrim(key, 0, 49)
		pipe.execute()
	trace_us = (time.perf_counter() - t) / (n // 10) * 1e6
	frappe.cache.delete(key)
	print(
		f"   after a real commit (not in the numbers above): RT publishes each message to Redis"
		f" ({emit_us:.0f} us each) and writes its trace in one pipeline ({trace_us:.0f} us per 10 entries)"
	)
	stamp_us, bulk_us = delivery_log_costs(message, n)
	print(
		f"   just before a real commit: seq and the delivery log, {stamp_us:.0f} us per 10 messages to a user"
		f" (one Lua call, {stamp_us / 10 / emit_us:.2f}x a publish per message); for 1,000 messages to 1,000"
		f" users {bulk_us:.1f} us per message"
	)
	inbox_us = inbox_costs(message, n)
	print(
		f"   and the inbox rows of those messages: {inbox_us:.0f} us per 10 messages (one INSERT,"
		f" {inbox_us / 10 / emit_us:.2f}x a publish per message)"
	)


def inbox_costs(message: dict, n: int) -> float:
	"""us per 10 inbox rows written as one committing transaction writes them (rolled back)."""
	from rt_studio.delivery import inbox

	t = time.perf_counter()
	for batch in range(n // 10):
		inbox.keep([("rt.bench.scratch@example.com", {**message, "seq": batch * 10 + i}) for i in range(10)])
	return (time.perf_counter() - t) / (n // 10) * 1e6


def delivery_log_costs(message: dict, n: int) -> tuple[float, float]:
	"""us per 10 numbered-and-logged messages to one user, and per message of 1,000 to 1,000 users."""
	from rt_studio.delivery import delivery_log

	user = "rt.bench.scratch@example.com"
	users = [f"rt.bench.scratch.{i}@example.com" for i in range(1000)]
	t = time.perf_counter()
	for _ in range(n // 10):
		delivery_log.stamp([(user, dict(message)) for _ in range(10)])
	per_ten = (time.perf_counter() - t) / (n // 10) * 1e6
	entries = [(u, dict(message)) for u in users]
	t = time.perf_counter()
	delivery_log.stamp(entries)
	per_message = (time.perf_counter() - t) / len(entries) * 1e6
	for name in [user, *users]:
		frappe.cache.delete(delivery_log._log_key(name), delivery_log._counter_key(name))
	return per_ten, per_message


# --------------------------------------------------------------------------- part 3: the bell

#: Recipients of the bell case (issue 16: "bell display for 1,000 recipients").
BELL_RECIPIENTS = 1000


def per_document_bell(user: str, message: dict) -> None:
	"""The bell as RT Studio made it before the bulk path: one Frappe insert per recipient."""
	frappe.get_doc(
		{
			"doctype": "Notification Log",
			"subject": message.get("subject") or message.get("message"),
			"email_content": message.get("message"),
			"for_user": user,
			"type": "Alert",
			"document_type": message.get("doctype"),
			"document_name": message.get("docname"),
			"from_user": message.get("actor"),
		}
	).insert(ignore_permissions=True)


def bell_case() -> None:
	"""Part 3: Notification Logs for BELL_RECIPIENTS users, per document and in bulk."""
	from rt_studio.delivery import bell
	from rt_studio.tests.counting import QueryCounter

	print(f"\n3. Bell display (Notification Log) for {BELL_RECIPIENTS:,} recipients")
	as_admin()
	users = insert_crowd([Member(f"rt.bench.bell.{i:05d}@example.com") for i in range(BELL_RECIPIENTS)])
	message = {
		"subject": "rt bench <b>bell</b>",
		"message": "qty changed",
		"display": "Notification Log",
		"doctype": "ToDo",
		"docname": "rt-bench-bell",
		"actor": "Administrator",
	}
	try:
		with QueryCounter() as old:
			started = time.perf_counter()
			for user in users:
				per_document_bell(user, message)
			old_s = time.perf_counter() - started
		with QueryCounter() as bulk:
			started = time.perf_counter()
			bell.write([(user, {**message, "docname": "rt-bench-bell-bulk"}) for user in users])
			bulk_s = time.perf_counter() - started
		made = {
			name: frappe.db.count("Notification Log", {"document_name": name})
			for name in ("rt-bench-bell", "rt-bench-bell-bulk")
		}
		print(
			f"   per document: {old_s * 1000:.0f} ms, {old.count} queries ({old.count / len(users):.1f} per"
			f" recipient); bulk: {bulk_s * 1000:.1f} ms, {bulk.count} queries; time ratio"
			f" {old_s / bulk_s:.0f}x, query ratio {old.count / max(bulk.count, 1):.0f}x; rows made {made}"
		)
	finally:
		frappe.db.rollback()
		forget_cached(users)


# --------------------------------------------------------------------------- part 4: the inbox

#: Recipients of the inbox case (issue 16: "inbox write for 1,000 recipients in one job").
INBOX_RECIPIENTS = 1000


def inbox_case() -> None:
	"""Part 4: inbox rows for INBOX_RECIPIENTS users, as one delivery chunk writes them."""
	from frappe.utils.background_jobs import get_queues_timeout

	from rt_studio.delivery import inbox
	from rt_studio.tests.counting import QueryCounter

	print(f"\n4. Inbox write for {INBOX_RECIPIENTS:,} recipients")
	as_admin()
	message = {
		"rule": "rt-bench-inbox",
		"channel": None,
		"subject": "rt bench <b>inbox</b>",
		"message": "qty changed to 7",
		"display": "Alert",
		"doctype": "ToDo",
		"docname": "rt-bench-inbox",
		"event": "Save",
		"fields": {},
		"actor": "Administrator",
		"sent_at": now_str(),
	}
	entries = [
		(f"rt.bench.inbox.{i:05d}@example.com", {**message, "seq": 10**12 + i})
		for i in range(INBOX_RECIPIENTS)
	]
	try:
		with QueryCounter() as counted:
			started = time.perf_counter()
			inbox.keep(entries)
			took = time.perf_counter() - started
		made = frappe.db.count(inbox.DOCTYPE, {"reference_name": "rt-bench-inbox"})
		budget = get_queues_timeout()["short"]
		print(
			f"   {took * 1000:.1f} ms, {counted.count} queries, {made:,} rows; {took / budget * 100:.3f}% of a"
			f" delivery job's budget (the short queue's timeout, {budget} s); {took / len(entries) * 1e6:.0f} us"
			f" per recipient"
		)
	finally:
		frappe.db.rollback()


# --------------------------------------------------------------------------- main


def disable_existing(state: dict) -> None:
	"""Inside the transaction: every existing Realtime Rule and ToDo Notification off."""
	existing_rules = frappe.get_all("Realtime Rule", filters={"enabled": 1}, pluck="name")
	existing_notifications = frappe.get_all(
		"Notification", filters={"enabled": 1, "document_type": "ToDo"}, pluck="name"
	)
	set_rules_enabled(existing_rules, 0)
	set_notifications_enabled(existing_notifications, 0)
	if existing_rules or existing_notifications:
		print(
			f"   (disabled for this run: rules {existing_rules or '-'}, ToDo Notifications"
			f" {existing_notifications or '-'})"
		)


def cleanup(state: dict) -> None:
	from frappe.utils.background_jobs import generate_qname, get_redis_conn
	from rq import Queue

	from rt_studio import rule_cache as cache

	# Nothing of the benchmark's queued trace should be written as "rolled back" entries.
	frappe.local.rt_studio_trace = []
	remove_patches(state)
	frappe.db.rollback()
	frappe.set_user("Administrator")

	# Redis was written while the transaction was open: drop what describes uncommitted data.
	frappe.cache.hdel("notifications", "ToDo")
	forget_cached([OWNER, *state["users"]])
	for rule in state["rules"]:
		frappe.cache.delete_value(f"rt_studio:trace:{rule}")
	try:
		queue_name = generate_qname(SCRATCH_QUEUE)
		Queue(queue_name, connection=get_redis_conn()).delete(delete_jobs=True)
	except Exception as e:
		print(f"   could not delete the scratch queue: {e}")

	left = {
		"Realtime Rule": frappe.db.count("Realtime Rule", {"name": ("like", f"{RULE_PREFIX}%")}),
		"Notification": frappe.db.count("Notification", {"name": ("like", f"{NOTIFICATION_PREFIX}%")}),
		"User": frappe.db.count("User", {"name": ("like", "rt.bench.%")}),
		"ToDo": frappe.db.count("ToDo", {"description": ("like", "rt bench %")}),
	}
	print(f"\nRolled back. Left in the database: {left}")

	state_after = frappe.cache.get_value(cache.STATE_KEY) or {}
	committed = frappe.get_all("Realtime Rule", fields=["name", "modified"], limit_page_length=0)
	if state_after.get("digest") is None:
		print(
			"RT Studio's rules token after the rollback has digest None: until the next committed"
			" rule change no process may share its index, so every request rebuilds it"
			" (2 queries). Restoring the committed digest."
		)
		frappe.cache.set_value(
			cache.STATE_KEY,
			{"token": state_after.get("token") or "restored", "digest": cache.digest_of(committed)},
		)


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--sites-path", default=os.getcwd())
	parser.add_argument("--ops", type=int, default=300)
	parser.add_argument("--only-large", action="store_true", help="run part 2 (large audiences) only")
	parser.add_argument("--only-bell", action="store_true", help="run part 3 (the bell display) only")
	parser.add_argument("--only-inbox", action="store_true", help="run part 4 (the inbox write) only")
	parser.add_argument(
		"--worker", action="store_true", help="part 2 once more through the bench's RQ worker"
	)
	parser.add_argument(
		"--notification-ops",
		type=int,
		default=60,
		help="ops for (d): a Notification insert costs ~0.3 s here, so (d) runs fewer (default 60)",
	)
	args = parser.parse_args()

	frappe.init(site=args.site, sites_path=args.sites_path)
	frappe.connect()
	started = time.perf_counter()
	load_at_start = os.getloadavg()
	state = {"rules": [], "notifications": [], "users": []}
	print(
		f"RT Studio site benchmark: site {args.site}, Frappe {frappe.__version__},"
		f" Python {sys.version.split()[0]}, flags in_test={bool(frappe.flags.in_test)}"
		f" in_import={bool(frappe.flags.in_import)} mute_emails={bool(frappe.flags.mute_emails)}"
	)
	try:
		if args.only_bell:
			bell_case()
			return
		if args.only_inbox:
			inbox_case()
			return
		if not args.only_large:
			try:
				install_patches(state)
				as_admin()
				disable_existing(state)
				insert_crowd([Member(OWNER)])
				state["users"].append(OWNER)
				part_one(args, state)
			finally:
				cleanup(state)
		large_audiences.run(args, OWNER)
		if not args.only_large:
			bell_case()
			inbox_case()
	finally:
		print(
			f"Total time {time.perf_counter() - started:.1f} s; load average at start"
			f" {load_at_start[0]:.2f}, at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
		)
		frappe.destroy()


if __name__ == "__main__":
	main()
