"""Limits: the ceiling of each stage a delivered RT Studio message goes through, each measured alone.

Run it against the dev/bench-up bench (loopback only; it stops by itself in about two minutes and
removes what it made):

    python3 benchmarks/limits.py [--rt-home ~/.rt-studio] [--site hd.localhost] [--seconds 2]
                                 [--sockets 10,50,200] [--users 10] [--socketio-port 9001] [--only PART]

(it runs itself again with the bench's Python). The site must have rt_studio installed; the script
writes to it (use a scratch site, not the one other tests use). Four parts, each on its own, so
that one stage's ceiling is not hidden behind another's:

1. redis: numbering and the replay log for `missed()` on the cache Redis (delivery_log.stamp, the
   Lua script a committing transaction runs) and the publish on the queue Redis (outbox.emit, what
   runs after the commit), each with 1, 10 and 1,000 messages per call, one calling process. The
   publishes go to a scratch channel with two subscribers (redis-cli, as many as the bench has
   socket.io nodes), not to `events`: a publish costs Redis the same per subscriber, and a flood on
   `events` would reach every socket.io node of the bench. Besides the rate one client reached, it
   prints the CPU time Redis's main thread spent per message (INFO cpu) and the rate that would
   keep that one thread busy, Redis's own ceiling. That time includes what other clients of the
   bench made Redis do meanwhile (so the ceiling is, if anything, low); the figure net of the rate
   seen in the second before each row is printed beside it, and is only as good as that rate was
   steady.
2. mariadb: the inbox write (inbox.keep: one multi-row INSERT of Realtime Inbox Items per call)
   with 1, 10 and 1,000 rows per statement, each statement its own committed transaction, one
   client; rows per second, and the MariaDB server's CPU time per row (from /proc; with what others
   made it do meanwhile, as for Redis).
3. socketio: one socket.io node's fan-out. `--users` desk users log in over HTTP and open
   sockets (as the desk does: `sid` cookie, `Origin` of the web server) to that node, N/users
   sockets each, for each N of `--sockets`; messages to one user's room each (round robin) are
   published on `events` the way Frappe does (one JSON per message: event, message, room,
   namespace), at a rate that grows by half each step of `--seconds`, until the clients do not
   receive every message within 2 s of the step's end or the 95th percentile of publish-to-socket
   lag passes 250 ms. Prints per step the rate published, the share received within 2 s, the
   deliveries (messages x sockets in the room) per second, the publish-to-socket lag, and the CPU
   share of the node, of the bench's other socket.io node (it parses every message on `events`
   too), of the clients' node process and of the publisher, all on the same cores.
4. web: ToDo inserts over HTTP by one desk user, one after another, through one web server, with no
   rule and with 5 Realtime Rules on ToDo New (5 messages per insert: numbered, kept in the inbox,
   published), twice each, interleaved: inserts per second and the web server's CPU time per insert
   (its workers, from /proc).

Each part also prints what the servers and the whole machine did in the second before it (other
runs on the bench) and, per row, the machine's busy share of all its cores: on a machine whose
cores serve every server, the client and the load generator, a stage's rate is bound by the
machine as soon as it is near 100%, and the server's own CPU per message is the figure to carry
to a machine where that server has a core to itself. It prints, never asserts. Everything it made
(replay logs and counters, inbox rows, rules, desk users and their sessions, ToDos) is deleted at
the end, also after an error.
"""

import argparse
import copy
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faults  # the bench, HTTP sessions
import load  # desk users and the rules of the load benchmark

PREFIX = "rt-limits"
#: Part 4's ToDos: load.py's rules fire on descriptions that start with its prefix.
TAG = f"limits-{secrets.token_hex(3)}"
EVENT = "rt_limits"
PARTS = ("redis", "mariadb", "socketio", "web")
BATCHES = (1, 10, 1000)
#: Distinct users whose replay logs the numbering writes to, round robin (a delivery job's chunk).
LOG_USERS = 1000
#: Rows written per batch size at most, so the clean-up stays short.
MAX_ROWS = 60_000
#: A step keeps up while its clients got every message within DRAIN_SECONDS of its end and the
#: 95th percentile of publish-to-socket lag stays under LAG_MS.
DRAIN_SECONDS = 2
LAG_MS = 250
FIRST_RATE = 500
MAX_RATE = 40_000
#: Seconds each Redis and MariaDB row first watches the server without this script's load.
QUIET = 1.0


def say(*parts) -> None:
	print(*parts, flush=True)


def message(i: int = 0) -> dict:
	"""A message as a rule sends it (the size of load.py's: about 350 bytes of JSON)."""
	return {
		"rule": f"{PREFIX} rule",
		"channel": None,
		"subject": "rt-limits ToDo (Medium)",
		"message": "ToDo <b>abcdef1234</b>: rt-limits description, due never, by someone@example.com",
		"display": "Alert",
		"indicator": "blue",
		"alert_seconds": 5,
		"doctype": "ToDo",
		"docname": f"{PREFIX}-doc",
		"event": "New",
		"fields": {},
		"actor": "someone@example.com",
		"sent_at": "2026-12-06T03:00:00.000000+00:00",
		"i": i,
	}


# ---------------------------------------------------------------- CPU time of a server


def cpu_seconds(pids: list[int]) -> float:
	"""User and system CPU seconds the processes have used (from /proc/PID/stat)."""
	tick = os.sysconf("SC_CLK_TCK")
	total = 0
	for pid in pids:
		try:
			fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
		except OSError:
			continue
		total += int(fields[11]) + int(fields[12])
	return total / tick


def listening_pids(port: int) -> list[int]:
	"""The processes listening on a loopback TCP port (gunicorn: master and workers share it)."""
	out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
	return sorted(
		{int(part.split("=")[1]) for part in out.replace(",", " ").split() if part.startswith("pid=")}
	)


def redis_main_cpu(client) -> float:
	"""CPU seconds of a Redis server's main thread, the one that runs every command."""
	info = client.info("cpu")
	return info["used_cpu_sys_main_thread"] + info["used_cpu_user_main_thread"]


def machine_busy() -> tuple[int, int]:
	"""(busy, total) ticks of every core since boot (from /proc/stat; idle and iowait are not busy)."""
	ticks = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
	return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


class Meter:
	"""The CPU each source used while the block ran, as a share of one core, and the whole machine's
	share of all its cores. Sources: name -> a callable giving that source's CPU seconds so far.

	With `quiet` seconds, each source is first watched that long without this script's load: what
	others (the bench's other runs) used then is `others`, and `net` takes that rate out."""

	def __init__(self, quiet: float = 0, **sources):
		self.quiet, self.sources = quiet, sources

	def __enter__(self):
		self.others = dict.fromkeys(self.sources, 0.0)
		if self.quiet:
			first, t = {name: source() for name, source in self.sources.items()}, time.perf_counter()
			time.sleep(self.quiet)
			took = time.perf_counter() - t
			self.others = {name: (source() - first[name]) / took for name, source in self.sources.items()}
		self.before = {name: source() for name, source in self.sources.items()}
		self.machine_before = machine_busy()
		self.started = time.perf_counter()
		return self

	def __exit__(self, *exc):
		self.took = time.perf_counter() - self.started
		self.used = {name: source() - self.before[name] for name, source in self.sources.items()}
		busy, total = machine_busy()
		self.machine = (busy - self.machine_before[0]) / max(1, total - self.machine_before[1])

	def share(self, name: str) -> float:
		"""Of one core, 0..1."""
		return self.used[name] / self.took

	def net(self, name: str) -> float:
		"""CPU seconds the source used less what others used at the rate seen in the quiet moment."""
		return max(self.used[name] - self.others[name] * self.took, 1e-6)


def baseline(**sources) -> str:
	"""What the servers and the machine did in the second before a part (other runs on the bench)."""
	with Meter(**sources) as idle:
		time.sleep(1)
	shares = ", ".join(f"{name} {idle.share(name) * 100:.0f}%" for name in sources)
	return f"   before it, without this script's load: {shares}; machine {idle.machine * 100:.0f}% busy"


# ---------------------------------------------------------------- 1. Redis


def part_redis(bench, seconds: float) -> None:
	import frappe
	import redis

	from rt_studio.delivery import delivery_log, outbox

	say(f"\n1. Redis: numbering + replay log (cache Redis), publish (queue Redis); {seconds:g} s per row")
	cache = redis.Redis(port=bench.ports["RT_REDIS_CACHE_PORT"], host="127.0.0.1")
	queue = redis.Redis(port=bench.ports["RT_REDIS_QUEUE_PORT"], host="127.0.0.1")
	say(baseline(cache_redis=lambda: redis_main_cpu(cache), queue_redis=lambda: redis_main_cpu(queue)))
	users = [f"{PREFIX}-log-{i:04d}@example.com" for i in range(LOG_USERS)]
	try:
		for batch in BATCHES:
			sent, calls, at = 0, 0, 0
			with Meter(QUIET, redis=lambda: redis_main_cpu(cache)) as meter:
				while time.perf_counter() - meter.started < seconds:
					entries = []
					for _ in range(batch):
						entries.append((users[at], message(sent)))
						at, sent = (at + 1) % LOG_USERS, sent + 1
					delivery_log.stamp(entries)
					calls += 1
			report_redis("stamp  ", batch, sent, calls, meter)
	finally:
		pipe = cache.pipeline(transaction=False)
		for user in users:
			pipe.delete(*delivery_log._user_keys(user))
		pipe.execute()

	channel = f"{PREFIX}:{secrets.token_hex(4)}"
	subscribers = [
		subprocess.Popen(
			["redis-cli", "-p", str(bench.ports["RT_REDIS_QUEUE_PORT"]), "subscribe", channel],
			stdout=subprocess.DEVNULL,
			stderr=subprocess.DEVNULL,
		)
		for _ in range(2)
	]
	original = outbox.get_redis_connection_without_auth
	outbox.get_redis_connection_without_auth = lambda: Redirected(original(), channel)
	try:
		while queue.pubsub_numsub(channel)[0][1] < len(subscribers):
			time.sleep(0.05)
		for batch in BATCHES:
			messages = [(EVENT, message(i), f"user:{users[i % LOG_USERS]}") for i in range(batch)]
			sent, calls = 0, 0
			with Meter(QUIET, redis=lambda: redis_main_cpu(queue)) as meter:
				while time.perf_counter() - meter.started < seconds:
					outbox.emit(messages)
					sent, calls = sent + batch, calls + 1
			report_redis("publish", batch, sent, calls, meter)
	finally:
		outbox.get_redis_connection_without_auth = original
		for process in subscribers:
			process.terminate()
			process.wait(timeout=10)
	say(f"   ({frappe.local.site}: replay logs of {LOG_USERS} scratch users deleted)")


class Redirected:
	"""The queue Redis connection outbox.emit gets, its `events` publishes sent to a scratch channel."""

	def __init__(self, connection, channel: str):
		self.connection, self.channel = connection, channel

	def pipeline(self, **kwargs):
		pipe = self.connection.pipeline(**kwargs)
		publish = pipe.publish
		pipe.publish = lambda _channel, data: publish(self.channel, data)
		return pipe


def report_redis(what: str, batch: int, sent: int, calls: int, meter: Meter) -> None:
	used = max(meter.used["redis"], 1e-6)
	say(
		f"   {what} {batch:5,} msgs/call: {sent / meter.took:7,.0f} msgs/s from one client"
		f" ({calls / meter.took:6,.0f} calls/s); Redis main thread {meter.share('redis') * 100:3.0f}% busy,"
		f" {used / sent * 1e6:5.1f} us/msg ({meter.net('redis') / sent * 1e6:4.1f} net of others'"
		f" {meter.others['redis'] * 100:2.0f}% before): ceiling {sent / used:7,.0f} msgs/s;"
		f" machine {meter.machine * 100:3.0f}% busy"
	)


# ---------------------------------------------------------------- 2. MariaDB


def part_mariadb(bench, seconds: float) -> None:
	import frappe

	from rt_studio.delivery import inbox

	pid_file = frappe.db.sql("select @@pid_file")[0][0]
	server = [int(Path(pid_file).read_text().split()[0])]
	say(f"\n2. MariaDB: inbox rows (inbox.keep), each statement committed; {seconds:g} s per row")
	say(
		"   innodb_flush_log_at_trx_commit="
		+ str(frappe.db.sql("select @@innodb_flush_log_at_trx_commit")[0][0])
		+ f", {frappe.db.count(inbox.DOCTYPE):,} rows in the table before"
	)
	say(baseline(mariadbd=lambda: cpu_seconds(server)))
	seq = 10**12
	try:
		for batch in BATCHES:
			written, statements = 0, 0
			with Meter(QUIET, mariadbd=lambda: cpu_seconds(server)) as meter:
				while time.perf_counter() - meter.started < seconds and written < MAX_ROWS:
					entries = []
					for i in range(batch):
						user = f"{PREFIX}-inbox-{(seq + i) % 1000:03d}@example.com"
						entries.append((user, {**message(i), "seq": seq + i}))
					seq += batch
					inbox.keep(entries)
					frappe.db.commit()
					written, statements = written + batch, statements + 1
			used = max(meter.used["mariadbd"], 1e-6)
			say(
				f"   {batch:5,} rows/INSERT: {written / meter.took:6,.0f} rows/s, {statements / meter.took:5,.0f}"
				f" commits/s from one client; mariadbd {meter.share('mariadbd') * 100:3.0f}% of a core,"
				f" {used / written * 1e6:5.1f} us/row ({meter.net('mariadbd') / written * 1e6:5.1f} net of others'"
				f" {meter.others['mariadbd'] * 100:2.0f}% before): {written / used:6,.0f} rows per CPU second;"
				f" machine {meter.machine * 100:3.0f}% busy"
			)
	finally:
		frappe.db.rollback()
		deleted = 0
		while True:
			names = frappe.get_all(
				inbox.DOCTYPE, filters={"reference_name": f"{PREFIX}-doc"}, pluck="name", limit=5000
			)
			if not names:
				break
			frappe.db.delete(inbox.DOCTYPE, {"name": ["in", names]})
			frappe.db.commit()
			deleted += len(names)
		say(f"   ({deleted:,} inbox rows deleted)")


# ---------------------------------------------------------------- 3. one socket.io node

LISTEN_JS = r"""
"use strict";
const { io } = require(process.env.SOCKET_IO_CLIENT || "socket.io-client");
const cfg = JSON.parse(process.env.LIMITS_LISTEN);
const out = (r) => process.stdout.write(JSON.stringify(r) + "\n");
let sockets = [], received = 0, lags = [], disconnects = 0;

async function login(user, password) {
	const res = await fetch(`${cfg.base}/api/method/login`, {
		method: "POST",
		headers: { "Content-Type": "application/json", Accept: "application/json" },
		body: JSON.stringify({ usr: user, pwd: password }),
	});
	const sid = res.headers.getSetCookie().map((c) => /(?:^|;\s*)sid=([^;]*)/.exec(c)).find((m) => m && m[1] !== "Guest");
	if (!res.ok || !sid) throw new Error(`login as ${user}: HTTP ${res.status}`);
	return sid[1];
}

function open(sid) {
	return new Promise((resolve, reject) => {
		const socket = io(`${cfg.socket}/${cfg.site}`, {
			transports: ["websocket"], reconnection: false, forceNew: true,
			extraHeaders: { Cookie: `sid=${sid}`, Origin: cfg.base },
		});
		socket.on(cfg.event, (m) => { received++; if (lags.length < 500000) lags.push(Date.now() - m.t); });
		socket.on("disconnect", () => disconnects++);
		socket.once("connect", () => resolve(socket));
		socket.once("connect_error", (e) => reject(new Error(`socket.io: ${e.message}`)));
	});
}

async function connect(count) {
	for (const s of sockets) s.close();
	sockets = [];
	const sids = [];
	for (const { user, password } of cfg.users) sids.push(await login(user, password));
	const wanted = [];
	for (let i = 0; i < count; i++) wanted.push(sids[i % sids.length]);
	for (let i = 0; i < wanted.length; i += 20) sockets.push(...(await Promise.all(wanted.slice(i, i + 20).map(open))));
	disconnects = 0;
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.round((p / 100) * (sorted.length - 1)))] : null);

require("readline").createInterface({ input: process.stdin }).on("line", async (line) => {
	const [command, arg] = line.trim().split(" ");
	try {
		if (command === "connect") { await connect(Number(arg)); out({ ok: true, sockets: sockets.length }); }
		else if (command === "reset") { received = 0; lags = []; out({ ok: true }); }
		else if (command === "report") {
			const sorted = lags.slice().sort((a, b) => a - b);
			out({ received, p50: pct(sorted, 50), p95: pct(sorted, 95), max: pct(sorted, 100), disconnects });
		} else if (command === "finish") { for (const s of sockets) s.close(); out({ ok: true }); process.exit(0); }
	} catch (e) { out({ error: String(e && e.stack ? e.stack : e) }); }
});
out({ ok: true });
"""


class Listener:
	"""The socket.io clients: one node process holding every socket, driven over stdin/stdout."""

	def __init__(self, bench, socket_url: str, passwords: dict):
		self.script = tempfile.NamedTemporaryFile("w", suffix=".js", delete=False)
		self.script.write(LISTEN_JS)
		self.script.close()
		config = {
			"base": bench.base,
			"socket": socket_url,
			"site": bench.site,
			"event": EVENT,
			"users": [{"user": user, "password": password} for user, password in passwords.items()],
		}
		env = {**os.environ, "LIMITS_LISTEN": json.dumps(config), "NODE_PATH": faults.node_path(bench)}
		self.process = subprocess.Popen(
			["node", self.script.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
		)
		self.answer()

	def ask(self, command: str) -> dict:
		self.process.stdin.write(command + "\n")
		self.process.stdin.flush()
		return self.answer()

	def answer(self) -> dict:
		line = self.process.stdout.readline()
		if not line:
			raise RuntimeError("the socket.io clients' process ended")
		answer = json.loads(line)
		if "error" in answer:
			raise RuntimeError(answer["error"])
		return answer

	def close(self) -> None:
		try:
			if self.process.poll() is None:
				self.ask("finish")
		finally:
			self.process.wait(timeout=10)
			os.unlink(self.script.name)


def publish_step(queue, site: str, users: list[str], rate: float, seconds: float) -> tuple[int, float]:
	"""Publish `rate` messages a second for `seconds` on `events`, as Frappe's emit_via_redis does,
	each to the next user's room; in a pipeline of what is due. (messages sent, seconds taken)"""
	total, sent, started = int(rate * seconds), 0, time.perf_counter()
	while sent < total:
		due = min(total, int(rate * (time.perf_counter() - started)) + 1)
		if due <= sent:
			time.sleep(0.005)
			continue
		pipe = queue.pipeline(transaction=False)
		now_ms = time.time() * 1000
		for i in range(sent, due):
			body = {"event": EVENT, "message": {**message(i), "t": now_ms}}
			body.update(room=f"user:{users[i % len(users)]}", namespace=site)
			pipe.publish("events", json.dumps(body))
		pipe.execute()
		sent = due
	return sent, time.perf_counter() - started


def part_socketio(bench, args, passwords: dict) -> None:
	import redis

	port = args.socketio_port or bench.ports["RT_SOCKETIO_PORT"]
	socket_url = f"http://{bench.site}:{port}"
	node = listening_pids(port)
	others = [pid for other in (9000, 9001) if other != port for pid in listening_pids(other)]
	queue = redis.Redis(port=bench.ports["RT_REDIS_QUEUE_PORT"], host="127.0.0.1")
	users = list(passwords)
	say(
		f"\n3. socket.io: one node ({socket_url}) delivering to N sockets of {len(users)} users, each"
		f" message to one user's room; {args.seconds:g} s per step; CPU as a share of one core"
	)
	say(baseline(node=lambda: cpu_seconds(node), other_node=lambda: cpu_seconds(others)))
	listener = Listener(bench, socket_url, passwords)
	sources = {
		"node": lambda: cpu_seconds(node),
		"other_node": lambda: cpu_seconds(others),
		"clients": lambda: cpu_seconds([listener.process.pid]),
		"publisher": time.process_time,
	}
	try:
		for count in args.sockets:
			listener.ask(f"connect {count}")
			per_room = count / len(users)
			say(f"   N = {count} sockets ({per_room:g} per user room):")
			rate, best = FIRST_RATE, None
			while rate <= MAX_RATE:
				listener.ask("reset")
				with Meter(**sources) as meter:
					sent, took = publish_step(queue, bench.site, users, rate, args.seconds)
				owed = sent * per_room
				deadline = time.perf_counter() + DRAIN_SECONDS
				while (report := listener.ask("report"))[
					"received"
				] < owed and time.perf_counter() < deadline:
					time.sleep(0.1)
				kept_up = report["received"] >= owed and (report["p95"] or 0) <= LAG_MS
				say(
					f"   {'ok  ' if kept_up else 'LAGS'} {sent / took:6,.0f} msgs/s published,"
					f" {report['received'] / owed * 100:5.1f}% received within {DRAIN_SECONDS} s"
					f" ({report['received'] / took:7,.0f} deliveries/s); lag p50 {report['p50']:.0f}"
					f" p95 {report['p95']:.0f} max {report['max']:.0f} ms; node"
					f" {meter.share('node') * 100:3.0f}% ({meter.used['node'] / max(sent, 1) * 1e6:3.0f} us/msg),"
					f" other node {meter.share('other_node') * 100:3.0f}%, clients {meter.share('clients') * 100:3.0f}%,"
					f" publisher {meter.share('publisher') * 100:3.0f}%, machine {meter.machine * 100:3.0f}%"
				)
				if not kept_up:
					break
				best = sent / took
				rate = int(rate * 1.5)
				time.sleep(0.5)
			if best:
				say(f"   -> N = {count}: kept up at {best:,.0f} msgs/s ({best * per_room:,.0f} deliveries/s)")
	finally:
		listener.close()


# ---------------------------------------------------------------- 4. the web server


def part_web(bench, args, passwords: dict) -> None:
	import frappe

	port = args.web_port or bench.ports["RT_WEB_PORT"]
	web = listening_pids(port)
	node = copy.copy(bench)
	node.base = f"http://{bench.site}:{port}"
	user = next(iter(passwords))
	seconds = args.seconds * 1.5
	others = frappe.db.count("Realtime Rule", {"enabled": 1, "document_type": "ToDo"})
	say(
		f"\n4. web: ToDo inserts over HTTP, one client, one after another, through {node.base}"
		f" ({others} other enabled Realtime Rules on ToDo); {seconds:g} s per row"
	)
	say(baseline(web=lambda: cpu_seconds(web)))
	rules = load.make_rules()  # 5 New and 5 Save: an insert fires the 5 New ones
	try:
		with faults.Session(node, user, passwords[user]) as session:
			for variant in ("none", "rules", "none", "rules"):
				load.switch(variant, rules, [])
				for _ in range(5):  # warm the workers and the rule cache
					session.insert("ToDo", {"description": f"{load.PREFIX} {TAG} warm", "allocated_to": user})
				names, failed = [], 0
				with Meter(QUIET, web=lambda: cpu_seconds(web)) as meter:
					while time.perf_counter() - meter.started < seconds:
						doc = {"description": f"{load.PREFIX} {TAG} {len(names)}", "allocated_to": user}
						name = session.insert("ToDo", doc)
						if name:
							names.append(name)
						failed += not name
				done = len(names)
				frappe.db.rollback()  # a new snapshot: the web server's rows
				kept = frappe.db.count("Realtime Inbox Item", {"reference_name": ["in", names or [""]]})
				label = "no rules" if variant == "none" else f"{load.RULES_PER_EVENT} rules"
				per_insert = meter.used["web"] / max(done, 1) * 1000
				say(
					f"   {label:8}: {done / meter.took:5.1f} inserts/s ({failed} failed, {kept / max(done, 1):.1f}"
					f" messages kept in the inbox per insert); web server {meter.share('web') * 100:3.0f}% of a"
					f" core, {per_insert:4.1f} ms CPU per insert ({meter.net('web') / max(done, 1) * 1000:4.1f} net of"
					f" others' {meter.others['web'] * 100:2.0f}% before); machine {meter.machine * 100:3.0f}% busy"
				)
	finally:
		frappe.db.rollback()
		for name in rules:
			frappe.delete_doc("Realtime Rule", name, force=True)
		frappe.db.commit()


# ---------------------------------------------------------------- set-up, clean-up, main


def clean_up(passwords: dict) -> None:
	"""Part 4's ToDos and their inbox rows, the desk users (load.py's names, made again when it runs)
	with their sessions and replay logs, and their role when nobody else has it."""
	import frappe

	from rt_studio.delivery import delivery_log

	frappe.db.rollback()
	load.clean_up([TAG])
	for user in passwords:
		frappe.cache.delete(*delivery_log._user_keys(user))
		frappe.db.delete("Sessions", {"user": user})
		frappe.delete_doc("User", user, force=True, ignore_permissions=True)
	if not frappe.db.exists("Has Role", {"role": load.DESK_ROLE}):  # nobody else has it
		frappe.delete_doc("Role", load.DESK_ROLE, force=True, ignore_permissions=True)
	frappe.db.commit()
	say(f"\nclean-up: part 4's ToDos and {len(passwords)} desk users deleted")


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--rt-home", default=os.environ.get("RT_HOME", "~/.rt-studio"))
	parser.add_argument(
		"--site", default="hd.localhost", help="a site with rt_studio that others do not test on"
	)
	parser.add_argument("--seconds", type=float, default=2)
	parser.add_argument("--sockets", default="10,50,200", help="socket counts for part 3, comma-separated")
	parser.add_argument("--users", type=int, default=10, help="desk users the sockets belong to")
	parser.add_argument("--socketio-port", type=int, default=None, help="default: the bench's socketio_port")
	parser.add_argument("--web-port", type=int, default=None, help="default: the bench's webserver_port")
	parser.add_argument("--only", choices=PARTS, action="append", help="this part (repeatable)")
	args = parser.parse_args()
	args.sockets = [int(n) for n in args.sockets.split(",")]
	bench = faults.Bench(args.rt_home, args.site)
	bench.in_its_python(__file__)
	import frappe

	bench.connect()
	started, average = time.time(), os.getloadavg()
	say(
		f"RT Studio limits: site {bench.site}, Frappe {frappe.__version__}, {os.cpu_count()} CPUs,"
		f" load average {average[0]:.2f} {average[1]:.2f} {average[2]:.2f} at start"
	)
	parts = args.only or PARTS
	passwords = {}
	try:
		if "redis" in parts:
			part_redis(bench, args.seconds)
		if "mariadb" in parts:
			part_mariadb(bench, args.seconds)
		if "socketio" in parts or "web" in parts:
			passwords = load.desk_users(args.users)
		if "socketio" in parts:
			part_socketio(bench, args, passwords)
		if "web" in parts:
			part_web(bench, args, passwords)
	finally:
		if passwords:
			clean_up(passwords)
		average = os.getloadavg()
		say(
			f"done in {time.time() - started:.0f} s; load average {average[0]:.2f} {average[1]:.2f} {average[2]:.2f}"
			" at the end"
		)
		frappe.destroy()


if __name__ == "__main__":
	main()
