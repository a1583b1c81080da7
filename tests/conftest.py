"""Shared fixtures: a rule factory, a small in-memory site and a Context with a fake clock."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from rt_studio.engine import Context, Event, compile_rule
from rt_studio.engine.batching import InMemoryBatches
from rt_studio.engine.memory import InMemoryDirectory
from rt_studio.engine.mutes import InMemoryMutes
from rt_studio.engine.ratelimit import InMemoryRateLimiter
from rt_studio.engine.rules import parse_channel

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

#: The moment `Context.now` returns in every test, so `sent_at` is predictable.
NOW = datetime(2024, 5, 1, 12, 0, 0)

OWNER = "owner@example.com"
ACTOR = "actor@example.com"
SUPPORT = "sup@example.com"
BLIND = "blind@example.com"
OFF_USER = "off@example.com"
MANAGER = "mgr@example.com"
FOLLOWER = "fol@example.com"
COMMENTER = "com@example.com"

USERS = {
	OWNER: {"roles": [], "can_read": ["ToDo"]},
	ACTOR: {"roles": ["Support Team"], "can_read": ["ToDo"]},
	SUPPORT: {
		"roles": ["Support Team"],
		"can_read": ["ToDo"],
		"cannot_read_fields": {"ToDo": ["priority"]},
	},
	BLIND: {"roles": ["Support Team"], "can_read": []},
	OFF_USER: {"roles": ["Support Team"], "enabled": False, "can_read": ["ToDo"]},
	MANAGER: {"roles": ["Managers"], "can_read": ["*"]},
	FOLLOWER: {"roles": [], "can_read": ["ToDo"]},
	COMMENTER: {"roles": [], "can_read": ["ToDo/TD-1"]},
	"Guest": {"roles": ["Guest"], "can_read": ["*"]},
}

CHANNELS = [
	{
		"channel_name": "support",
		"members": [
			{"member_type": "User", "user": FOLLOWER},
			{"member_type": "Role", "role": "Managers"},
		],
	},
	{"channel_name": "readers of TD-9", "reference_doctype": "ToDo", "reference_name": "TD-9"},
	{"channel_name": "closed", "enabled": 0, "members": [{"member_type": "User", "user": OWNER}]},
]


def rule_dict(**overrides) -> dict:
	"""A valid Realtime Rule fixture document; keyword arguments replace its fields."""
	data = {
		"doctype": "Realtime Rule",
		"rule_name": "Test rule",
		"enabled": 1,
		"document_type": "ToDo",
		"event": "Save",
		"audience": [{"doctype": "Realtime Rule Audience", "audience_type": "Owner"}],
		"exclude_actor": 1,
		"subject": "ToDo {{ doc.name }}",
		"message": "{{ doc.description }}",
		"display": "Alert",
		"indicator": "blue",
	}
	data.update(overrides)
	return data


def audience(*rows) -> list[dict]:
	"""Audience rows from (type, {extra fields}) pairs or bare type names."""
	result = []
	for row in rows:
		kind, extra = (row, {}) if isinstance(row, str) else row
		result.append({"doctype": "Realtime Rule Audience", "audience_type": kind, **extra})
	return result


class CountingTemplate:
	"""Wraps a compiled jinja2 Template and counts renders."""

	def __init__(self, template):
		self.template, self.renders = template, 0

	def render(self, context):
		self.renders += 1
		return self.template.render(context)


class FakeClock:
	"""A monotonic clock the test moves by hand."""

	def __init__(self, t: float = 1000.0):
		self.t = t

	def __call__(self) -> float:
		return self.t

	def advance(self, seconds: float) -> None:
		self.t += seconds


@pytest.fixture
def make_rule():
	"""`make_rule(**overrides)` -> a rule fixture dict (not compiled)."""
	return rule_dict


@pytest.fixture
def new_rule():
	"""`new_rule(**overrides)` -> the compiled Rule of `make_rule(**overrides)`."""
	return lambda **overrides: compile_rule(rule_dict(**overrides))


@pytest.fixture
def directory() -> InMemoryDirectory:
	channels = [parse_channel(c)[0] for c in CHANNELS]
	return InMemoryDirectory(USERS, channels, follows={"ToDo/TD-1": [FOLLOWER]})


@pytest.fixture
def clock() -> FakeClock:
	return FakeClock()


@pytest.fixture
def limiter(clock) -> InMemoryRateLimiter:
	return InMemoryRateLimiter(clock)


@pytest.fixture
def mutes(clock) -> InMemoryMutes:
	return InMemoryMutes(clock=clock)


@pytest.fixture
def batches(clock) -> InMemoryBatches:
	return InMemoryBatches(clock)


@pytest.fixture
def ctx(directory, limiter, mutes, batches) -> Context:
	return Context(directory, limiter, mutes=mutes, batches=batches, now=lambda: NOW)


@pytest.fixture
def todo() -> dict:
	"""ToDo TD-1 as the document after the change."""
	return {
		"doctype": "ToDo",
		"name": "TD-1",
		"owner": OWNER,
		"status": "Closed",
		"priority": "High",
		"description": "Call the customer",
		"allocated_to": SUPPORT,
		"docstatus": 0,
	}


@pytest.fixture
def todo_before(todo) -> dict:
	"""The same ToDo before the change: only the status differs."""
	return {**todo, "status": "Open"}


@pytest.fixture
def make_event(todo, todo_before):
	"""`make_event(event="Save", doc=None, before=..., actor=ACTOR)` -> an engine Event for TD-1."""
	missing = object()

	def make(event="Save", doc=None, before=missing, actor=ACTOR):
		doc = todo if doc is None else doc
		before = todo_before if before is missing else before
		return Event(doc.get("doctype", "ToDo"), doc.get("name", "TD-1"), event, doc, before, actor)

	return make


def users_of(outcome) -> dict:
	"""{user or room: verdict} of an outcome's recipients."""
	return {rec.user or rec.room: rec.verdict for rec in outcome.recipients}


def delivered_to(outcome) -> list:
	"""Users (or rooms) that got a delivery, in order."""
	return [d.user or d.room for d in outcome.deliveries]


def write_json(path: Path, data) -> str:
	path.write_text(json.dumps(data, indent=1), encoding="utf-8")
	return str(path)
