"""Shared test helpers: a submittable test DocType, context-manager factories that insert and
clean up users, rules, channels and orders, and two ways to see what RT Studio sends.

- `queued()` reads Frappe's after-commit queue (`frappe.local._realtime_log`): what a commit
  would publish, without committing.
- `RealtimeListener` subscribes to the Redis `events` channel that `frappe.realtime` publishes
  on: what was really sent, for the tests that commit (and clean up after themselves).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass

import frappe
import redis

from rt_studio import trace
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
	frappe.db.commit()


def sweep_leftovers() -> None:
	"""Delete test rules and orders an interrupted run left committed (older than ten minutes)."""
	cutoff = frappe.utils.add_to_date(frappe.utils.now_datetime(), minutes=-10)
	for name in frappe.get_all(
		"Realtime Rule",
		filters={"name": ["like", f"{RULE_PREFIX}%"], "modified": ["<", cutoff]},
		pluck="name",
	):
		frappe.delete_doc("Realtime Rule", name, force=True, ignore_permissions=True)
	for name in frappe.get_all(ORDER, filters={"modified": ["<", cutoff]}, pluck="name"):
		purge_order(name)
	frappe.db.delete(
		"Error Log",
		{
			"reference_doctype": "Realtime Rule",
			"reference_name": ["like", f"{RULE_PREFIX}%"],
			"creation": ["<", cutoff],
		},
	)
	frappe.db.commit()


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


def queued(rule: str | None = None) -> list[Sent]:
	"""RT Studio deliveries waiting in Frappe's after-commit queue (what a commit would publish)."""
	log = getattr(frappe.local, "_realtime_log", None) or []
	entries = [Sent(event, room, message) for event, message, room in log]
	return [s for s in entries if s.from_rt_studio and (rule is None or s.rule == rule)]


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


class RealtimeListener:
	"""Subscribed to the Redis `events` channel `frappe.realtime.emit_via_redis` publishes on."""

	def __enter__(self):
		self.client = redis.Redis.from_url(frappe.conf.redis_queue)
		self.pubsub = self.client.pubsub()
		self.pubsub.subscribe("events")
		deadline = time.monotonic() + 5
		while time.monotonic() < deadline:
			message = self.pubsub.get_message(timeout=0.5)
			if message and message["type"] == "subscribe":
				break
		return self

	def __exit__(self, *exc):
		self.pubsub.close()
		self.client.close()

	def received(self, rule: str | None = None, channel: str | None = None, quiet: float = 0.5) -> list[Sent]:
		"""Messages for this site published since the last call, until `quiet` seconds pass without one."""
		out = []
		idle_until = time.monotonic() + quiet
		while time.monotonic() < idle_until:
			message = self.pubsub.get_message(timeout=0.1)
			if not message or message["type"] != "message":
				continue
			idle_until = time.monotonic() + quiet
			data = json.loads(message["data"])
			if data.get("namespace") != frappe.local.site:
				continue
			sent = Sent(data["event"], data["room"], data["message"])
			if not isinstance(sent.message, dict):
				continue
			if (rule and sent.message.get("rule") == rule) or (
				channel and sent.message.get("channel") == channel
			):
				out.append(sent)
			elif rule is None and channel is None and sent.from_rt_studio:
				out.append(sent)
		return out


# --- factories -----------------------------------------------------------------------------


def unique(label: str) -> str:
	return f"{label}-{frappe.generate_hash(length=8)}"


@contextmanager
def make_users(spec: dict[str, dict], commit: bool = True):
	"""{label: {"roles": [...], "enabled": 0, ...}} -> {label: email}; deleted on exit."""
	users = {}
	for label, fields in spec.items():
		fields = dict(fields)
		roles = fields.pop("roles", ())
		email = f"rt-{unique(label)}@example.com".lower()
		frappe.get_doc(
			{
				"doctype": "User",
				"email": email,
				"first_name": label,
				"send_welcome_email": 0,
				"roles": [{"role": role} for role in roles],
				**fields,
			}
		).insert(ignore_permissions=True)
		users[label] = email
	if commit:
		frappe.db.commit()
	try:
		yield users
	finally:
		frappe.db.rollback()
		for email in users.values():
			for doctype, field in (
				("User Permission", "user"),
				("DocShare", "user"),
				("ToDo", "allocated_to"),
			):
				frappe.db.delete(doctype, {field: email})
			frappe.db.delete("Document Follow", {"user": email})
			frappe.db.delete("Comment", {"owner": email})
			if frappe.db.exists("User", email):
				frappe.delete_doc("User", email, force=True, ignore_permissions=True)
			frappe.cache.hdel("user_permissions", email)
			frappe.clear_cache(user=email)
		if commit:
			frappe.db.commit()


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
	keeps its module-level state (RT Studio's per-process rule cache) across commands.
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
		self.receive()

	def send(self, cmd: str, **args) -> None:
		self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
		self.proc.stdin.flush()

	def receive(self) -> dict:
		from rt_studio.tests.worker import ANSWER

		while True:
			line = self.proc.stdout.readline()
			if not line:
				self.stderr.seek(0)
				raise RuntimeError(f"site process ended: {self.stderr.read()[-3000:]}")
			if line.startswith(ANSWER):
				answer = json.loads(line[len(ANSWER) :])
				if answer.get("error"):
					raise RuntimeError(f"site process failed: {answer['error']}")
				return answer

	def ask(self, cmd: str, **args) -> dict:
		self.send(cmd, **args)
		return self.receive()

	def close(self) -> None:
		if self.proc.poll() is None:
			self.send("quit")
			try:
				self.proc.wait(timeout=20)
			except subprocess.TimeoutExpired:
				self.proc.kill()
		self.proc.stdin.close()
		self.proc.stdout.close()
		self.stderr.close()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()


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
