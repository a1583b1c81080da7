"""Exact on two of every server: large audiences, rate limits, batches, escalation, time rules, mutes
and the rule cache with two web nodes, two socket.io nodes and two RQ workers taking the same rule
at once. Run it on a bench made by `RT_NODES=2 dev/bench-up` (it stops by itself, in about two
minutes):

    python3 benchmarks/two_nodes_exact.py [--rt-home ~/.rt-studio] [--rounds 2]

(it runs itself again with the bench's Python). Everything goes through the servers as in use:
saves are REST inserts by HTTP clients logged in on web node 1 (:8000) and web node 2 (:8001) at
the same time; desks are socket.io clients (benchmarks/faults_listen.js, what the desk runtime does)
on socket.io node 1 and node 2; jobs run on `worker` and `worker2`, told apart by the RQ worker that
ran each job (its pid is that of one or the other). Checks, each a PASS or FAIL line:

1. crowd: a rule to a role of 1,000 users (inserted in bulk, rt_studio/tests/crowd.py) is handed to
   durable delivery jobs; four saves through both web nodes at once, twice, make jobs that both
   workers run, and each job is queued a second time at once (as the sweep queues it again), so
   two workers race for one job's claim: every one of the 1,000 has exactly one inbox item per
   message, the desks on both nodes show each message once, each job's row is Done with 1,000
   delivered in one attempt.
2. rate limit and batches: a rule limited to 3 messages per 10 s; a burst of saves through both web
   nodes at once, then a stream of saves that goes on past the batches' due time; at each due time
   the summary timer and four `deliver_due` runs on both workers race: per user, the messages sent
   plus the summaries' `batch_count` equal the events, no document is in two summaries or in a
   message and a summary, the desks show each message and summary once.
3. escalation: unread messages (the second round more than one claim of ESCALATE_CHUNK), then
   `escalate_due` enqueued twice at once: one Email Queue row per unread item, each item Sent; and
   the two runs were on worker and worker2 at the same time.
4. time rule: Events whose Minutes After message comes due, then `run_time_rules` twice at once (the
   last run's time moved back before their due time, as after a late run): one message per Event
   and user, one due log row per Event; the two runs on both workers at the same time.
5. mutes and the rule cache: a mute or unmute through one web node, a rule changed, disabled or
   enabled through web node 1, and the very next save through the other node follows it.
6. no rule recorded an error.
A race whose two runs landed on one worker (the other busy) is run again, up to two more rounds.

Removes everything it made (users and their sessions, roles, permission rows, rules, ToDos, Events,
inbox items, delivery jobs, due logs, mutes, Email Queue rows, the Email Account it added, the
users' and rules' Redis keys: numbers, replay logs, rate counters, batches, traces), also after a
failure; leftovers of an interrupted run are removed first. Exit 1 on any FAIL.
"""

import argparse
import copy
import json
import os
import secrets
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faults  # the bench, HTTP sessions and the desks' listener

PREFIX = "rt-exact"
CROWD_PREFIX = "rt-exact-crowd-"
CROWD_ROLE = "RT Exact Crowd"
DESK_ROLE = "RT Exact Desk"
ROLES = (CROWD_ROLE, DESK_ROLE)
CROWD = 1000
#: The first DESKS of the crowd log in and listen: even ones on node 1, odd ones on node 2.
DESKS = 6
CROWD_RULE = f"{PREFIX} crowd"
RATE_RULE = f"{PREFIX} rate"
ESCALATE_RULE = f"{PREFIX} escalate"
TIME_RULE = f"{PREFIX} time"
MUTE_RULE = f"{PREFIX} mute"
RULES = (CROWD_RULE, RATE_RULE, ESCALATE_RULE, TIME_RULE, MUTE_RULE)
RATE_LIMIT, RATE_WINDOW = 3, 10
EMAIL_ACCOUNT = "rt-exact outbox"
#: Set while ToDo's Custom DocPerm rows are this script's (ToDo had none before it added its role).
OWN_DOCPERMS = "rt_exact:own_custom_docperms"
#: Saves one burst makes, through both web nodes at once.
BURST = 24
#: How long to wait for deliveries, at most.
WAIT_SECONDS = 90

failures = 0


def say(*parts) -> None:
	print(*parts, file=sys.stderr, flush=True)


def check(label: str, ok: bool, detail: str = "") -> None:
	global failures
	print(f"{'PASS' if ok else 'FAIL'} {label}{f' ({detail})' if detail else ''}", flush=True)
	failures += not ok


def fresh() -> None:
	"""A new snapshot of the database for this process."""
	import frappe

	frappe.db.rollback()


# ---------------------------------------------------------------- the site


def crowd_names() -> list[str]:
	return [f"{CROWD_PREFIX}{i:05d}@example.com" for i in range(CROWD)]


def set_up() -> dict:
	"""Roles (the crowd's may read every ToDo), the crowd, the desks' passwords, the rules.
	Returns {desk user: password}."""
	import frappe
	from frappe.utils.password import update_password

	from rt_studio.tests.crowd import Member, forget_cached, insert_crowd

	for role in ROLES:
		faults.ensure_role(role)
	if not frappe.db.exists("Custom DocPerm", {"parent": "ToDo"}):
		# adding a role copies ToDo's standard permissions into Custom DocPerm: ours to remove, even
		# by the next run when this one is interrupted
		frappe.cache.set_value(OWN_DOCPERMS, 1)
	frappe.permissions.add_permission("ToDo", CROWD_ROLE, 0)
	names = crowd_names()
	insert_crowd(
		[
			Member(name, (CROWD_ROLE, DESK_ROLE) if i < DESKS else (CROWD_ROLE,))
			for i, name in enumerate(names)
		]
	)
	forget_cached(names)
	passwords = {}
	for name in names[:DESKS]:
		passwords[name] = f"Ex-{secrets.token_urlsafe(12)}"
		update_password(name, passwords[name])
	common = {"document_type": "ToDo", "event": "New", "display": "Alert", "exclude_actor": 1}
	desks = [{"audience_type": "Role", "role": DESK_ROLE}]
	rules = {
		CROWD_RULE: {"audience": [{"audience_type": "Role", "role": CROWD_ROLE}]},
		RATE_RULE: {"audience": desks, "rate_limit_count": RATE_LIMIT, "rate_limit_seconds": RATE_WINDOW},
		ESCALATE_RULE: {"audience": desks, "escalate_after_minutes": 1},
		MUTE_RULE: {"audience": desks},
		TIME_RULE: {
			"audience": desks,
			"document_type": "Event",
			"event": "Minutes After",
			"datetime_changed": "starts_on",
			"minutes_offset": 0,
		},
	}
	for name, fields in rules.items():
		field = "subject" if name == TIME_RULE else "description"
		faults.ensure_rule(
			name,
			**{**common, **fields},
			condition=f"(doc.{field} or '').startswith({(name + ' ')!r})",
			subject="{{ doc.name }}",
		)
	frappe.db.commit()
	frappe.clear_cache(doctype="ToDo")
	return passwords


def add_email_account() -> bool:
	"""A default outgoing Email Account that sends nowhere (no SMTP login at save), unless the site
	has one; True when this run added it."""
	import frappe

	if frappe.db.exists("Email Account", {"enable_outgoing": 1, "default_outgoing": 1}):
		return False
	account = frappe.new_doc("Email Account")
	account.update(
		{
			"email_account_name": EMAIL_ACCOUNT,
			"email_id": "rt-exact@example.com",
			"enable_outgoing": 1,
			"default_outgoing": 1,
			"smtp_server": "127.0.0.1",
			"smtp_port": 1,
			"no_smtp_authentication": 1,
		}
	)
	account.db_insert()
	frappe.db.commit()
	return True


def clean_up() -> None:
	"""Everything this script makes, whatever a run left: each part committed on its own, and a
	part that fails does not keep the others from running."""
	import frappe

	for part in (remove_documents, remove_rules, remove_people):
		try:
			fresh()
			part()
			frappe.db.commit()
		except Exception as e:
			frappe.db.rollback()
			say(f"   clean-up: {part.__name__} failed: {e!r}")
	frappe.clear_cache(doctype="ToDo")


def remove_documents() -> None:
	"""ToDos, Events, the Email Queue rows, inbox items, delivery jobs, due logs and mutes of the rules."""
	import frappe

	todos = frappe.get_all("ToDo", filters={"description": ["like", f"{PREFIX} %"]}, pluck="name")
	events = frappe.get_all("Event", filters={"subject": ["like", f"{PREFIX} %"]}, pluck="name")
	for start in range(0, max(len(todos), 1), 500):
		part = todos[start : start + 500]
		if part:
			queued = frappe.get_all("Email Queue", filters={"reference_name": ["in", part]}, pluck="name")
			if queued:
				frappe.db.delete("Email Queue Recipient", {"parent": ["in", queued]})
				frappe.db.delete("Email Queue", {"name": ["in", queued]})
			frappe.db.delete("ToDo", {"name": ["in", part]})
	if events:
		frappe.db.delete("Event Participants", {"parent": ["in", events]})
		frappe.db.delete("Event", {"name": ["in", events]})
	jobs = frappe.get_all("Realtime Delivery Job", filters={"rule": ["in", RULES]}, pluck="name")
	if jobs:
		frappe.db.delete("Realtime Delivery Job Chunk", {"parent": ["in", jobs]})
		frappe.db.delete("Realtime Delivery Job", {"name": ["in", jobs]})
	frappe.db.delete("Realtime Inbox Item", {"rule": ["in", RULES]})
	frappe.db.delete("Realtime Rule Due Log", {"rule": ["in", RULES]})
	frappe.db.delete("Realtime Mute", {"rule": ["in", RULES]})


def remove_rules() -> None:
	"""The rules and their Redis keys (rate counters, batches, traces); the crowd's numbers, replay
	logs and preferences."""
	import frappe

	from rt_studio.delivery.batches import DUE_KEY

	for rule in RULES:
		if frappe.db.exists("Realtime Rule", rule):
			frappe.delete_doc("Realtime Rule", rule, force=True, ignore_permissions=True)
		for pattern in (f"rt_studio:rate:rule:{rule}:*", f'rt_studio:batch:\\["{rule}"*'):
			for key in frappe.cache.keys(frappe.cache.make_key(pattern)):
				frappe.cache.delete(key)
		frappe.cache.delete_value(f"rt_studio:trace:{rule}")
	due_key = frappe.cache.make_key(DUE_KEY)
	ours = [m for m in frappe.cache.zrange(due_key, 0, -1) if m.decode().startswith(f'["{PREFIX} ')]
	if ours:
		frappe.cache.zrem(due_key, *ours)
	# the crowd's numbers, replay logs and preferences; the jobs' and rules' traces
	for pattern in (f"rt_studio:*:{CROWD_PREFIX}*", f"rt_studio:trace:*{PREFIX} *"):
		keys = list(frappe.cache.scan_iter(frappe.cache.make_key(pattern), count=1000))
		for start in range(0, len(keys), 1000):
			frappe.cache.delete(*keys[start : start + 1000])


def remove_people() -> None:
	"""The crowd (with their sessions, logins and passwords), the roles and ToDo's permission rows
	for them, the Email Account the run added."""
	import frappe
	from frappe.sessions import clear_sessions

	from rt_studio.tests.crowd import remove_crowd

	users = frappe.get_all("User", filters={"name": ["like", f"{CROWD_PREFIX}%"]}, pluck="name")
	if users:
		for user in frappe.db.sql_list(
			"select distinct user from `tabSessions` where user like %s", f"{CROWD_PREFIX}%"
		):
			clear_sessions(user, force=True)
		frappe.db.delete("Sessions", {"user": ["in", users]})
		frappe.db.delete("Activity Log", {"user": ["in", users]})
		frappe.db.delete("__Auth", {"doctype": "User", "name": ["in", users]})
		frappe.db.delete("Realtime Preference", {"user": ["in", users]})
		remove_crowd(users)
	if frappe.cache.get_value(OWN_DOCPERMS):
		frappe.db.delete("Custom DocPerm", {"parent": "ToDo"})
		frappe.cache.delete_value(OWN_DOCPERMS)
	else:
		frappe.db.delete("Custom DocPerm", {"parent": "ToDo", "role": ["in", ROLES]})
	for role in ROLES:
		frappe.db.delete("Has Role", {"role": role})
		if frappe.db.exists("Role", role):
			frappe.delete_doc("Role", role, force=True, ignore_permissions=True)
	if frappe.db.exists("Email Account", EMAIL_ACCOUNT):
		frappe.db.delete("Email Account", EMAIL_ACCOUNT)


# ---------------------------------------------------------------- HTTP clients and jobs


def closing(session):
	"""A session whose every request has a connection of its own: gunicorn closes a kept-alive
	connection after 2 idle seconds, and a request sent on it as it closes gets no answer at all."""
	session.http.headers["Connection"] = "close"
	return session


class Nodes:
	"""Both web nodes: Administrator's HTTP sessions, CLIENTS_PER_NODE on each."""

	CLIENTS_PER_NODE = 4

	def __init__(self, benches: list):
		self.benches = benches
		self.admins = [
			closing(faults.Session(bench, "Administrator", bench.admin_password))
			for _ in range(self.CLIENTS_PER_NODE)
			for bench in benches
		]

	def close(self) -> None:
		for session in self.admins:
			session.http.get(f"{session.bench.base}/api/method/frappe.handler.logout", timeout=30)
			session.http.close()

	def admin(self, node: int):
		return self.admins[node]  # sessions alternate between the nodes: 0 and 1 are one of each

	def burst(self, doctype: str, docs: list[dict]) -> list[str]:
		"""Insert `docs` at once: each client (half of them on each web node) its share, one after
		the other, all clients starting together. The names, in order; a failed save fails the run."""
		import threading

		clients = min(len(docs), len(self.admins))
		start = threading.Barrier(clients)
		names: list[str | None] = [None] * len(docs)
		errors = []

		def client(c: int) -> None:
			session = self.admins[c]
			start.wait()
			for i in range(c, len(docs), clients):
				answer = session.http.post(
					f"{session.bench.base}/api/resource/{doctype}", json=docs[i], timeout=60
				)
				if answer.status_code == 200:
					names[i] = answer.json()["data"]["name"]
				else:
					errors.append(f"{session.bench.base}: HTTP {answer.status_code} {answer.text[:300]}")

		with ThreadPoolExecutor(clients) as pool:
			list(pool.map(client, range(clients)))
		if errors:
			raise RuntimeError(f"{len(errors)} of {len(docs)} {doctype} inserts failed: {errors[0]}")
		return names

	def stream(self, doctype: str, make, seconds: float, pause: float = 0.6):
		"""One client on each web node inserting `make()` until `seconds` passed, in the background;
		a future of the names saved."""
		import threading

		pool = ThreadPoolExecutor(1)
		until = time.time() + seconds
		lock = threading.Lock()

		def client(session) -> list[str]:
			names = []
			while time.time() < until:
				with lock:
					doc = make()
				names.append(session.insert(doctype, doc))
				time.sleep(pause)
			return names

		def both() -> list[str]:
			with ThreadPoolExecutor(2) as clients:
				parts = list(clients.map(client, self.admins[:2]))
			names = [name for part in parts for name in part]
			if not all(names):
				raise RuntimeError(f"{names.count(None)} of {len(names)} {doctype} inserts failed")
			return names

		future = pool.submit(both)
		pool.shutdown(wait=False)
		return future


def put(session, doctype: str, name: str, values: dict) -> None:
	answer = session.http.put(f"{session.bench.base}/api/resource/{doctype}/{name}", json=values, timeout=60)
	answer.raise_for_status()


def enqueue_at_once(method: str, times: int, **kwargs) -> list[str]:
	"""Queue `method` `times` times at once, as frappe.enqueue does (each idle worker takes one at
	once); the RQ job ids. Straight through RQ: frappe.enqueue keeps a `now` argument for itself."""
	import uuid

	import frappe
	from frappe.utils.background_jobs import execute_job, get_queue

	queue = get_queue("short")
	arguments = {"site": frappe.local.site, "user": "Administrator", "method": method, "event": None}
	arguments.update(job_name=method, is_async=True, kwargs=kwargs)
	ids = [f"{frappe.local.site}::{PREFIX}-{uuid.uuid4().hex}" for _ in range(times)]
	for job_id in ids:  # a millisecond apart: idle workers are waiting on the queue
		queue.enqueue_call(execute_job, kwargs=arguments, timeout=300, job_id=job_id)
	return ids


class Runs:
	"""Which of the bench's workers ran each RQ job, and when (RQ keeps a finished job 600 s)."""

	def __init__(self, bench):
		from frappe.utils.background_jobs import get_redis_conn
		from rq import Worker

		self.conn = get_redis_conn()
		pids = {bench.pid(name): name for name in ("worker", "worker2")}
		self.names = {w.name: pids.get(w.pid, f"pid {w.pid}") for w in Worker.all(connection=self.conn)}

	def of(self, job_ids: list[str]) -> list[tuple[str, object, object]]:
		"""(worker, started, ended) per job; ("?", None, None) for a job RQ no longer knows."""
		from rq.job import Job

		found = []
		for job in Job.fetch_many(job_ids, connection=self.conn):
			if job is None or not job.worker_name:
				found.append(("?", None, None))
			else:
				found.append((self.names.get(job.worker_name, job.worker_name), job.started_at, job.ended_at))
		return found

	def wait(self, job_ids: list[str], seconds: float = WAIT_SECONDS) -> list[tuple[str, object, object]]:
		from rq.job import Job

		def done():
			jobs = Job.fetch_many(job_ids, connection=self.conn)
			return all(job is None or job.get_status() in ("finished", "failed") for job in jobs)

		faults.wait_for(done, seconds, every=0.2)
		return self.of(job_ids)


def overlapped(runs: list[tuple[str, object, object]]) -> bool:
	"""Whether two of these runs were on different workers at the same time."""
	for i, (w1, s1, e1) in enumerate(runs):
		for w2, s2, e2 in runs[i + 1 :]:
			if w1 != w2 and s1 and s2 and e1 and e2 and s1 < e2 and s2 < e1:
				return True
	return False


def describe(runs) -> str:
	return ", ".join(f"{w} {(e - s).total_seconds():.1f}s" if s and e else w for w, s, e in runs) + (
		"; overlapping on both workers" if overlapped(runs) else ""
	)


def inbox_rows(rule: str, names: list[str], fields=("reference_name", "user", "seq", "payload", "subject")):
	import frappe

	fresh()
	if not names:
		return []
	return frappe.get_all(
		"Realtime Inbox Item",
		filters={"rule": rule, "reference_name": ["in", names]},
		fields=list(fields),
		limit_page_length=0,
	)


# ---------------------------------------------------------------- the checks


def crowd(nodes: Nodes, runs: Runs, desks: list, users: list[str], rounds: int) -> None:
	"""1. A role of 1,000: jobs on both workers, one inbox item each, each desk shows it once."""
	import frappe

	from rt_studio.delivery import deferred, delivery_jobs

	docs, ran, jobs, pairs = [], [], [], []

	def delivered(names: list[str], label: str) -> None:
		"""Wait for the jobs of `names`; keep their rows and which worker ran each."""

		def finished():
			fresh()
			return frappe.db.count(
				"Realtime Delivery Job",
				{"rule": CROWD_RULE, "reference_name": ["in", names], "status": ["in", ("Done", "Failed")]},
			) == len(names)

		faults.wait_for(finished, WAIT_SECONDS, every=0.5)
		rows = frappe.get_all(
			"Realtime Delivery Job",
			filters={"rule": CROWD_RULE, "reference_name": ["in", names]},
			fields=["name", "status", "attempts", "delivered", "runner_job", "rq_job"],
		)
		docs.extend(names)
		jobs.extend(rows)
		# the row is Done at the job's last commit, RQ marks the job finished just after
		ran.extend(runs.wait([f"{frappe.local.site}::{row.runner_job or row.rq_job}" for row in rows]))
		say(f"   crowd {label}: {len(rows)} jobs, {describe(ran[-len(rows) :])}")

	for r in range(rounds + 2):
		tag = secrets.token_hex(3)
		names = nodes.burst("ToDo", [{"description": f"{CROWD_RULE} {tag} {i}"} for i in range(4)])
		delivered(names, f"burst {r + 1} through both web nodes")
		# a save through each node, its job queued a second time the moment the save answers, as a
		# sweep queues a job again: one worker runs the job while the other takes the second run,
		# and the two race for its claim; each recipient must still get the message once
		for node in (0, 1):
			name = nodes.admin(node).insert("ToDo", {"description": f"{CROWD_RULE} {tag} twice {node}"})
			fresh()
			row = name and frappe.db.get_value(
				"Realtime Delivery Job", {"reference_name": name}, ["rq_job", "arguments"]
			)
			if not row:
				raise RuntimeError(f"the save through web node {node + 1} made no delivery job ({name})")
			again = enqueue_at_once(deferred.METHOD, 1, **delivery_jobs.decode(row[1]))
			pairs.append((f"{frappe.local.site}::{row[0]}", *again))
			delivered([name], f"queued twice, through web node {node + 1}")
		if r + 1 >= rounds and {"worker", "worker2"} <= {w for w, _s, _e in ran}:
			break
	by_worker = Counter(w for w, _s, _e in ran)
	check(
		f"1a. {len(docs)} saves to a role of {CROWD:,} through both web nodes: delivery jobs run by both workers",
		{"worker", "worker2"} <= set(by_worker),
		", ".join(f"{w} {n}" for w, n in sorted(by_worker.items())),
	)
	bad = [row for row in jobs if row.status != "Done" or row.attempts != 1 or row.delivered != CROWD]
	racing = sum(overlapped(runs.wait(list(pair))) for pair in pairs)
	check(
		f"1b. each job Done, {CROWD:,} delivered, in one attempt; of a job queued twice one run delivers",
		len(jobs) == len(docs) and not bad,
		f"{len(jobs)} jobs, {len(pairs)} queued twice: the two runs of {racing} were on both workers at "
		f"the same time; not so: {[(j.status, j.attempts, j.delivered) for j in bad][:5]}",
	)
	check(
		"1c. the two runs of a job queued twice raced, on worker and worker2 at once",
		racing > 0,
		" | ".join(describe(runs.of(list(pair))) for pair in pairs),
	)
	counts = Counter(
		(row.reference_name, row.user) for row in inbox_rows(CROWD_RULE, docs, ("reference_name", "user"))
	)
	missing, twice = lost_and_twice(counts, {(doc, user) for doc in docs for user in users})
	check(
		f"1d. every one of the {CROWD:,} has one inbox item per message",
		not missing and not twice,
		f"{sum(counts.values())} of {len(docs) * CROWD} (user, message): missing {missing}, twice or outside the role {twice}",
	)
	listening = [u for u in users[:DESKS]]
	expected = {user: {(CROWD_RULE, doc) for doc in docs} for user in listening}
	faults.wait_for(lambda: shown_all(desks, expected), WAIT_SECONDS)
	time.sleep(1)
	lost, twice, via = desk_tally(desks, expected, {CROWD_RULE})
	check(
		f"1e. the {len(listening)} desks (3 on each socket.io node) show each message once",
		not lost and not twice,
		f"lost {lost}, twice {twice}, shown {dict(via)}",
	)


def shown_all(desks: list, expected: dict) -> bool:
	got = {(r["user"], r["source"], r["about"]) for desk in desks for r in desk.shown()}
	return all((user, *key) in got for user, keys in expected.items() for key in keys)


def desk_tally(desks: list, expected: dict, sources: set) -> tuple[int, int, Counter]:
	seen = Counter(
		(r["user"], r["source"], r["about"]) for desk in desks for r in desk.shown() if r["source"] in sources
	)
	lost = sum(1 for user, keys in expected.items() for key in keys if not seen[(user, *key)])
	twice = sum(n - 1 for n in seen.values() if n > 1) + sum(
		n for (user, *key), n in seen.items() if tuple(key) not in expected.get(user, ())
	)
	via = Counter(r["via"] for desk in desks for r in desk.shown() if r["source"] in sources)
	return lost, twice, via


def rate_limit(nodes: Nodes, desks: list, users: list[str], rounds: int) -> None:
	"""2. Bursts over a rate limit through both nodes; at the batches' due time the timer and four
	`deliver_due` runs race; what was sent plus what was summarised is every event, once."""
	import frappe

	from rt_studio.delivery.batches import DUE_KEY, _member

	listening = users[:DESKS]
	due_key = frappe.cache.make_key(DUE_KEY)
	events = []

	def dues() -> list[float]:
		return [d for d in frappe.cache.zmscore(due_key, [_member(RATE_RULE, u) for u in listening]) if d]

	def accounted() -> bool:
		fresh()
		rows = frappe.get_all("Realtime Inbox Item", filters={"rule": RATE_RULE}, fields=["user", "payload"])
		told = Counter()
		for row in rows:
			told[row.user] += json.loads(row.payload).get("batch_count") or 1
		return all(told[u] >= len(events) for u in listening)

	for r in range(rounds):
		tag = secrets.token_hex(3)
		descriptions = (f"{RATE_RULE} {tag} {i}" for i in range(10_000))
		if r < rounds - 1 or rounds < 2:
			# a burst, all over before the batches come due
			names = nodes.burst("ToDo", [{"description": next(descriptions)} for _ in range(BURST)])
			kind = "burst"
		else:
			# a stream through both nodes from before the batches open until after they come due
			stream = nodes.stream("ToDo", lambda: {"description": next(descriptions)}, RATE_WINDOW + 4)
			faults.wait_for(dues, RATE_WINDOW)
			kind = "stream across the due time"
		due = dues()
		if not due:
			check(f"2. round {r + 1}: the saves opened batches", False, "no batch is collecting")
			continue
		time.sleep(max(0, max(due) - time.time() + 0.05))
		enqueue_at_once("rt_studio.delivery.summaries.deliver_due", 4)
		if kind != "burst":
			names = stream.result()
		events += names
		faults.wait_for(accounted, WAIT_SECONDS, every=0.5)
		time.sleep(2)  # and whatever would come twice
		say(f"   rate {kind}: {len(names)} saves, batches due {max(due) - min(due):.2f}s apart")
	fresh()
	rows = frappe.get_all(
		"Realtime Inbox Item",
		filters={"rule": RATE_RULE},
		fields=["user", "seq", "reference_name", "payload"],
	)
	per_user = defaultdict(lambda: {"sent": [], "summaries": []})
	for row in rows:
		message = json.loads(row.payload)
		if message.get("batch_count"):
			per_user[row.user]["summaries"].append(message)
		else:
			per_user[row.user]["sent"].append(row.reference_name)
	wrong = {}
	for user in listening:
		sent, summaries = per_user[user]["sent"], per_user[user]["summaries"]
		told = Counter(sent)
		for summary in summaries:
			told.update(summary.get("docnames") or [])
		counted = len(sent) + sum(s["batch_count"] for s in summaries)
		# a summary names at most MAX_DOCNAMES documents: then only its count is compared
		whole = all(s["batch_count"] == len(s.get("docnames") or []) for s in summaries)
		if (
			counted != len(events)
			or (whole and set(told) != set(events))
			or any(n > 1 for n in told.values())
		):
			wrong[user] = (
				f"{len(sent)} sent + {[s['batch_count'] for s in summaries]} summarised of {len(events)}"
			)
	example = per_user[listening[0]]
	check(
		f"2a. {len(events)} saves over a limit of {RATE_LIMIT} per {RATE_WINDOW}s through both web nodes: per user, sent + summarised = events, each document once",
		not wrong,
		f"user 1: {len(example['sent'])} sent, summaries {[s['batch_count'] for s in example['summaries']]}"
		+ (f"; wrong: {wrong}" if wrong else ""),
	)
	summaries = sum(len(per_user[u]["summaries"]) for u in listening)
	check(
		f"2b. no batch summarised twice, none lost ({rounds} rounds, the timer and 4 deliver_due runs racing at each due time)",
		not wrong and all(len(per_user[u]["summaries"]) >= rounds for u in listening),
		f"{summaries} summaries for {len(listening)} users: one per burst, and for the stream one more "
		"when a save came after its batch was taken",
	)
	seqs = {(row.user, row.seq) for row in rows}
	shown = Counter((r["user"], r["seq"]) for desk in desks for r in desk.shown() if r["source"] == RATE_RULE)
	check(
		"2c. the desks on both nodes show each of these messages and summaries once",
		set(shown) == {s for s in seqs if s[0] in listening} and all(n == 1 for n in shown.values()),
		f"{sum(shown.values())} shown, {len(seqs)} in the inboxes",
	)


def escalation(nodes: Nodes, runs: Runs, users: list[str], rounds: int) -> None:
	"""3. `escalate_due` twice at once (a run on each worker): one email per unread message."""
	import frappe
	from frappe.utils import add_to_date, now_datetime

	from rt_studio.delivery.escalation import ESCALATE_CHUNK

	listening = users[:DESKS]
	docs, seen_runs = [], []
	for r in race_rounds(rounds, seen_runs):
		tag = secrets.token_hex(3)
		# one round more than one claim's worth (ESCALATE_CHUNK): the runs' chunks interleave
		count = 8 if r != rounds - 1 else ESCALATE_CHUNK // len(listening) + 4
		names = nodes.burst("ToDo", [{"description": f"{ESCALATE_RULE} {tag} {i}"} for i in range(count)])
		docs += names
		ids = enqueue_at_once(
			"rt_studio.delivery.escalation.escalate_due", 2, now=add_to_date(now_datetime(), minutes=2)
		)

		def decided():
			rows = inbox_rows(ESCALATE_RULE, names, ("escalation",))
			return len(rows) == len(names) * len(listening) and all(row.escalation for row in rows)

		faults.wait_for(decided, WAIT_SECONDS, every=0.5)
		seen_runs.append(runs.wait(ids))
		say(f"   escalation round {r + 1}: {describe(seen_runs[-1])}")
	time.sleep(1)
	rows = inbox_rows(ESCALATE_RULE, docs, ("reference_name", "user", "escalation"))
	fresh()
	queued = frappe.db.sql(
		"""select q.reference_name, r.recipient from `tabEmail Queue` q
		join `tabEmail Queue Recipient` r on r.parent = q.name
		where q.reference_doctype = 'ToDo' and q.reference_name in %(docs)s""",
		{"docs": docs},
	)
	emails = Counter(queued)
	owed = {(doc, user) for doc in docs for user in listening}
	lost, twice = lost_and_twice(emails, owed)
	outcomes = Counter(row.escalation for row in rows)
	check(
		f"3. {len(owed)} unread messages, escalate_due run twice at once per round: one email each",
		not lost and not twice and outcomes == Counter({"Sent": len(owed)}),
		f"Email Queue rows {sum(emails.values())}: lost {lost}, twice {twice}; items {dict(outcomes)}",
	)
	raced("3b", "escalate_due", seen_runs)


def race_rounds(rounds: int, seen_runs: list):
	"""`rounds` round numbers, and up to two more until the runs of a round were on both workers at once."""
	for r in range(rounds + 2):
		if r >= rounds and any(overlapped(runs_) for runs_ in seen_runs):
			return
		yield r


def lost_and_twice(counts: Counter, owed: set) -> tuple[int, int]:
	"""Of `owed` keys, how many `counts` lacks; how many it has more than once, or not owed at all."""
	lost = sum(1 for key in owed if not counts.get(key))
	twice = sum(n - 1 for n in counts.values() if n > 1) + sum(
		n for key, n in counts.items() if key not in owed
	)
	return lost, twice


def raced(label: str, method: str, seen_runs: list) -> None:
	"""Whether the race was run: in some round the two runs were on both workers at the same time."""
	both = sum(1 for runs_ in seen_runs if overlapped(runs_))
	check(
		f"{label}. the two {method} runs of {both} of {len(seen_runs)} rounds were on worker and worker2 at the same time",
		both > 0,
		" | ".join(describe(runs_) for runs_ in seen_runs),
	)


def time_rule(nodes: Nodes, runs: Runs, users: list[str], rounds: int) -> None:
	"""4. `run_time_rules` twice at once over Events that came due: one message each."""
	import frappe
	from frappe.utils import add_to_date, now_datetime

	from rt_studio.schedule import LOG_DOCTYPE, last_run, set_last_run

	listening = users[:DESKS]
	events, seen_runs = [], []
	for r in race_rounds(rounds, seen_runs):
		tag = secrets.token_hex(3)
		due = add_to_date(now_datetime(), seconds=3)
		docs = [
			{"subject": f"{TIME_RULE} {tag} {i}", "starts_on": str(due), "event_type": "Public"}
			for i in range(8)
		]
		names = nodes.burst("Event", docs)
		events += names
		time.sleep(max(0, (due - now_datetime()).total_seconds() + 1))
		fresh()
		before = add_to_date(due, minutes=-1)
		if (last_run() or before) > before:  # as a run that comes late: both look back past the due time
			set_last_run(before)
			frappe.db.commit()
		ids = enqueue_at_once("rt_studio.schedule.run_time_rules", 2)
		seen_runs.append(runs.wait(ids))
		faults.wait_for(
			lambda: len(inbox_rows(TIME_RULE, names, ("name",))) >= len(names) * len(listening), 30
		)
		say(f"   time rule round {r + 1}: {describe(seen_runs[-1])}")
	time.sleep(1)
	counts = Counter(
		(row.reference_name, row.user) for row in inbox_rows(TIME_RULE, events, ("reference_name", "user"))
	)
	owed = {(e, u) for e in events for u in listening}
	lost, twice = lost_and_twice(counts, owed)
	logs = Counter(frappe.get_all(LOG_DOCTYPE, filters={"rule": TIME_RULE}, pluck="reference_name"))
	check(
		f"4. {len(events)} Events come due, run_time_rules twice at once per round: one message per Event and user",
		not lost and not twice and all(logs.get(e) == 1 for e in events),
		f"{sum(counts.values())} of {len(owed)} messages: lost {lost}, twice {twice}; due log rows "
		f"{sum(logs.values())}",
	)
	raced("4b", "run_time_rules", seen_runs)


def mutes_and_rules(nodes: Nodes, benches: list, passwords: dict, users: list[str], rounds: int) -> None:
	"""5. A mute, an unmute, a rule change through one web node; the next save through the other."""
	import frappe

	listening = users[:DESKS]
	desk = [closing(faults.Session(benches[i], listening[i], passwords[listening[i]])) for i in range(2)]
	wrong = []

	def save_through(node: int, label: str, muted: str | None, on: bool = True, subject: str = "") -> None:
		name = nodes.admin(node).insert("ToDo", {"description": f"{MUTE_RULE} {label}"})
		rows = inbox_rows(MUTE_RULE, [name], ("user", "subject"))
		got = {row.user for row in rows}
		want = {u for u in listening if u != muted} if on else set()
		if got != want or len(rows) != len(got) or any(not row.subject.startswith(subject) for row in rows):
			wrong.append(f"{label}: {len(rows)} items{' (muted one got it)' if muted in got else ''}")

	try:
		save_through(0, "first", None)  # a user mutes a rule from one of its messages
		for r in range(rounds + 1):
			for i, other in (
				(0, 1),
				(1, 0),
			):  # desk i mutes through its node, the save goes through the other
				desk[i].post("rt_studio.api.mute", {"rule": MUTE_RULE})
				save_through(other, f"{r}-{i} muted", listening[i])
				desk[i].post("rt_studio.api.unmute", {"rule": MUTE_RULE})
				save_through(other, f"{r}-{i} unmuted", None)
		mute_wrong = list(wrong)
		check(
			f"5a. a mute or unmute through one web node holds for the next save through the other ({len(mute_wrong) or 'all'} {'wrong' if mute_wrong else 'right'} of {4 * (rounds + 1) + 1})",
			not mute_wrong,
			"; ".join(mute_wrong[:4]),
		)
		wrong.clear()
		admin1 = nodes.admin(0)
		for r in range(rounds + 1):
			put(admin1, "Realtime Rule", MUTE_RULE, {"subject": f"v{r} {{{{ doc.name }}}}"})
			save_through(1, f"{r} changed", None, subject=f"v{r} ")
			put(admin1, "Realtime Rule", MUTE_RULE, {"enabled": 0})
			save_through(1, f"{r} disabled", None, on=False)
			put(admin1, "Realtime Rule", MUTE_RULE, {"enabled": 1})
			save_through(1, f"{r} enabled", None, subject=f"v{r} ")
		check(
			f"5b. a rule changed, disabled, enabled through web node 1 holds for the next save through web node 2 ({3 * (rounds + 1)} saves)",
			not wrong,
			"; ".join(wrong[:4]),
		)
	finally:
		for session in desk:
			session.http.get(f"{session.bench.base}/api/method/frappe.handler.logout", timeout=30)
			session.http.close()
	frappe.db.rollback()


# ---------------------------------------------------------------- the run


def main() -> int:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--rt-home", default=os.environ.get("RT_HOME", "~/.rt-studio"))
	parser.add_argument("--site", default=None, help="default: the bench's demo site (state.env)")
	parser.add_argument("--rounds", type=int, default=2, help="rounds of each race (default 2)")
	args = parser.parse_args()
	bench = faults.Bench(args.rt_home, args.site)
	bench.in_its_python(__file__)
	import frappe

	if not all(bench.pid(name) for name in ("web2", "socketio2", "worker2")):
		sys.exit("two_nodes_exact.py needs two of every server: make the bench with RT_NODES=2 dev/bench-up")
	started = time.time()
	bench.connect()
	second = copy.copy(bench)
	second.base = f"http://{bench.site}:{bench.ports['RT_WEB_PORT'] + 1}"
	second.socket = f"http://{bench.site}:{bench.ports['RT_SOCKETIO_PORT'] + 1}"
	benches = [bench, second]
	say(f"bench {bench.home}, site {bench.site}: web {bench.base} and {second.base}, {args.rounds} rounds")
	clean_up()  # what an interrupted run left
	email_account = False
	desks, nodes = [], None
	try:
		t = time.time()
		passwords = set_up()
		users = crowd_names()
		listening = users[:DESKS]
		desks = [
			faults.Desks(node, {u: passwords[u] for u in listening[i :: len(benches)]})
			for i, node in enumerate(benches)
		]
		nodes = Nodes(benches)
		runs = Runs(bench)
		say(f"   set up in {time.time() - t:.1f}s: {CROWD:,} users, {DESKS} desks on both socket.io nodes")
		crowd(nodes, runs, desks, users, args.rounds)
		rate_limit(nodes, desks, users, args.rounds)
		email_account = add_email_account()
		escalation(nodes, runs, users, args.rounds)
		time_rule(nodes, runs, users, args.rounds)
		mutes_and_rules(nodes, benches, passwords, users, args.rounds)
		fresh()
		errors = frappe.get_all(
			"Realtime Rule", filters={"name": ["in", RULES], "last_error": ["is", "set"]}, pluck="name"
		)
		check(
			"6. no rule recorded an error (a job that failed, or lost its claim and said so)",
			not errors,
			", ".join(errors),
		)
	except Exception as e:
		import traceback

		traceback.print_exc()
		check("setup and run", False, f"{type(e).__name__}: {e}")
	finally:
		for desk in desks:
			try:
				desk.finish()
			except Exception as e:
				say(f"   a desk did not finish: {e!r}")
		if nodes:
			nodes.close()
		bench.connect()
		clean_up()
		if email_account:
			say(f"   removed the Email Account {EMAIL_ACCOUNT!r} this run added")
		left = frappe.db.count("User", {"name": ["like", f"{CROWD_PREFIX}%"]})
		say(f"   cleaned up: {left} users left; {time.time() - started:.0f}s in all")
	print(f"{'ALL CHECKS PASSED' if not failures else f'{failures} CHECK(S) FAILED'}", flush=True)
	return 1 if failures else 0


if __name__ == "__main__":
	sys.exit(main())
