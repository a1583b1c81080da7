"""Shared test helpers: a submittable test DocType, context-manager factories that insert and
clean up users, rules, channels and orders, and two ways to see what RT Studio sends.

- `queued()` reads RT Studio's after-commit outbox (`rt_studio.delivery.outbox.pending`): what a
  commit would publish, without committing.
- `RealtimeListener` subscribes to the Redis `events` channel that `frappe.realtime` publishes
  on: what was really sent, for the tests that commit (and clean up after themselves).
"""

import glob
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import frappe
import redis
from frappe.permissions import AUTOMATIC_ROLES

from rt_studio.delivery import trace
from rt_studio.engine.evaluate import WIRE_KEYS as engine_wire_keys
from rt_studio.tests import IntegrationTestCase

ORDER = "RT Test Order"
ORDER_ITEM = "RT Test Order Item"
TESTER = "RT Tester"  # read/write/submit/cancel on the test DocType
SECRET_READER = "RT Secret Reader"  # may read the permlevel-1 field `secret`
BYSTANDER = "RT Bystander"  # a desk role with no permission on the test DocType
PUBLISHER = "RT Publisher"  # a channel publish role
TEST_ROLES = (TESTER, SECRET_READER, BYSTANDER, PUBLISHER)

#: Every test rule's name starts with this, so leftovers are easy to spot and clean.
RULE_PREFIX = "rt-test-"
#: What TestLivedInSite makes to stand for a site's own rules, channels: not the suite's.
LIVED_PREFIX = "rt-lived-"
WIRE_KEYS = set(engine_wire_keys)

_created_rules: set[str] = set()


# --- the test DocType -------------------------------------------------------------------


def ensure_test_doctypes() -> None:
	"""Create the roles and the custom submittable "RT Test Order" (with a child table) once."""
	for role in TEST_ROLES:
		if not frappe.db.exists("Role", role):
			frappe.get_doc({"doctype": "Role", "role_name": role, "desk_access": 1}).insert(
				ignore_permissions=True
			)
	if not frappe.db.exists("DocType", ORDER_ITEM):
		frappe.get_doc(
			{
				"doctype": "DocType",
				"name": ORDER_ITEM,
				"module": "RT Studio",
				"custom": 1,
				"istable": 1,
				"fields": [
					{"fieldname": "user", "label": "User", "fieldtype": "Link", "options": "User"},
					{"fieldname": "qty", "label": "Qty", "fieldtype": "Int"},
				],
			}
		).insert(ignore_permissions=True)
	if not frappe.db.exists("DocType", ORDER):
		rights = {"read": 1, "write": 1, "create": 1, "delete": 1, "submit": 1, "cancel": 1, "amend": 1}
		frappe.get_doc(
			{
				"doctype": "DocType",
				"name": ORDER,
				"module": "RT Studio",
				"custom": 1,
				"is_submittable": 1,
				"track_changes": 1,
				"autoname": "hash",
				"fields": [
					{"fieldname": "title", "label": "Title", "fieldtype": "Data"},
					{
						"fieldname": "status",
						"label": "Status",
						"fieldtype": "Select",
						"options": "Draft\nOpen\nApproved\nClosed",
						"default": "Draft",
					},
					{"fieldname": "qty", "label": "Qty", "fieldtype": "Int"},
					{
						"fieldname": "owner_user",
						"label": "Owner User",
						"fieldtype": "Link",
						"options": "User",
					},
					{"fieldname": "remarks", "label": "Remarks", "fieldtype": "Data", "allow_on_submit": 1},
					{"fieldname": "secret", "label": "Secret", "fieldtype": "Data", "permlevel": 1},
					{"fieldname": "items", "label": "Items", "fieldtype": "Table", "options": ORDER_ITEM},
					*ORDER_TIME_FIELDS,
				],
				"permissions": [
					{"role": "System Manager", **rights},
					{"role": TESTER, **rights},
					{"role": "System Manager", "permlevel": 1, "read": 1, "write": 1},
					{"role": SECRET_READER, "read": 1},
					{"role": SECRET_READER, "permlevel": 1, "read": 1},
				],
			}
		).insert(ignore_permissions=True)
	_add_missing_fields(ORDER, ORDER_TIME_FIELDS)
	frappe.db.commit()


#: The date fields time rules count from (added to a test DocType made before they existed).
ORDER_TIME_FIELDS = (
	{"fieldname": "due_date", "label": "Due Date", "fieldtype": "Date"},
	{"fieldname": "starts_at", "label": "Starts At", "fieldtype": "Datetime"},
)


def _add_missing_fields(doctype: str, fields) -> None:
	meta = frappe.get_meta(doctype)
	missing = [field for field in fields if not meta.get_field(field["fieldname"])]
	if missing:
		doc = frappe.get_doc("DocType", doctype)
		for field in missing:
			doc.append("fields", field)
		doc.save(ignore_permissions=True)


@contextmanager
def developer_mode():
	"""The site in developer mode for the block, as `bench set-config developer_mode 1` would."""
	before = frappe.conf.developer_mode
	frappe.conf.developer_mode = 1
	try:
		yield
	finally:
		frappe.conf.developer_mode = before


def sweep_leftovers() -> None:
	"""Delete what an interrupted run left committed: test rules, channels, orders, Error Logs.

	Every class cleans up after itself, so at the start of a class nothing of this kind may
	exist (the suite does not support two runs on one site at the same time).
	"""
	with developer_mode():  # standard test rules too
		for doctype in ("Realtime Rule", "Realtime Channel"):
			for prefix in (RULE_PREFIX, LIVED_PREFIX):
				for name in frappe.get_all(doctype, filters={"name": ["like", f"{prefix}%"]}, pluck="name"):
					frappe.delete_doc(doctype, name, force=True, ignore_permissions=True)
					clear_rate_keys(name)
	for folder in glob.glob(shipped_rule_folder(RULE_PREFIX + "*")):
		remove_shipped_rule(folder)
	for name in frappe.get_all(ORDER, pluck="name"):
		purge_order(name)
	frappe.db.delete(
		"Error Log", {"reference_doctype": "Realtime Rule", "reference_name": ["like", f"{RULE_PREFIX}%"]}
	)
	delete_throwaway_users()
	frappe.db.commit()


def shipped_rule_folder(name: str) -> str:
	"""Where RT Studio's own module would ship the rule `name` (see rt_studio/files/standard_rules.py)."""
	return frappe.get_app_path("rt_studio", "rt_studio", "realtime_rule", frappe.scrub(name))


def remove_shipped_rule(folder: str) -> None:
	"""Remove a rule file a test wrote into the app, and the `realtime_rule` folder once empty."""
	shutil.rmtree(folder, ignore_errors=True)
	parent = os.path.dirname(folder)
	if os.path.isdir(parent) and not set(os.listdir(parent)) - {"__init__.py", "__pycache__"}:
		shutil.rmtree(parent)


#: Users earlier versions of this suite made anew on every run (`rt-<label>-<hash>@example.com`);
#: left on a site, they swell the test roles that Role audiences resolve.
THROWAWAY_USER = re.compile(r"rt-[a-z_]+-[0-9a-f]{8}@example\.com")


def delete_throwaway_users() -> None:
	ensure_test_user(MANAGER, {"roles": ["System Manager"]})  # Frappe deletes no user without one
	for name in frappe.get_all("User", filters={"name": ["like", "rt-%@example.com"]}, pluck="name"):
		if THROWAWAY_USER.fullmatch(name) and not name.startswith(RULE_PREFIX):
			reset_test_user(name)
			frappe.delete_doc("User", name, force=True, ignore_permissions=True)


# --- what was sent -----------------------------------------------------------------------


@dataclass
class Sent:
	"""One `publish_realtime` call: socket event, room and message."""

	event: str
	room: str
	message: dict

	@property
	def user(self) -> str | None:
		return self.room[len("user:") :] if self.room.startswith("user:") else None

	@property
	def rule(self) -> str | None:
		return self.message.get("rule")

	@property
	def from_rt_studio(self) -> bool:
		return isinstance(self.message, dict) and "sent_at" in self.message and "rule" in self.message

	@property
	def from_this_suite(self) -> bool:
		"""Sent for a rule or channel the suite made: a lived-in site has rules of its own (on
		ToDo, on Note, to Everyone) that fire on the suite's documents too, and they are not
		what a test asserts about."""
		if not self.from_rt_studio:
			return False
		name = self.rule or self.message.get("channel") or ""
		return name.startswith(RULE_PREFIX)


def queued(rule: str | None = None) -> list[Sent]:
	"""The suite's deliveries waiting in RT Studio's after-commit outbox (what a commit would
	publish), of its own rules and channels only (see Sent.from_this_suite)."""
	log = getattr(frappe.local, "rt_studio_outbox", None) or []
	entries = [Sent(event, room, message) for event, message, room in log]
	return [s for s in entries if s.from_this_suite and (rule is None or s.rule == rule)]


def new_request() -> None:
	"""Forget what lives for one request only, as a new web request would."""
	frappe.local.cache = {}
	frappe.local.rt_studio_index = None
	frappe.local.rt_studio_fired = None


class Action:
	"""One user action run as its own request: `sent` holds the deliveries it queued."""

	def __init__(self):
		self.sent: list[Sent] = []

	def __enter__(self):
		new_request()
		self._start = len(queued())
		return self

	def __exit__(self, *exc):
		self.sent = queued()[self._start :]

	def rules(self) -> dict[str, int]:
		"""{rule: number of deliveries}."""
		counts: dict[str, int] = {}
		for sent in self.sent:
			counts[sent.rule] = counts.get(sent.rule, 0) + 1
		return counts

	def users(self, rule: str | None = None) -> list[str]:
		return sorted(s.user for s in self.sent if s.user and (rule is None or s.rule == rule))


#: Longest wait for anything a test waits on (a Redis message, a second process's answer): a
#: hang becomes a failure that says what it waited for instead of a stuck run.
WAIT_SECONDS = 30


class RealtimeListener:
	"""Subscribed to the Redis `events` channel `frappe.realtime.emit_via_redis` publishes on.

	Every site of every bench that shares this Redis publishes on the same channel: messages
	of other sites are dropped unread and never extend a wait.
	"""

	def __enter__(self):
		self.client = redis.Redis.from_url(frappe.conf.redis_queue)
		self.pubsub = self.client.pubsub()
		self.pubsub.subscribe("events")
		deadline = time.monotonic() + WAIT_SECONDS
		while True:
			message = self.pubsub.get_message(timeout=0.5)
			if message and message["type"] == "subscribe":
				return self
			if time.monotonic() > deadline:
				self.__exit__()
				raise TimeoutError(f"no subscription to Redis `events` within {WAIT_SECONDS} s")

	def __exit__(self, *exc):
		self.pubsub.close()
		self.client.close()

	def received(
		self,
		rule: str | None = None,
		channel: str | None = None,
		quiet: float = 0.5,
		count: int | None = None,
	) -> list[Sent]:
		"""This site's messages published since the last call, until `quiet` seconds pass without one.

		With `count`, the quiet time only starts once that many matching messages arrived (a
		background job publishes later than a commit): after WAIT_SECONDS it returns what came.
		Raises TimeoutError when the site is still publishing after WAIT_SECONDS.
		"""
		out: list[Sent] = []
		deadline = time.monotonic() + WAIT_SECONDS
		idle_until = float("inf") if count else time.monotonic() + quiet
		while time.monotonic() < idle_until:
			if time.monotonic() > deadline:
				if count and len(out) < count:
					return out
				raise TimeoutError(
					f"this site kept publishing for {WAIT_SECONDS} s (got {len(out)} matching messages)"
				)
			sent = self._next_of_this_site()
			if sent is None:
				continue
			if self._matches(sent, rule, channel):
				out.append(sent)
			if not count or len(out) >= count:
				idle_until = time.monotonic() + quiet
		return out

	def of_event(self, event: str, room: str, quiet: float = 0.5) -> list[Sent]:
		"""This site's messages on socket `event` to `room` since the last call, until `quiet`
		seconds pass without any message of this site."""
		out: list[Sent] = []
		idle_until = time.monotonic() + quiet
		deadline = time.monotonic() + WAIT_SECONDS
		while time.monotonic() < min(idle_until, deadline):
			sent = self._next_of_this_site()
			if sent is None:
				continue
			if (sent.event, sent.room) == (event, room):
				out.append(sent)
			idle_until = time.monotonic() + quiet
		return out

	@staticmethod
	def _matches(sent: Sent, rule: str | None, channel: str | None) -> bool:
		if rule is None and channel is None:
			return sent.from_this_suite
		return (rule is not None and sent.rule == rule) or (
			channel is not None and sent.message.get("channel") == channel
		)

	def _next_of_this_site(self) -> Sent | None:
		message = self.pubsub.get_message(timeout=0.1)
		if not message or message["type"] != "message":
			return None
		data = json.loads(message["data"])
		if data.get("namespace") != frappe.local.site or not isinstance(data.get("message"), dict):
			return None
		return Sent(data["event"], data["room"], data["message"])


# --- factories -----------------------------------------------------------------------------


def unique(label: str) -> str:
	return f"{label}-{frappe.generate_hash(length=8)}"


#: The System Manager every test site has besides Administrator. Frappe refuses to disable or
#: delete any user while Administrator is the only enabled System Manager (a brand-new site),
#: and gives System Manager to the first desk user made on a set-up site that has none.
MANAGER = "manager"

#: What a test user spec may set besides "roles", with the value the user gets when a spec
#: leaves it out (a user reused by another test class must not keep the last one's settings).
USER_DEFAULTS = {"enabled": 1, "document_follow_notify": 0}


def test_user_email(label: str) -> str:
	"""The one user a label stands for on every run: `rt-test-<label>@example.com`."""
	return f"{RULE_PREFIX}{label}@example.com".lower()


@contextmanager
def make_users(spec: dict[str, dict], commit: bool = True):
	"""{label: {"roles": [...], "enabled": 0, ...}} -> {label: email}.

	Test users are records of the site, like Frappe's own test records: each label is one user,
	made once (as a data import makes users, so Frappe's sign-up throttle does not apply) and
	reused by every later run with the roles and settings of `spec`. What a test gave a user
	(user permissions, shares, assignments, follows, comments) is removed on entry and on exit.
	"""
	ensure_test_user(MANAGER, {"roles": ["System Manager"]})
	users = {label: ensure_test_user(label, fields) for label, fields in spec.items()}
	for email in users.values():
		reset_test_user(email)
	if commit:
		frappe.db.commit()
	try:
		yield users
	finally:
		frappe.db.rollback()
		for email in users.values():
			reset_test_user(email)
		if commit:
			frappe.db.commit()


def ensure_test_user(label: str, spec: dict) -> str:
	"""The label's user with exactly the roles and settings of `spec`, made if missing."""
	fields = dict(spec)
	roles = sorted(set(fields.pop("roles", ())))
	unknown = set(fields) - set(USER_DEFAULTS)
	if unknown:
		raise ValueError(
			f"test user {label!r}: unknown settings {sorted(unknown)}; known: {sorted(USER_DEFAULTS)}"
		)
	wanted = {**USER_DEFAULTS, **fields}
	email = test_user_email(label)
	if frappe.db.exists("User", email):
		_update_test_user(frappe.get_doc("User", email), roles, wanted)
	else:
		_insert_test_user(email, label, roles, wanted)
	# a Notification Log would otherwise mail them, and log an error on a site without email
	frappe.db.set_value("Notification Settings", email, "enable_email_notifications", 0)
	return email


def _insert_test_user(email: str, label: str, roles: list[str], wanted: dict) -> None:
	user = frappe.get_doc(
		{"doctype": "User", "email": email, "first_name": label, "send_welcome_email": 0, **wanted}
	)
	user.set("roles", [{"role": role} for role in roles])
	in_import = frappe.flags.in_import
	frappe.flags.in_import = True  # as a data import: not counted against sign-ups
	try:
		user.insert(ignore_permissions=True)
	finally:
		frappe.flags.in_import = in_import


def _update_test_user(user, roles: list[str], wanted: dict) -> None:
	current_roles = sorted(row.role for row in user.roles if row.role not in AUTOMATIC_ROLES)
	if current_roles != roles or any(user.get(field) != value for field, value in wanted.items()):
		user.update(wanted)
		user.set("roles", [{"role": role} for role in roles])
		user.save(ignore_permissions=True)


def reset_test_user(email: str) -> None:
	"""Remove what tests gave the user on the site, and Frappe's caches of it."""
	for doctype, field in (
		("User Permission", "user"),
		("DocShare", "user"),
		("ToDo", "allocated_to"),
		("Document Follow", "user"),
		("Comment", "owner"),
		("Notification Log", "for_user"),
	):
		frappe.db.delete(doctype, {field: email})
	frappe.cache.hdel("user_permissions", email)
	frappe.clear_cache(user=email)


@contextmanager
def make_rule(
	audience: list[dict] | None = None,
	*,
	event: str = "Save",
	document_type: str = ORDER,
	commit: bool = False,
	**fields,
):
	"""Insert a Realtime Rule (defaults: Save of RT Test Order, to the owner); delete it on exit."""
	name = fields.pop("rule_name", None) or unique(RULE_PREFIX + event.lower().replace(" ", "-"))
	_created_rules.add(name)
	doc = frappe.get_doc(
		{
			"doctype": "Realtime Rule",
			"rule_name": name,
			"document_type": document_type,
			"event": event,
			"audience": audience if audience is not None else [{"audience_type": "Owner"}],
			"subject": "{{ doc.name }}",
			**fields,
		}
	).insert()
	try:
		with inserted(doc, commit):
			yield doc
	finally:
		# Frappe keeps Error Logs in a MyISAM table: a rollback does not remove them
		frappe.db.delete("Error Log", {"reference_doctype": "Realtime Rule", "reference_name": name})


@contextmanager
def inserted(doc, commit: bool):
	"""Keep an inserted rule or channel for the block (committed if asked), then delete it."""
	if commit:
		frappe.db.commit()
	try:
		yield doc
	finally:
		if commit:
			frappe.db.rollback()
		if frappe.db.exists(doc.doctype, doc.name):
			frappe.delete_doc(doc.doctype, doc.name, force=True, ignore_permissions=True)
			if commit:
				frappe.db.commit()
		clear_rate_keys(doc.name)


@contextmanager
def make_channel(members: list[dict] | None = None, *, commit: bool = False, **fields):
	"""Insert a Realtime Channel; delete it on exit."""
	name = fields.pop("channel_name", None) or unique("rt-test-channel")
	doc = frappe.get_doc(
		{"doctype": "Realtime Channel", "channel_name": name, "members": members or [], **fields}
	).insert()
	with inserted(doc, commit):
		yield doc


def new_order(**fields):
	return frappe.get_doc({"doctype": ORDER, "title": "Test order", "status": "Draft", "qty": 1, **fields})


@contextmanager
def make_order(*, commit: bool = False, **fields):
	"""Insert an RT Test Order; on exit remove it without running any hook (no events)."""
	doc = new_order(**fields).insert()
	if commit:
		frappe.db.commit()
	try:
		yield doc
	finally:
		if commit:
			frappe.db.rollback()
			purge_order(doc.name)
			frappe.db.commit()


def purge_order(name: str) -> None:
	frappe.db.delete(ORDER_ITEM, {"parent": name})
	frappe.db.delete(ORDER, {"name": name})
	for doctype, field in (("DocShare", "share_name"), ("Document Follow", "ref_docname")):
		frappe.db.delete(doctype, {field: name})
	for doctype in ("Comment", "ToDo", "Notification Log", "Version"):
		column = {"Notification Log": "document_name", "Version": "docname"}.get(doctype, "reference_name")
		frappe.db.delete(doctype, {column: name})


def clear_rate_keys(name: str) -> None:
	"""Forget the rate-limit counters of a rule or channel."""
	for kind in ("rule", "channel"):
		for key in frappe.cache.keys(frappe.cache.make_key(f"rt_studio:rate:{kind}:{name}:*")):
			frappe.cache.delete(key)


def forget_test_traces() -> None:
	"""Drop the traces test rules left in Redis (per rule, and in the all-rules list)."""
	for name in list(_created_rules):
		trace.clear(name)
	kept = [
		item for item in frappe.cache.lrange("rt_studio:trace:*", 0, -1) if RULE_PREFIX.encode() not in item
	]
	key = frappe.cache.make_key("rt_studio:trace:*")
	pipe = frappe.cache.pipeline()
	pipe.delete(key)
	if kept:
		pipe.rpush(key, *kept)
	pipe.execute()


# --- a second process on the site ---------------------------------------------------------


class SiteProcess:
	"""Another Frappe process on this site (like a second web worker), driven over stdin/stdout.

	Each command runs as a new request: fresh transaction, empty request cache; the process
	keeps its module-level state (RT Studio's per-process rule cache) across commands. Every
	answer is awaited at most WAIT_SECONDS; then the process is killed and the test fails with
	the end of its stderr.
	"""

	def __init__(self):
		sites_path = os.path.abspath(frappe.local.sites_path)
		self.stderr = tempfile.TemporaryFile(mode="w+")
		self.proc = subprocess.Popen(
			[sys.executable, "-m", "rt_studio.tests.worker", frappe.local.site, sites_path],
			stdin=subprocess.PIPE,
			stdout=subprocess.PIPE,
			stderr=self.stderr,
			text=True,
			cwd=sites_path,
		)
		self.lines: queue.Queue[str | None] = queue.Queue()
		self.reader = threading.Thread(target=self._read_stdout, daemon=True)
		self.reader.start()
		try:
			self.receive()
		except Exception:
			self.close()
			raise

	def _read_stdout(self) -> None:
		for line in self.proc.stdout:
			self.lines.put(line)
		self.lines.put(None)  # the process ended

	def send(self, cmd: str, **args) -> None:
		self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
		self.proc.stdin.flush()

	def receive(self, timeout: float = WAIT_SECONDS) -> dict:
		from rt_studio.tests.worker import ANSWER

		deadline = time.monotonic() + timeout
		while True:
			try:
				line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
			except queue.Empty:
				self.proc.kill()
				raise TimeoutError(f"site process gave no answer within {timeout} s: {self.stderr_tail()}")
			if line is None:
				raise RuntimeError(f"site process ended: {self.stderr_tail()}")
			if line.startswith(ANSWER):
				answer = json.loads(line[len(ANSWER) :])
				if answer.get("error"):
					raise RuntimeError(f"site process failed: {answer['error']}")
				return answer

	def stderr_tail(self) -> str:
		self.stderr.seek(0)
		return self.stderr.read()[-3000:]

	def ask(self, cmd: str, **args) -> dict:
		self.send(cmd, **args)
		return self.receive()

	def close(self) -> None:
		if self.proc.poll() is None:
			try:
				self.send("quit")
				self.proc.wait(timeout=WAIT_SECONDS)
			except (OSError, subprocess.TimeoutExpired):
				self.proc.kill()
				self.proc.wait(timeout=WAIT_SECONDS)
		self.reader.join(timeout=WAIT_SECONDS)
		for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
			stream.close()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()


def run_background_jobs(queues: str = "short,default,long") -> str:
	"""Run this site's queued jobs in a real RQ work horse (see rt_studio/tests/job_runner.py):
	jobs are pickled, unpickled and run in another process, as in `bench worker`, and jobs of
	other sites of the bench (their schedulers, their tests) are left alone.

	Returns the runner's log (stderr), for assertion messages; raises TimeoutError when a job
	of this site is still queued or running after WAIT_SECONDS.
	"""
	sites_path = os.path.abspath(frappe.local.sites_path)
	command = [
		sys.executable,
		"-m",
		"rt_studio.tests.job_runner",
		frappe.local.site,
		queues,
		str(WAIT_SECONDS),
	]
	try:
		done = subprocess.run(
			command, cwd=sites_path, capture_output=True, text=True, timeout=WAIT_SECONDS + 30
		)
	except subprocess.TimeoutExpired as timeout:
		raise TimeoutError(f"background jobs still running after {WAIT_SECONDS} s: {timeout.stderr}")
	if done.returncode:
		raise RuntimeError(f"background jobs did not finish ({done.returncode}): {done.stderr[-3000:]}")
	return done.stderr


# --- the base class --------------------------------------------------------------------------


class RTTestCase(IntegrationTestCase):
	"""Each test runs as Administrator in its own transaction, rolled back afterwards."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		ensure_test_doctypes()
		sweep_leftovers()
		cls.addClassCleanup(forget_test_traces)

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()

	def action(self) -> Action:
		return Action()


class ReaderAndOutsiderTestCase(RTTestCase):
	"""With `reader`, who may read RT Test Orders, and `outsider`, a desk user who may not:
	an audience of both shows that read permission decides who gets a message."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		users = cls.enterClassContext(
			make_users({"reader": {"roles": [TESTER]}, "outsider": {"roles": [BYSTANDER]}})
		)
		cls.reader, cls.outsider = users["reader"], users["outsider"]
