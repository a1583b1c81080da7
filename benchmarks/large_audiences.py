"""Part 2 of `site.py`: one rule whose audience is a role of 1,000 or 10,000 users.

For each size, cold (nobody's roles or User Permissions cached: the first delivery to these
users) and warm (the same users again), it measures:

- the user's save: DB queries, Redis round trips and milliseconds inside RT Studio's handler
  (a role of 10 users is the baseline: a large audience must cost the save no more);
- the delivery job as an RQ worker runs it: its arguments through pickle, then Frappe's own
  `execute_job` (frappe.init, connect, the method, commit, destroy) with RT Studio's and
  Frappe's process caches empty, as in a freshly forked work horse; DB queries, Redis round
  trips (a pipeline is one), wall time and the peak of Python memory it allocated;
- commit to last delivery: from the moment the user's commit returns to the moment the last
  of the rule's messages is seen on Redis's `events` channel (a thread subscribed to it),
  without the time a worker takes to pick the job up;
- with `--worker`, once more warm through the bench's real RQ worker (which must be running),
  commit to last delivery only.

The data must be committed for a job to see it: 10,000 users are inserted straight into the
User and Has Role tables (no hooks, no throttling), a role with read access to ToDo is added,
and everything (users, role, permission, rules, ToDos, Frappe's caches of them, the rules'
traces and rate counters) is deleted at the end, also when the run fails.
"""

import json
import threading
import time
import tracemalloc
from contextlib import contextmanager

import frappe
import redis
from frappe.utils.background_jobs import get_redis_connection_without_auth

from rt_studio.tests.counting import RoundTrips, run_as_work_horse
from rt_studio.tests.crowd import Member, forget_cached, insert_crowd, remove_crowd

CROWD_PREFIX = "rt-crowd-bench-"
SIZES = (1000, 10_000)
#: The baseline audience for the save's cost.
FEW = 10
#: {audience size: the role its users have}: user i has the roles of every size above i.
ROLES = {FEW: "RT Bench 10", 1000: "RT Bench 1,000", 10_000: "RT Bench 10,000"}
RULE = "rt-bench-large-audience"
METHOD = "rt_studio.delivery.deferred.deliver"
SUBJECT = "{{ doc.description }} ({{ doc.priority }})"
MESSAGE = "<b>{{ doc.name }}</b>: {{ doc.description }}, by {{ doc.owner }}"
#: Seconds to wait for the last message on Redis before giving up.
WAIT_SECONDS = 120


class Listener:
	"""Timestamps this site's messages of one rule on Redis's `events` channel, in a thread."""

	def __init__(self, rule: str):
		self.rule, self.site = rule, frappe.local.site
		self.times: list[float] = []
		self._client = redis.Redis.from_url(frappe.conf.redis_queue)
		self._pubsub = self._client.pubsub()
		self._pubsub.subscribe("events")
		while (m := self._pubsub.get_message(timeout=1)) is None or m["type"] != "subscribe":
			pass
		self._stop = False
		self._thread = threading.Thread(target=self._run, daemon=True)
		self._thread.start()

	def _run(self):
		while not self._stop:
			message = self._pubsub.get_message(timeout=0.2)
			if not message or message["type"] != "message":
				continue
			data = json.loads(message["data"])
			body = data.get("message")
			if (
				data.get("namespace") == self.site
				and isinstance(body, dict)
				and body.get("rule") == self.rule
			):
				self.times.append(time.perf_counter())

	def wait_for(self, count: int, since: int) -> float | None:
		"""The time the `count`-th message after index `since` arrived, or None after WAIT_SECONDS."""
		deadline = time.monotonic() + WAIT_SECONDS
		while len(self.times) < since + count and time.monotonic() < deadline:
			time.sleep(0.01)
		return self.times[since + count - 1] if len(self.times) >= since + count else None

	def close(self):
		self._stop = True
		self._thread.join()
		self._pubsub.close()
		self._client.close()


def run(args, owner: str) -> None:
	print(
		f"\n2. Large audiences: one rule on ToDo New to a role of {', '.join(f'{n:,}' for n in SIZES)} users"
	)
	counts = RoundTrips()
	state = {"users": [], "rules": [], "todos": [], "custom_docperm": None}
	t = time.perf_counter()
	try:
		setup(state, owner)
		print(
			f"   setup ({len(state['users']):,} users inserted and committed): {time.perf_counter() - t:.1f} s"
		)
		get_redis_connection_without_auth()  # as a worker has it open before forking a job
		counts.install()
		rows = measure_all(args, state, owner, counts)
	finally:
		counts.remove()
		teardown(state)
	print_table(rows)


def setup(state: dict, owner: str) -> None:
	frappe.set_user("Administrator")
	for role in ROLES.values():
		if not frappe.db.exists("Role", role):
			frappe.get_doc({"doctype": "Role", "role_name": role, "desk_access": 1}).insert()
	had_custom = frappe.db.exists("Custom DocPerm", {"parent": "ToDo"})
	state["custom_docperm"] = "ours" if not had_custom else "added"
	for role in ROLES.values():
		frappe.permissions.add_permission("ToDo", role, 0)
	tag = frappe.generate_hash(length=6)
	members = [
		Member(f"{CROWD_PREFIX}{tag}-{i:05d}@example.com", tuple(r for n, r in ROLES.items() if i < n))
		for i in range(max(SIZES))
	]
	state["users"] = insert_crowd(members)
	if not frappe.db.exists("User", owner):
		insert_crowd([Member(owner)])
		state["users"].append(owner)
	frappe.db.commit()


def measure_all(args, state: dict, owner: str, counts: RoundTrips) -> list[dict]:
	rows = [measure_save_only(state, owner, counts), measure_job_overhead(owner, counts)]
	for size in SIZES:
		role_users = state["users"][:size]
		make_rule(state, ROLES[size], size)
		listener = Listener(RULE)
		try:
			if size == SIZES[0]:
				# site-wide caches (metadata, settings) warm, as on a live site: cold is the users'
				measure_one(size, "warm-up", state, owner, counts, listener)
			for label in ("cold", "warm"):
				if label == "cold":
					forget_cached(role_users)
				rows.append(measure_one(size, label, state, owner, counts, listener))
			rows.append(measure_memory(size, state, owner, listener))
			if args.worker:
				rows.append(measure_real_worker(size, state, owner, listener))
		finally:
			listener.close()
			drop_rule(state)
	return rows


def make_rule(state: dict, role: str, size: int) -> None:
	frappe.set_user("Administrator")
	frappe.get_doc(
		{
			"doctype": "Realtime Rule",
			"rule_name": RULE,
			"document_type": "ToDo",
			"event": "New",
			"audience": [{"audience_type": "Role", "role": role}],
			"exclude_actor": 0,
			"subject": SUBJECT,
			"message": MESSAGE,
			"display": "Alert",
			# a limit no run reaches, so the limiter's cost is in the numbers
			"rate_limit_count": 1000,
			"rate_limit_seconds": 60,
		}
	).insert()
	state["rules"].append(RULE)
	frappe.db.commit()


def drop_rule(state: dict) -> None:
	frappe.set_user("Administrator")
	if frappe.db.exists("Realtime Rule", RULE):
		frappe.delete_doc("Realtime Rule", RULE, force=True)
	frappe.db.commit()
	clear_rule_state(RULE)


def insert_todo(state: dict, owner: str, label: str, counts: RoundTrips | None = None):
	"""Insert a ToDo as `owner` and commit; RT Studio's handler measured; the job it enqueued."""
	import rt_studio.save.handler as handler

	frappe.set_user(owner)
	frappe.local.cache = {}
	frappe.local.rt_studio_index = None
	jobs, calls = [], {}
	original_enqueue, original_run = frappe.enqueue, handler.run_rules

	def capture(method, queue=None, enqueue_after_commit=False, job_id=None, on_failure=None, **kwargs):
		jobs.append(kwargs)  # the method's own arguments, as execute_job passes them

	def timed_run_rules(doc, rules, *method):
		t = time.perf_counter()
		with counts.counting() if counts else _nothing():
			original_run(doc, rules, *method)
		calls.update(ms=(time.perf_counter() - t) * 1e3)
		if counts:
			calls.update(queries=counts.queries, redis=counts.redis)

	frappe.enqueue, handler.run_rules = (capture if counts else original_enqueue), timed_run_rules
	try:
		todo = {"description": f"rt bench {label}", "priority": "Medium", "allocated_to": owner}
		doc = frappe.get_doc({"doctype": "ToDo", **todo})
		doc.insert()
		state["todos"].append(doc.name)
		frappe.db.commit()
		committed = time.perf_counter()
	finally:
		frappe.enqueue, handler.run_rules = original_enqueue, original_run
	return calls, [j for j in jobs if j.get("rule") == RULE], committed


@contextmanager
def _nothing():
	yield


def measure_save_only(state: dict, owner: str, counts: RoundTrips) -> dict:
	"""The baseline: the same rule to a role of FEW users, delivered inside the save."""
	make_rule(state, ROLES[FEW], FEW)
	try:
		insert_todo(state, owner, "few warm-up", counts)
		save, jobs, _committed = insert_todo(state, owner, "few", counts)
	finally:
		drop_rule(state)
	return {"size": FEW, "label": "in the save", "save": save, "jobs": len(jobs)}


def measure_one(size: int, label: str, state: dict, owner: str, counts: RoundTrips, listener) -> dict:
	before = len(listener.times)
	save, [job], committed = insert_todo(state, owner, f"{size} {label}", counts)
	with counts.counting():
		job_s = run_job(job, owner)
	queries, round_trips = counts.queries, counts.redis
	last = listener.wait_for(size, before)
	return {
		"size": size,
		"label": label,
		"save": save,
		"job": {"queries": queries, "redis": round_trips, "s": job_s},
		"delivered": len(listener.times) - before,
		"commit_to_last": None if last is None else last - committed,
	}


def measure_memory(size: int, state: dict, owner: str, listener) -> dict:
	"""Warm once more, under tracemalloc: the peak of Python memory the job allocated."""
	before = len(listener.times)
	_save, [job], _committed = insert_todo(state, owner, f"{size} memory", RoundTrips())
	tracemalloc.start()
	try:
		run_job(job, owner)
		_current, peak = tracemalloc.get_traced_memory()
	finally:
		tracemalloc.stop()
	listener.wait_for(size, before)
	return {"size": size, "label": "memory", "peak_mb": peak / 1e6}


def measure_job_overhead(owner: str, counts: RoundTrips) -> dict:
	"""What any job costs in Frappe's execute_job (init, connect, hooks, commit): `frappe.ping`."""
	with counts.counting():
		job_s = run_job({}, owner, method="frappe.ping")
	return {
		"size": 0,
		"label": "empty job",
		"job": {"queries": counts.queries, "redis": counts.redis, "s": job_s},
	}


def run_job(job: dict, owner: str, method: str = METHOD) -> float:
	"""Run the job as an RQ work horse does; its wall time."""
	return run_as_work_horse(method, job, owner)


def measure_real_worker(size: int, state: dict, owner: str, listener) -> dict:
	before = len(listener.times)
	_save, _jobs, committed = insert_todo(state, owner, f"{size} worker", None)
	last = listener.wait_for(size, before)
	return {
		"size": size,
		"label": "warm, real worker",
		"delivered": len(listener.times) - before,
		"commit_to_last": None if last is None else last - committed,
	}


def clear_rule_state(rule: str) -> None:
	for key in frappe.cache.keys(frappe.cache.make_key(f"rt_studio:rate:rule:{rule}:*")):
		frappe.cache.delete(key)
	frappe.cache.delete_value(f"rt_studio:trace:{rule}")


def teardown(state: dict) -> None:
	frappe.set_user("Administrator")
	frappe.db.rollback()
	if frappe.db.exists("Realtime Rule", RULE):
		frappe.delete_doc("Realtime Rule", RULE, force=True)
	clear_rule_state(RULE)
	for start in range(0, len(state["todos"]), 1000):
		frappe.db.delete("ToDo", {"name": ["in", state["todos"][start : start + 1000]]})
	remove_crowd(state["users"])
	if state["custom_docperm"] == "ours":
		frappe.db.delete("Custom DocPerm", {"parent": "ToDo"})
	else:
		frappe.db.delete("Custom DocPerm", {"parent": "ToDo", "role": ["in", list(ROLES.values())]})
	for role in ROLES.values():
		frappe.db.delete("Has Role", {"role": role})
		if frappe.db.exists("Role", role):
			frappe.delete_doc("Role", role, force=True)
	frappe.db.commit()
	frappe.clear_cache(doctype="ToDo")
	left = frappe.db.count("User", {"name": ["like", f"{CROWD_PREFIX}%"]})
	print(
		f"   cleaned up: {left} benchmark users left, rule {'left' if frappe.db.exists('Realtime Rule', RULE) else 'deleted'}"
	)


def print_table(rows: list[dict]) -> None:
	print(
		f"   {'audience':>8} {'run':<18} | {'save: queries':>13} {'redis':>5} {'ms':>6} |"
		f" {'job: queries':>12} {'redis':>5} {'s':>6} | {'commit→last s':>13} {'delivered':>9} | peak MB"
	)
	for row in rows:
		save, job = row.get("save") or {}, row.get("job") or {}
		last = row.get("commit_to_last")
		print(
			f"   {row['size']:>8,} {row['label']:<18} |"
			f" {_num(save.get('queries')):>13} {_num(save.get('redis')):>5} {_num(save.get('ms'), '.1f'):>6} |"
			f" {_num(job.get('queries')):>12} {_num(job.get('redis')):>5} {_num(job.get('s'), '.2f'):>6} |"
			f" {_num(last, '.2f'):>13} {_num(row.get('delivered')):>9} | {_num(row.get('peak_mb'), '.1f')}"
		)
	print(
		"   save: inside RT Studio's handler during the insert. job: Frappe's execute_job with empty"
		" process caches, as a work horse runs it (the empty job's row is what any job costs)."
		" commit→last: from the user's commit to the last message on Redis, the job run in this"
		" process right after the commit (no queue pick-up), or by the bench's worker."
	)


def _num(value, fmt: str = ",") -> str:
	if value is None:
		return "-"
	return format(value, fmt)
