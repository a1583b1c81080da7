"""Load: RT Studio under concurrent saves through the bench's gunicorn, with desks listening.

Run it against the dev/bench-up bench (all servers on loopback; it stops by itself):

    python3 benchmarks/load.py [--rt-home ~/.rt-studio] [--clients 8] [--seconds 15] [--rounds 3]
                               [--desks 8] [--nodes 1|2] [--short]

(it runs itself again with the bench's Python). `--clients` HTTP clients (each a desk user logged
in over /api/method/login, as a browser would) insert a ToDo allocated to themselves and then save
it again, as fast as the server answers, for `--seconds`; `--desks` socket.io clients
(benchmarks/faults_listen.js: what the desk runtime does, `missed()` on reconnect included) listen
as those users. Three variants, interleaved in `--rounds` rounds (the order turns each round):
- none: no Realtime Rule and no Notification on ToDo;
- rules: 10 Realtime Rules on ToDo (5 New, 5 Save) alerting `allocated_to`;
- notifications: 10 Frappe Notifications on ToDo (5 New, 5 Save) to `allocated_to` (System
  Notification), the same templates: the baseline to beat.
With `--nodes 2` (a bench made with RT_NODES=2) every other client saves through the second web
server and every other desk listens on the second socket.io server; both RQ workers take the jobs.
It prints saves per second per variant (median over the rounds) and the ratios to `none`; for
`rules`, the latency of each message from its publish on Redis (right after the commit) to the
desk's socket, p50 / p95 / p99; and the proof: every message of a committed save shown exactly once
per desk (live or through `missed()`), one inbox row per message, seqs strictly increasing per user
in the order the inbox holds them: `LOAD lost N, twice M`. Exit 1 if N or M is not 0. The
Notifications' make_notification_logs jobs still queued at the end are dropped, not run: left in
RQ they kept the bench's workers (and the site's publishing) busy for minutes after a full run.
"""

import argparse
import copy
import json
import os
import secrets
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faults  # the bench, HTTP sessions and the desks' listener

PREFIX = "rt-load"
DESK_ROLE = "RT Load Desk"
RULES_PER_EVENT = 5
VARIANTS = ("none", "rules", "notifications")
#: How long to wait for the last messages of a variant after its saves stopped, at most.
SETTLE_SECONDS = 30


def say(*parts) -> None:
	print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the site


def desk_users(count: int) -> dict[str, str]:
	"""`count` desk users (new random passwords); {user: password}."""
	import frappe

	faults.ensure_role(DESK_ROLE)
	passwords = {}
	for i in range(count):
		user = f"{PREFIX}-desk-{i:02d}@example.com"
		passwords[user] = f"Lo-{secrets.token_urlsafe(12)}"
		faults.ensure_user(user, [DESK_ROLE], passwords[user])
	frappe.db.commit()
	return passwords


def make_rules() -> list[str]:
	"""The rules variant's 10 Realtime Rules (disabled until their variant runs)."""
	import frappe

	names = []
	for event in ("New", "Save"):
		for i in range(RULES_PER_EVENT):
			name = f"{PREFIX} {event.lower()} {i}"
			if frappe.db.exists("Realtime Rule", name):
				frappe.delete_doc("Realtime Rule", name, force=True)
			frappe.get_doc(
				{
					"doctype": "Realtime Rule",
					"rule_name": name,
					"enabled": 0,
					"document_type": "ToDo",
					"event": event,
					"condition": "(doc.description or '').startswith('rt-load')",
					"audience": [{"audience_type": "User Field", "user_field": "allocated_to"}],
					"exclude_actor": 0,
					"subject": "{{ doc.description }}",
					"message": "ToDo {{ doc.name }}: {{ doc.description }}",
					"display": "Alert",
				}
			).insert()
			names.append(name)
	frappe.db.commit()
	return names


def make_notifications() -> list[str]:
	"""The notifications variant's 10 Frappe Notifications (disabled until their variant runs)."""
	import frappe

	names = []
	for event in ("New", "Save"):
		for i in range(RULES_PER_EVENT):
			name = f"RT Load {event} {i}"
			if frappe.db.exists("Notification", name):
				frappe.delete_doc("Notification", name, force=True)
			frappe.get_doc(
				{
					"doctype": "Notification",
					"name": name,
					"subject": "{{ doc.description }}",
					"document_type": "ToDo",
					"event": event,
					"channel": "System Notification",
					"condition": "(doc.description or '').startswith('rt-load')",
					"recipients": [{"receiver_by_document_field": "allocated_to"}],
					"message": "ToDo {{ doc.name }}: {{ doc.description }}",
					"enabled": 0,
				}
			).insert()
			names.append(name)
	frappe.db.commit()
	return names


def switch(variant: str, rules: list[str], notifications: list[str]) -> None:
	"""Enable exactly the variant's rules or notifications, committed (the rule cache follows)."""
	import frappe

	for name in rules:
		frappe.get_doc("Realtime Rule", name).db_set("enabled", int(variant == "rules"))
	for name in notifications:
		frappe.get_doc("Notification", name).db_set("enabled", int(variant == "notifications"))
	frappe.db.commit()
	frappe.cache.hdel("notifications", "ToDo")  # what Notification.on_update does
	from rt_studio import rule_cache

	rule_cache.invalidate()
	frappe.db.commit()


# ---------------------------------------------------------------- the load


class Clients:
	"""`count` HTTP clients, each a desk user, inserting then saving ToDos allocated to themselves
	(what a user without a ToDo role may create)."""

	def __init__(self, benches: list, passwords: dict, count: int, tag: str):
		self.bench, self.tag = benches, tag
		self.users = list(passwords)
		self.passwords = passwords
		self.ops: list[tuple[str, str, str, bool]] = []  # (kind, docname, target, ok)
		self.stopping = threading.Event()
		self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(count)]

	def run(self, seconds: float) -> float:
		started = time.monotonic()
		for thread in self.threads:
			thread.start()
		time.sleep(seconds)
		self.stopping.set()
		for thread in self.threads:
			thread.join()
		return time.monotonic() - started

	def _client(self, n: int) -> None:
		user = target = self.users[n % len(self.users)]
		bench = self.bench[n % len(self.bench)]  # with two web nodes, every other client on each
		with faults.Session(bench, user, self.passwords[user]) as session:
			i = 0
			while not self.stopping.is_set():
				description = f"{PREFIX} {self.tag} {n}-{i}"
				name = session.insert("ToDo", {"description": description, "allocated_to": target})
				self.ops.append(("insert", name or "", target, bool(name)))
				if name:
					ok = self._save(session, name, description + " saved")
					self.ops.append(("save", name, target, ok))
				i += 1

	def _save(self, session, name: str, description: str) -> bool:
		try:
			answer = session.http.put(
				f"{session.bench.base}/api/resource/ToDo/{name}",
				json={"description": description},
				timeout=60,
			)
		except Exception:
			return False
		return answer.status_code == 200

	def saves(self) -> int:
		return sum(1 for _kind, _name, _target, ok in self.ops if ok)


class Published:
	"""RT Studio messages published on the queue Redis's `events` channel: (user, seq) -> when."""

	def __init__(self, bench):
		import redis

		self.site = bench.site
		self.client = redis.Redis(port=bench.ports["RT_REDIS_QUEUE_PORT"], host="127.0.0.1")
		self.pubsub = self.client.pubsub()
		self.pubsub.subscribe("events")
		self.at: dict[tuple[str, int], float] = {}
		self.stopping = threading.Event()
		self.thread = threading.Thread(target=self._read, daemon=True)
		self.thread.start()

	def _read(self) -> None:
		while not self.stopping.is_set():
			message = self.pubsub.get_message(timeout=0.2)
			if not message or message["type"] != "message":
				continue
			t = time.time()
			data = json.loads(message["data"])
			body, room = data.get("message"), data.get("room") or ""
			if data.get("namespace") == self.site and isinstance(body, dict) and body.get("seq"):
				if room.startswith("user:") and str(body.get("rule") or "").startswith(PREFIX):
					self.at.setdefault((room[5:], int(body["seq"])), t)

	def stop(self) -> None:
		self.stopping.set()
		self.thread.join(timeout=5)
		self.pubsub.close()
		self.client.close()


# ---------------------------------------------------------------- one variant, and the proof


def run_variant(benches, passwords, variant, rules, notifications, args, round_no) -> dict:
	switch(variant, rules, notifications)
	tag = f"{variant}-{round_no}-{secrets.token_hex(3)}"
	clients = Clients(benches, passwords, args.clients, tag)
	elapsed = clients.run(args.seconds)
	result = {
		"variant": variant,
		"saves": clients.saves(),
		"seconds": elapsed,
		"tag": tag,
		"ops": clients.ops,
	}
	result["per_second"] = result["saves"] / elapsed
	failed = sum(1 for op in clients.ops if not op[3])
	say(f"   {variant:13} {result['per_second']:7.1f} saves/s ({result['saves']} saves, {failed} failed)")
	return result


def expected_messages(result: dict, rules: list[str]) -> Counter:
	"""(user, rule, docname, event) -> 1 for every message a committed save of the rules variant owes."""
	import frappe

	names = {name for _kind, name, _target, ok in result["ops"] if ok}
	existing = (
		set(frappe.get_all("ToDo", filters={"name": ["in", list(names)]}, pluck="name")) if names else set()
	)
	owed = Counter()
	for kind, name, target, ok in result["ops"]:
		if not ok or name not in existing:
			continue
		event = "New" if kind == "insert" else "Save"
		for rule in rules:
			if rule.startswith(f"{PREFIX} {event.lower()} "):
				owed[(target, rule, name, event)] += 1
	return owed


def proof(shown: list[dict], owed: Counter, published: Published, tag_names: set) -> dict:
	"""lost / twice, latencies, inbox rows and seq order for the rules variant's messages."""
	import frappe

	seen = Counter(
		(r["user"], r["source"], r["about"], r["event"])
		for r in shown
		if str(r.get("source") or "").startswith(PREFIX) and r["about"] in tag_names
	)
	lost = sum(max(0, n - seen[key]) for key, n in owed.items())
	twice = sum(max(0, n - owed[key]) for key, n in seen.items())
	latencies = [
		(r["t"] - published.at[(r["user"], int(r["seq"]))]) * 1000
		for r in shown
		if r["via"] == "live" and (r["user"], int(r["seq"])) in published.at and r["about"] in tag_names
	]
	rows = frappe.get_all(
		"Realtime Inbox Item",
		filters={"reference_doctype": "ToDo", "reference_name": ["in", list(tag_names) or [""]]},
		fields=["user", "seq", "rule", "reference_name", "creation"],
		order_by="creation asc, seq asc",
	)
	rows = [row for row in rows if str(row.rule or "").startswith(PREFIX)]
	by_user = defaultdict(list)
	for row in rows:
		by_user[row.user].append(row.seq)
	unordered = sum(1 for seqs in by_user.values() if len(set(seqs)) != len(seqs))
	return {
		"lost": lost,
		"twice": twice,
		"owed": sum(owed.values()),
		"inbox_rows": len(rows),
		"seq_duplicates": unordered,
		"latencies": latencies,
	}


def percentile(values: list[float], p: float) -> float:
	if not values:
		return float("nan")
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def drop_notification_jobs(site: str) -> int:
	"""Take the notifications variant's make_notification_logs jobs still queued out of RQ: left
	there, they would keep the bench's workers busy (and the site publishing) for minutes after the
	run, for ToDos this script deletes. The number dropped."""
	from frappe.utils.background_jobs import get_queues

	dropped = 0
	for queue in get_queues():
		for job in queue.get_jobs():
			kwargs = job.kwargs or {}
			if kwargs.get("site") == site and "make_notification_logs" in str(kwargs.get("method")):
				job.delete()
				dropped += 1
	return dropped


def clean_up(tags: list[str]) -> None:
	import frappe

	for tag in tags:
		names = frappe.get_all("ToDo", filters={"description": ["like", f"{PREFIX} {tag} %"]}, pluck="name")
		for start in range(0, len(names), 500):
			part = names[start : start + 500]
			frappe.db.delete(
				"Realtime Inbox Item", {"reference_doctype": "ToDo", "reference_name": ["in", part]}
			)
			frappe.db.delete("Notification Log", {"document_type": "ToDo", "document_name": ["in", part]})
			# their Versions too: left behind, every run added hundreds of changes of deleted ToDos
			# that a backtest of a ToDo rule on the site then replays
			frappe.db.delete("Version", {"ref_doctype": "ToDo", "docname": ["in", part]})
			frappe.db.delete("ToDo", {"name": ["in", part]})
		frappe.db.commit()


def main() -> int:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--rt-home", default=os.environ.get("RT_HOME", "~/.rt-studio"))
	parser.add_argument("--site", default=None, help="default: the bench's demo site (state.env)")
	parser.add_argument("--clients", type=int, default=8)
	parser.add_argument("--desks", type=int, default=8)
	parser.add_argument("--seconds", type=float, default=15)
	parser.add_argument("--rounds", type=int, default=3)
	parser.add_argument("--short", action="store_true", help="one round of 5 s per variant, 4 clients")
	parser.add_argument(
		"--nodes",
		type=int,
		choices=(1, 2),
		default=1,
		help="2: clients on both web nodes and desks on both socket.io nodes (RT_NODES=2 dev/bench-up)",
	)
	args = parser.parse_args()
	if args.short:
		args.rounds, args.seconds, args.clients, args.desks = 1, 5, 4, 4
	bench = faults.Bench(args.rt_home, args.site)
	bench.in_its_python(__file__)
	bench.connect()
	say(
		f"bench {bench.home}, site {bench.site}: {args.clients} clients, {args.desks} desks, "
		f"{args.rounds} x {args.seconds:g} s per variant"
	)
	passwords = desk_users(max(args.desks, 2))
	rules, notifications = make_rules(), make_notifications()
	benches = [bench]
	if args.nodes == 2:
		second = copy.copy(bench)
		second.base = f"http://{bench.site}:{bench.ports['RT_WEB_PORT'] + 1}"
		second.socket = f"http://{bench.site}:{bench.ports['RT_SOCKETIO_PORT'] + 1}"
		benches.append(second)
	users = list(passwords)
	desks = [
		faults.Desks(node, {user: passwords[user] for user in users[i :: len(benches)]})
		for i, node in enumerate(benches)
	]
	published = Published(bench)
	results, tags = [], []
	try:
		for round_no in range(args.rounds):
			order = VARIANTS[round_no % 3 :] + VARIANTS[: round_no % 3]
			say(f"-- round {round_no + 1}: {', '.join(order)}")
			for variant in order:
				result = run_variant(benches, passwords, variant, rules, notifications, args, round_no)
				results.append(result)
				tags.append(result["tag"])
		switch("none", rules, notifications)
		owed = Counter()
		names = set()
		for result in results:
			if result["variant"] == "rules":
				owed += expected_messages(result, rules)
				names |= {name for _kind, name, _target, ok in result["ops"] if ok}
		deadline = time.time() + SETTLE_SECONDS
		while time.time() < deadline:
			shown = Counter(
				(r["user"], r["source"], r["about"], r["event"]) for desk in desks for r in desk.shown()
			)
			if all(shown[key] >= n for key, n in owed.items()):
				break
			time.sleep(0.5)
		time.sleep(2)
		records = [record for desk in desks for record in desk.finish()]
		published.stop()
		checked = proof([r for r in records if r["type"] == "shown"], owed, published, names)
	finally:
		switch("none", rules, notifications)
		say(f"   {drop_notification_jobs(bench.site)} Notification jobs still queued, dropped")
		clean_up(tags)
	medians = {v: statistics.median(r["per_second"] for r in results if r["variant"] == v) for v in VARIANTS}
	for variant in VARIANTS:
		ratio = medians[variant] / medians["none"] if medians["none"] else float("nan")
		print(f"{variant:13} {medians[variant]:7.1f} saves/s  {ratio:.2f}x no rules", flush=True)
	if medians["notifications"]:
		print(f"rules / notifications: {medians['rules'] / medians['notifications']:.2f}x", flush=True)
	lat = checked["latencies"]
	print(
		f"latency publish-to-desk ({len(lat)} live messages): p50 {percentile(lat, 50):.1f} ms, "
		f"p95 {percentile(lat, 95):.1f} ms, p99 {percentile(lat, 99):.1f} ms",
		flush=True,
	)
	print(
		f"messages owed {checked['owed']}, inbox rows {checked['inbox_rows']}, "
		f"users with a repeated seq {checked['seq_duplicates']}",
		flush=True,
	)
	bad = (
		checked["lost"]
		or checked["twice"]
		or checked["inbox_rows"] != checked["owed"]
		or checked["seq_duplicates"]
	)
	print(f"LOAD lost {checked['lost']}, twice {checked['twice']}", flush=True)
	return 1 if bad else 0


if __name__ == "__main__":
	sys.exit(main())
