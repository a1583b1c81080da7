"""Fault injection: what desks receive when a server of the bench fails during deliveries.

Run it on a bench of its own (it stops and kills that bench's servers), made by dev/bench-up with
other ports and its own MariaDB, e.g.

    RT_HOME=~/.rt-faults RT_SITE=faults.localhost RT_WEB_PORT=8100 RT_SOCKETIO_PORT=9100 \\
        RT_REDIS_CACHE_PORT=13100 RT_REDIS_QUEUE_PORT=11100 RT_DB_PORT=3307 dev/bench-up
    python3 benchmarks/faults.py --rt-home ~/.rt-faults [--short] [--only SCENARIO]

(it runs itself again with the bench's Python). Each scenario logs in a few desk users, each a
socket.io client that does what the desk runtime does (benchmarks/faults_listen.js: shows each
`seq` once, asks `rt_studio.api.missed(since)` on every reconnect), saves ToDos over HTTP as
Administrator while it breaks a server, and counts per desk and (rule, document, event):
- lost: a message of a save that committed (the document exists) never shown, live or replayed;
- twice: a message shown more often than once, or shown at all when it should not have been (a
  save that failed, a user who muted the rule);
- late: shown more than LATE_SECONDS after the fault ended.
A large audience (worker_kill, queue_redis_restart) is counted in every recipient's inbox
(MariaDB) instead: one Realtime Inbox Item per recipient.

Prints `FAULT <scenario>: lost N, twice M, late K` per scenario (and what it saw on stderr); exits 1
if any N or M is not 0. Processes that a fault leaves dead (a worker whose Redis went away) are
started again, as a supervisor would, and said so.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
#: A message shown more than this long after the fault ended counts as late.
LATE_SECONDS = 10
#: How long to wait for the last messages after the fault ended, at most.
SETTLE_SECONDS = LATE_SECONDS + 20
#: How long a killed delivery may take to be taken up again: RQ never runs a job whose work horse
#: was killed, RT Studio's once-a-minute sweep queues it again once it has committed nothing for
#: 60 s, so up to two scheduler minutes and the rest of the job (its messages count as late).
RECOVERY_SECONDS = 180
DESK_ROLE = "RT Faults Desk"
CROWD_ROLE = "RT Faults Crowd"
CROWD_PREFIX = "rt-faults-crowd-"
RULE = "faults: new ToDo"
CROWD_RULE = "faults: crowd"
ESCALATE_RULE = "faults: escalate"
TIME_RULE = "faults: time"
CHANNEL = "faults channel"
DESKS = ("faults-desk-1@example.com", "faults-desk-2@example.com", "faults-desk-3@example.com")
MUTED = "faults-muted@example.com"
#: The large audience of worker_kill and queue_redis_restart (made once, kept on the bench).
CROWD = 5000
SCENARIOS = ("socketio_restart", "cache_redis_restart", "queue_redis_restart", "mariadb_stop", "worker_kill")
SERVICES = ("web", "socketio", "worker", "scheduler")


def say(*parts) -> None:
	print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the bench


class Bench:
	"""The fault bench: its ports, passwords, processes and a Frappe connection to its site."""

	def in_its_python(self, script: str) -> None:
		"""Run `script` again, with the same arguments, in the bench's Python, unless this Python
		imports Frappe already."""
		try:
			import frappe  # only whether it imports
		except ImportError:
			python = str(self.path / "env" / "bin" / "python")
			os.execv(python, [python, str(Path(script).resolve()), *sys.argv[1:]])

	def __init__(self, rt_home: str, site: str | None):
		self.home = Path(rt_home).expanduser()
		self.path = self.home / "bench"
		conf = json.loads((self.path / "sites" / "common_site_config.json").read_text())
		state = dict(
			line.split("=", 1) for line in (self.home / "state.env").read_text().splitlines() if "=" in line
		)
		self.site = site or state["RT_SITE_NAME"]
		self.admin_password = state["RT_ADMIN_PASSWORD"]
		port = lambda url: int(str(url).rsplit(":", 1)[1])  # noqa: E731
		self.ports = {
			"RT_WEB_PORT": int(conf["webserver_port"]),
			"RT_SOCKETIO_PORT": int(conf["socketio_port"]),
			"RT_REDIS_CACHE_PORT": port(conf["redis_cache"]),
			"RT_REDIS_QUEUE_PORT": port(conf["redis_queue"]),
			"RT_DB_PORT": int(conf.get("db_port") or 3306),
		}
		self.base = f"http://{self.site}:{self.ports['RT_WEB_PORT']}"
		self.socket = f"http://{self.site}:{self.ports['RT_SOCKETIO_PORT']}"

	def refuse_shared(self) -> None:
		if self.ports["RT_DB_PORT"] == 3306 or self.home == Path("~/.rt-studio").expanduser():
			sys.exit(
				f"faults.py stops and kills servers: {self.home} uses the machine's MariaDB (3306) or is the "
				"main bench. Make a bench of its own (dev/bench-up with RT_HOME, RT_DB_PORT and the other "
				"RT_*_PORT variables; see this file's docstring) and pass its --rt-home."
			)

	def proc(self, action: str, name: str) -> None:
		env = {**os.environ, "RT_HOME": str(self.home), "RT_SITE": self.site}
		env.update({key: str(value) for key, value in self.ports.items()})
		done = subprocess.run(
			[str(CHECKOUT / "dev" / "proc"), action, name], env=env, capture_output=True, text=True
		)
		if done.returncode:
			raise RuntimeError(f"dev/proc {action} {name}: {done.stderr.strip() or done.stdout.strip()}")

	def pid(self, name: str) -> int | None:
		try:
			pid = int((self.home / "run" / f"{name}.pid").read_text())
			os.kill(pid, 0)
			return pid
		except (OSError, ValueError):
			return None

	def kill9(self, name: str) -> list[int]:
		"""kill -9 the process, its children (a worker's work horse: RQ puts it in a session of its
		own) and its group; the pids killed."""
		pid = self.pid(name)
		children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
		for child in map(int, children):
			os.kill(child, signal.SIGKILL)
		os.killpg(pid, signal.SIGKILL)
		return [pid, *map(int, children)]

	def revive(self) -> list[str]:
		"""Start the application processes a fault left dead, as a supervisor would; their names."""
		dead = [name for name in SERVICES if self.pid(name) is None]
		for name in dead:
			self.proc("start", name)
		return dead

	def connect(self) -> None:
		"""(Re)connect this process to the site: after MariaDB was stopped the old connection is gone."""
		import frappe

		if getattr(frappe.local, "site", None):
			frappe.destroy()
		os.chdir(self.path / "sites")
		frappe.init(site=self.site, sites_path=".")
		frappe.connect()
		frappe.set_user("Administrator")


# ---------------------------------------------------------------- the site: users and rules


def ensure_role(name: str) -> None:
	import frappe

	if not frappe.db.exists("Role", name):
		frappe.get_doc({"doctype": "Role", "role_name": name, "desk_access": 1}).insert()


def ensure_user(email: str, roles: list[str], password: str) -> None:
	import frappe
	from frappe.utils.password import update_password

	if not frappe.db.exists("User", email):
		frappe.get_doc(
			{
				"doctype": "User",
				"email": email,
				"first_name": email.split("@")[0],
				"send_welcome_email": 0,
				"user_type": "System User",
			}
		).insert()
	user = frappe.get_doc("User", email)
	missing = [role for role in roles if role not in {r.role for r in user.roles}]
	if missing:
		user.add_roles(*missing)
	update_password(email, password)


def ensure_rule(name: str, **fields) -> None:
	import frappe

	if frappe.db.exists("Realtime Rule", name):
		frappe.delete_doc("Realtime Rule", name, force=True)
	frappe.get_doc({"doctype": "Realtime Rule", "rule_name": name, "enabled": 1, **fields}).insert()


def ensure_crowd(count: int) -> list[str]:
	"""`count` users holding CROWD_ROLE (and System Manager, to read every ToDo), inserted in bulk
	and kept between runs."""
	import frappe

	from rt_studio.tests.crowd import Member, forget_cached, insert_crowd

	have = frappe.get_all("User", filters={"name": ["like", f"{CROWD_PREFIX}%"]}, pluck="name")
	if len(have) < count:
		names = [f"{CROWD_PREFIX}{i:05d}@example.com" for i in range(count)]
		new = sorted(set(names) - set(have))
		insert_crowd([Member(name, ("System Manager", CROWD_ROLE)) for name in new])
		forget_cached(new)
		frappe.db.commit()
		have = sorted(set(have) | set(new))
	return sorted(have)[:count]


def set_up(bench: Bench, crowd: int) -> dict:
	"""Roles, desk users (new random passwords), the scenarios' rules, the crowd, an outgoing
	Email Account that sends nowhere. Returns {user: password}."""
	import secrets

	import frappe

	bench.connect()
	ensure_role(DESK_ROLE)
	ensure_role(CROWD_ROLE)
	passwords = {}
	for user in (*DESKS, MUTED):
		passwords[user] = f"Fa-{secrets.token_urlsafe(12)}"
		roles = ["System Manager", DESK_ROLE] + ([CROWD_ROLE] if user in DESKS[:2] else [])
		ensure_user(user, roles, passwords[user])
	common = {"display": "Alert", "exclude_actor": 1, "subject": "{{ doc.name }}"}
	for name, (prefix, audience, fields) in {
		RULE: ("faults ", {"audience_type": "Role", "role": DESK_ROLE}, {}),
		CROWD_RULE: ("faults-crowd ", {"audience_type": "Role", "role": CROWD_ROLE}, {}),
		ESCALATE_RULE: (
			"faults-escalate ",
			{"audience_type": "User", "user": DESKS[0]},
			{"escalate_after_minutes": 1},
		),
	}.items():
		condition = f"doc.description.startswith({prefix!r})"
		ensure_rule(
			name,
			document_type="ToDo",
			event="New",
			condition=condition,
			audience=[audience],
			**fields,
			**common,
		)
	ensure_rule(
		TIME_RULE,
		document_type="Event",
		event="Minutes After",
		datetime_changed="starts_on",
		minutes_offset=0,
		condition='doc.subject.startswith("faults-time ")',
		audience=[{"audience_type": "Role", "role": DESK_ROLE}],
		**common,
	)
	if not frappe.db.exists("Realtime Channel", CHANNEL):
		members = [{"member_type": "Role", "role": DESK_ROLE}]
		frappe.get_doc(
			{"doctype": "Realtime Channel", "channel_name": CHANNEL, "enabled": 1, "members": members}
		).insert()
	if not frappe.db.exists("Email Account", "faults outbox"):
		account = frappe.new_doc("Email Account")
		account.update(
			{
				"email_account_name": "faults outbox",
				"email_id": "faults@example.com",
				"enable_outgoing": 1,
				"default_outgoing": 1,
				"smtp_server": "127.0.0.1",
				"smtp_port": 1,
				"no_smtp_authentication": 1,
			}
		)
		account.db_insert()  # no SMTP login at save: it never sends (the queue keeps its rows)
	frappe.db.commit()
	ensure_crowd(crowd)
	frappe.db.commit()
	frappe.clear_cache()
	# the muted desk mutes the rule itself, as from the desk
	with Session(bench, MUTED, passwords[MUTED]) as session:
		session.post("rt_studio.api.mute", {"rule": RULE})
	return passwords


# ---------------------------------------------------------------- HTTP and desks


class Session:
	"""A logged-in HTTP session of the site."""

	def __init__(self, bench: Bench, user: str, password: str):
		import requests

		self.bench, self.http = bench, requests.Session()
		answer = self.http.post(
			f"{bench.base}/api/method/login", json={"usr": user, "pwd": password}, timeout=30
		)
		answer.raise_for_status()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.http.close()

	def post(self, method: str, data: dict) -> dict:
		answer = self.http.post(f"{self.bench.base}/api/method/{method}", json=data, timeout=30)
		answer.raise_for_status()
		return answer.json()

	def insert(self, doctype: str, doc: dict) -> str | None:
		"""The new document's name, or None when the save failed (or did not answer)."""
		try:
			answer = self.http.post(f"{self.bench.base}/api/resource/{doctype}", json=doc, timeout=60)
		except Exception:
			return None
		return answer.json()["data"]["name"] if answer.status_code == 200 else None


def node_path(bench: Bench) -> str:
	"""A node_modules with socket.io-client: the bench's (dev/test's browser part installs it), or installed there."""
	for home in (bench.home, Path("~/.rt-studio").expanduser()):
		modules = home / "node" / "node_modules"
		if (modules / "socket.io-client").is_dir():
			return str(modules)
	target = bench.home / "node"
	target.mkdir(parents=True, exist_ok=True)
	subprocess.run(
		[
			"npm",
			"install",
			"--silent",
			"--no-audit",
			"--no-fund",
			"--prefix",
			str(target),
			"socket.io-client@4",
		],
		check=True,
	)
	return str(target / "node_modules")


class Desks:
	"""The desk users' socket.io clients (benchmarks/faults_listen.js) and what they showed."""

	def __init__(self, bench: Bench, passwords: dict):
		config = {
			"base": bench.base,
			"socket": bench.socket,
			"site": bench.site,
			"events": ["rt_studio", "rt_studio_channel"],
			"users": [{"user": user, "password": password} for user, password in passwords.items()],
		}
		env = {**os.environ, "FAULTS_LISTEN": json.dumps(config), "NODE_PATH": node_path(bench)}
		self.node = subprocess.Popen(
			["node", str(CHECKOUT / "benchmarks" / "faults_listen.js")],
			env=env,
			stdin=subprocess.PIPE,
			stdout=subprocess.PIPE,
			text=True,
		)
		self.records, self.ready = [], set()
		self.reader = threading.Thread(target=self._read, daemon=True)
		self.reader.start()
		until = time.time() + 60
		while len(self.ready) < len(passwords):
			if time.time() > until or self.node.poll() is not None:
				raise RuntimeError(
					f"desks did not connect: {[r for r in self.records if r['type'] == 'error']}"
				)
			time.sleep(0.1)

	def _read(self) -> None:
		for line in self.node.stdout:
			record = json.loads(line)
			record["t"] /= 1000
			self.records.append(record)
			if record["type"] == "ready":
				self.ready.add(record["user"])

	def shown(self) -> list[dict]:
		return [r for r in list(self.records) if r["type"] == "shown"]

	def finish(self) -> list[dict]:
		self.node.stdin.write("finish\n")
		self.node.stdin.flush()
		self.node.wait(timeout=30)
		self.reader.join(timeout=5)
		return self.records


# ---------------------------------------------------------------- saves during a fault


class Saves:
	"""ToDos saved over HTTP as Administrator by `threads` clients until stopped."""

	def __init__(self, bench: Bench, tag: str, threads: int, pause: float = 0.05):
		self.bench, self.tag, self.threads, self.pause = bench, tag, threads, pause
		self.answered, self.failed, self.stopping = [], 0, threading.Event()
		self.pool = ThreadPoolExecutor(threads)
		self.futures = [self.pool.submit(self._client, n) for n in range(threads)]

	def _client(self, n: int) -> None:
		with Session(self.bench, "Administrator", self.bench.admin_password) as session:
			i = 0
			while not self.stopping.is_set():
				name = session.insert("ToDo", {"description": f"faults {self.tag} {n}-{i}"})
				if name:
					self.answered.append(name)
				else:
					self.failed += 1
					time.sleep(0.2)
				i += 1
				time.sleep(self.pause)

	def stop(self) -> None:
		self.stopping.set()
		for future in self.futures:
			future.result()
		self.pool.shutdown()


def committed(bench: Bench, prefix: str, doctype: str = "ToDo", field: str = "description") -> list[str]:
	"""The documents that exist: what committed, whatever the HTTP answer said."""
	import frappe

	bench.connect()
	return frappe.get_all(doctype, filters={field: ["like", f"{prefix}%"]}, pluck="name")


# ---------------------------------------------------------------- counting


class Tally:
	"""lost / twice / late of one scenario."""

	def __init__(self):
		self.lost = self.twice = self.late = 0
		self.notes: list[str] = []

	def count_desks(self, shown: list[dict], expected: dict, rules: set, fault_end: float) -> None:
		"""`expected`: {user: set of (source, about)} that must be shown once each (source: a rule or a
		channel; about: the document, or a post's text); a message of `rules` (rules or channels) shown
		to a desk that did not expect it counts as twice."""
		times: dict[tuple, list[float]] = {}
		missing, examples = Counter(), set()
		for r in shown:
			if r.get("source") in rules:
				times.setdefault((r["user"], r["source"], r["about"]), []).append(r["t"])
		for user, keys in expected.items():
			for key in keys:
				seen = times.pop((user, *key), [])
				self.lost += not seen
				if not seen:
					missing[user, key[0]] += 1
					examples.add(key[1][:60])
				self.twice += max(0, len(seen) - 1)
				self.late += bool(seen) and min(seen) > fault_end + LATE_SECONDS
		# what is left was not expected at all (a failed save, a muted user, another scenario's doc)
		self.twice += sum(len(seen) for key, seen in times.items() if key[0] in expected)
		if missing:
			self.notes.append(f"lost per (desk, source): {dict(missing)}; about {sorted(examples)[:5]}")
		via = Counter(r["via"] for r in shown if r.get("source") in rules)
		self.notes.append(f"desks: {dict(via)} shown")

	def count_inboxes(self, docname: str, audience: list[str]) -> None:
		"""Each recipient of a large audience: exactly one inbox item about `docname`."""
		import frappe

		rows = frappe.db.sql(
			"select user, count(*) from `tabRealtime Inbox Item` where reference_name = %s and rule = %s "
			"group by user",
			(docname, CROWD_RULE),
		)
		got = dict(rows)
		lost = sum(1 for user in audience if not got.get(user))
		twice = sum(max(0, n - 1) for n in got.values())
		self.lost += lost
		self.twice += twice
		self.notes.append(f"inboxes: {len(got)} of {len(audience)} recipients, {lost} lost, {twice} twice")

	def line(self, scenario: str) -> str:
		return f"FAULT {scenario}: lost {self.lost}, twice {self.twice}, late {self.late}"


def expect_all(docnames, users, rule=RULE) -> dict:
	return {user: {(rule, name) for name in docnames} for user in users}


def wait_for(predicate, seconds: float, every: float = 0.25) -> bool:
	until = time.time() + seconds
	while time.time() < until:
		if predicate():
			return True
		time.sleep(every)
	return predicate()


def settle(desks: Desks, expected: dict, rules: set) -> None:
	"""Wait until every expected message was shown (or SETTLE_SECONDS)."""
	want = sum(len(keys) for keys in expected.values())

	def done():
		got = {(r["user"], r["source"], r["about"]) for r in desks.shown() if r.get("source") in rules}
		return sum(1 for user, keys in expected.items() for key in keys if (user, *key) in got) >= want

	wait_for(done, SETTLE_SECONDS)
	time.sleep(2)  # and whatever would come twice


# ---------------------------------------------------------------- scenarios


def burst_around(bench: Bench, passwords: dict, tag: str, fault, args) -> Tally:
	"""Desks listen, ToDos are saved by 4 clients; after 3 s `fault(tally)` runs; saves go on a few
	seconds after it. Counts what each desk showed of RULE, and of what `fault` returns besides:
	({user: {(source, about)}} expected once each, {sources}) or None."""
	tally = Tally()
	desks = Desks(bench, passwords)
	saves = Saves(bench, tag, threads=2 if args.short else 4)
	time.sleep(3)
	extra, sources = fault(tally) or ({}, set())
	fault_end = time.time()
	dead = bench.revive()
	if dead:
		tally.notes.append(f"started again (dead after the fault): {', '.join(dead)}")
	time.sleep(3 if args.short else 6)
	saves.stop()
	docs = committed(bench, f"faults {tag} ")
	users = [u for u in passwords if u != MUTED]
	expected = {**expect_all(docs, users), MUTED: set()}
	for user, keys in extra.items():
		expected[user] = expected.get(user, set()) | keys
	settle(desks, expected, {RULE, *sources})
	records = desks.finish()
	tally.count_desks([r for r in records if r["type"] == "shown"], expected, {RULE, *sources}, fault_end)
	tally.notes.insert(
		0, f"saves: {len(docs)} committed, {len(saves.answered)} answered 200, {saves.failed} failed"
	)
	reconnects = Counter(r["user"] for r in records if r["type"] == "connect")
	tally.notes.append(f"reconnects per desk: {sorted(n - 1 for n in reconnects.values())}")
	return tally


def socketio_restart(bench: Bench, passwords: dict, args) -> Tally:
	def fault(tally):
		bench.proc("restart", "socketio")

	return burst_around(bench, passwords, f"sio{int(time.time())}", fault, args)


def cache_redis_restart(bench: Bench, passwords: dict, args) -> Tally:
	"""Beside the saves: desk 1 posts to CHANNEL with an idempotency key before the restart and
	retries it after (a client whose first answer timed out): each member shows it once."""
	key, text = f"faults-{time.time()}", f"faults post {time.time()}"

	def post():
		with Session(bench, DESKS[0], passwords[DESKS[0]]) as session:
			return session.post(
				"rt_studio.api.publish", {"channel": CHANNEL, "message": text, "idempotency_key": key}
			)

	def fault(tally):
		post()
		bench.proc("stop", "redis-cache")
		time.sleep(2)
		bench.proc("start", "redis-cache")
		tally.notes.append(f"the post retried after the restart answered {post()['message']}")
		# every member, the poster and the user who muted the rule (not the channel) too
		return {user: {(CHANNEL, text)} for user in passwords}, {CHANNEL}

	return burst_around(bench, passwords, f"cache{int(time.time())}", fault, args)


def crowd_delivery(bench: Bench, tag: str) -> str:
	"""Save one ToDo for the crowd rule; its name."""
	with Session(bench, "Administrator", bench.admin_password) as session:
		name = session.insert("ToDo", {"description": f"faults-crowd {tag}"})
	if not name:
		raise RuntimeError("the crowd ToDo could not be saved")
	return name


def inbox_count(docname: str) -> int:
	import frappe

	frappe.db.rollback()  # a new snapshot
	return frappe.db.count("Realtime Inbox Item", {"reference_name": docname, "rule": CROWD_RULE})


def queue_redis_restart(bench: Bench, passwords: dict, args) -> Tally:
	crowd = ensure_audience(bench)
	holder = {}

	def fault(tally):
		# the crowd's delivery job is queued (or running) when the queue Redis stops
		holder["crowd"] = crowd_delivery(bench, f"queue{int(time.time())}")
		bench.proc("stop", "redis-queue")
		tally.notes.append(f"crowd inbox rows when the queue Redis stopped: {inbox_count(holder['crowd'])}")
		time.sleep(2)
		bench.proc("start", "redis-queue")

	tally = burst_around(bench, passwords, f"queue{int(time.time())}", fault, args)
	bench.connect()
	wait_for(lambda: inbox_count(holder["crowd"]) >= len(crowd), SETTLE_SECONDS)
	tally.count_inboxes(holder["crowd"], crowd)
	return tally


def ensure_audience(bench: Bench) -> list[str]:
	import frappe

	bench.connect()
	return frappe.get_all(
		"Has Role", filters={"role": CROWD_ROLE, "parenttype": "User"}, pluck="parent", distinct=True
	)


def mariadb_stop(bench: Bench, passwords: dict, args) -> Tally:
	"""Saves through a 10 s MariaDB outage; escalation and time-rule runs across it."""
	import frappe
	from frappe.utils import add_to_date, now_datetime

	tag = f"db{int(time.time())}"
	bench.connect()
	# escalation: two unread messages that come due during the outage
	with Session(bench, "Administrator", bench.admin_password) as session:
		escalated = [session.insert("ToDo", {"description": f"faults-escalate {tag} {i}"}) for i in range(2)]
		# time rule: two Events whose Minutes After (0) message comes due during the outage
		starts = add_to_date(now_datetime(), seconds=6)
		events = [
			session.insert(
				"Event",
				{"subject": f"faults-time {tag} {i}", "starts_on": str(starts), "event_type": "Public"},
			)
			for i in range(2)
		]
	outage = {}

	def fault(tally):
		outage["start"] = now_datetime()
		bench.proc("stop", "mariadb")
		time.sleep(10)
		bench.proc("start", "mariadb")

	tally = burst_around(bench, passwords, tag, fault, args)
	# what the scheduler would do after the outage, run twice at once, beside the bench's own scheduler
	bench.connect()
	from rt_studio.delivery.escalation import escalate_due
	from rt_studio.schedule import run_time_rules

	later = add_to_date(now_datetime(), minutes=2)

	def runs():
		bench.connect()
		run_time_rules()
		escalate_due(now=later)
		frappe.db.commit()

	with ThreadPoolExecutor(2) as pool:
		for future in [pool.submit(runs) for _ in range(2)]:
			try:
				future.result()
			except Exception as e:
				tally.notes.append(f"a scheduler run failed: {e!r}")
	bench.connect()
	emails = Counter(
		frappe.get_all("Email Queue", filters={"reference_name": ["in", escalated]}, pluck="reference_name")
	)
	tally.lost += sum(1 for name in escalated if not emails.get(name))
	tally.twice += sum(max(0, n - 1) for n in emails.values())
	tally.notes.append(f"escalation emails per item: {[emails.get(n, 0) for n in escalated]}")
	# the time rule's messages, counted in desk 1's inbox (each message is kept there once)
	sent = Counter(
		frappe.get_all(
			"Realtime Inbox Item",
			filters={"rule": TIME_RULE, "reference_name": ["in", events], "user": DESKS[0]},
			pluck="reference_name",
		)
	)
	tally.lost += sum(1 for name in events if not sent.get(name))
	tally.twice += sum(max(0, n - 1) for n in sent.values())
	tally.notes.append(f"time-rule messages per Event (desk 1's inbox): {[sent.get(n, 0) for n in events]}")
	return tally


def worker_kill(bench: Bench, passwords: dict, args) -> Tally:
	"""kill -9 the worker (and its work horse) once the first chunk of a crowd delivery committed."""
	tally = Tally()
	crowd = ensure_audience(bench)
	desks = Desks(bench, {user: passwords[user] for user in DESKS[:2]})
	name = crowd_delivery(bench, f"kill{int(time.time())}")
	wait_for(lambda: inbox_count(name) > 0, 60, every=0.02)
	before = inbox_count(name)
	killed = bench.kill9("worker")
	fault_end = time.time()
	tally.notes.append(
		f"killed the worker and its work horse {killed} at {before} of {len(crowd)} inbox rows"
	)
	time.sleep(1)
	bench.proc("start", "worker")
	wait_for(lambda: inbox_count(name) >= len(crowd), RECOVERY_SECONDS)
	expected = expect_all([name], DESKS[:2], rule=CROWD_RULE)
	settle(desks, expected, {CROWD_RULE})
	records = desks.finish()
	tally.count_desks([r for r in records if r["type"] == "shown"], expected, {CROWD_RULE}, fault_end)
	bench.connect()
	tally.count_inboxes(name, crowd)
	return tally


RUNNERS = {name: globals()[name] for name in SCENARIOS}


def main() -> int:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--rt-home", default=os.environ.get("RT_HOME", "~/.rt-faults"))
	parser.add_argument("--site", default=None, help="default: the bench's demo site (state.env)")
	parser.add_argument("--short", action="store_true", help="fewer saves, shorter waits")
	parser.add_argument("--only", choices=SCENARIOS, action="append", help="this scenario (repeatable)")
	args = parser.parse_args()
	bench = Bench(args.rt_home, args.site)
	bench.refuse_shared()
	bench.in_its_python(__file__)
	if not shutil.which("node"):
		sys.exit("faults.py needs node (the desks are socket.io clients)")
	started = time.time()
	say(f"bench {bench.home}, site {bench.site}: setting up")
	passwords = set_up(bench, CROWD)
	failed = False
	for scenario in args.only or SCENARIOS:
		say(f"-- {scenario}")
		t = time.time()
		tally = RUNNERS[scenario](bench, passwords, args)
		for note in tally.notes:
			say(f"   {note}")
		say(f"   ({time.time() - t:.0f} s)")
		print(tally.line(scenario), flush=True)
		failed = failed or bool(tally.lost or tally.twice)
		bench.revive()
	say(f"done in {time.time() - started:.0f} s")
	return 1 if failed else 0


if __name__ == "__main__":
	sys.exit(main())
