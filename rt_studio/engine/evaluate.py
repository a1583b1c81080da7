"""Evaluating one rule against one document event: whether, to whom, and what.

`evaluate` is the only place that decides; the site's hook, the desk preview, test-fire and
the CLI all call it. It has no side effects besides the rate limiter's counters, and none at
all in preview mode.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import escape

from rt_studio.engine import rules as r
from rt_studio.engine.audience import doc_room, row_users
from rt_studio.engine.docview import as_text, freeze, to_json_value
from rt_studio.engine.errors import Problem, RuleError
from rt_studio.engine.events import VALUE_CHANGE
from rt_studio.engine.interfaces import Directory, RateLimiter
from rt_studio.engine.ratelimit import rule_key
from rt_studio.engine.sandbox import SandboxError, base_globals, condition_namespace, evaluate_condition

DELIVER = "deliver"
NO_READ = "no read permission"
ACTOR_EXCLUDED = "actor excluded"
RATE_LIMITED = "rate limited"
DISABLED = "disabled user"

#: Every verdict a recipient can get, the deliverable one first.
VERDICTS = (DELIVER, NO_READ, ACTOR_EXCLUDED, RATE_LIMITED, DISABLED)


@dataclass(slots=True)
class Recipient:
	"""One user (or room) an audience row named, with the verdict on delivering to it."""

	user: str | None
	room: str | None
	source: str
	verdict: str
	subject: str = ""
	message: str = ""

	def as_dict(self) -> dict:
		target = {"user": self.user} if self.user else {"room": self.room}
		return {
			**target,
			"source": self.source,
			"verdict": self.verdict,
			"subject": self.subject,
			"message": self.message,
		}


@dataclass(slots=True)
class Delivery:
	"""One `publish_realtime` call: an event name, a target and the message."""

	rule: str
	event_name: str
	user: str | None
	room: str | None
	message: dict


@dataclass(slots=True)
class Outcome:
	"""What happened when one rule met one event (also the preview's answer)."""

	rule: str
	event: str
	fired: bool = False
	reason: str = ""
	condition: bool | None = None
	recipients: list[Recipient] = field(default_factory=list)
	deliveries: list[Delivery] = field(default_factory=list)
	error: Problem | None = None
	#: Set when the audience was larger than `defer_above`: nothing decided per recipient yet.
	deferred: int = 0

	def as_dict(self) -> dict:
		return {
			"rule": self.rule,
			"event": self.event,
			"fired": self.fired,
			"reason": self.reason,
			"condition": self.condition,
			"recipients": [rec.as_dict() for rec in self.recipients],
			"error": self.error.as_dict() if self.error else None,
		}


@dataclass(slots=True)
class Event:
	"""A document event as the engine sees it."""

	doctype: str
	docname: str
	event: str
	doc: Mapping
	before: Mapping | None = None
	actor: str = "Guest"

	def __post_init__(self):
		self.doc = freeze(self.doc)
		self.before = freeze(self.before) if self.before is not None else None


class Context:
	"""What evaluation needs from the site, bundled once per process or request."""

	__slots__ = ("condition_globals", "directory", "limiter", "now", "progress", "shared")

	#: Recipients checked between two progress reports.
	PROGRESS_EVERY = 50

	def __init__(
		self,
		directory: Directory,
		limiter: RateLimiter,
		*,
		utils: Mapping | None = None,
		now=datetime.now,
		progress=None,
	):
		#: Optional `progress(done, total)`, called while verdicts are given to a large audience.
		self.progress = progress
		self.directory = directory
		self.limiter = limiter
		self.now = now
		self.shared = base_globals(utils)
		self.condition_globals = condition_namespace(self.shared)


def value_change_reason(rule: r.Rule, event: Event) -> str | None:
	"""None when the watched field changed as the rule asks; otherwise why not."""
	if event.before is None:
		return f"no earlier version of the document to compare {rule.value_changed} with"
	old, new = as_text(event.before.get(rule.value_changed)), as_text(event.doc.get(rule.value_changed))
	if old == new:
		return f"{rule.value_changed} did not change"
	if rule.from_value and old != rule.from_value:
		return f"{rule.value_changed} changed from {old!r}, the rule wants from {rule.from_value!r}"
	if rule.to_value and new != rule.to_value:
		return f"{rule.value_changed} changed to {new!r}, the rule wants to {rule.to_value!r}"
	return None


def _scope(rule: r.Rule, event: Event) -> dict:
	return {
		"doc": event.doc,
		"doc_before_save": event.before,
		"actor": event.actor,
		"event": event.event,
		"rule": rule.name,
	}


def _check(rule: r.Rule, field_label: str, fn):
	"""Run a condition or render, turning any failure into a RuleError naming the field."""
	try:
		return fn()
	except RuleError:
		raise
	except SandboxError as e:
		raise RuleError.one(rule.name, field_label, f"refused by the sandbox: {e}") from None
	except Exception as e:
		raise RuleError.one(
			rule.name, field_label, f"failed on this document: {type(e).__name__}: {e}"
		) from None


def _recipients(rule: r.Rule, event: Event, ctx: Context, scope: dict) -> list[Recipient]:
	"""Every user and room the audience names, once each, in row order."""
	seen: dict[str, Recipient] = {}
	rooms: list[Recipient] = []
	for index, row in enumerate(rule.audience, 1):
		if row.condition is not None:
			label = f"audience row {index}: condition"
			if not _check(
				rule, label, lambda row=row: evaluate_condition(row.condition, ctx.condition_globals, scope)
			):
				continue
		if row.audience_type == r.DOCUMENT_VIEWERS:
			rooms.append(Recipient(None, doc_room(event.doctype, event.docname), row.audience_type, DELIVER))
			continue
		try:
			users = row_users(row, event.doc, event.doctype, event.docname, event.actor, ctx.directory)
		except LookupError as e:
			raise RuleError.one(
				rule.name, f"audience row {index}: {row.audience_type.lower()}", str(e.args[0])
			) from None
		for user in users:
			if user and user not in seen and user != "Guest":
				seen[user] = Recipient(user, None, row.audience_type, DELIVER)
	return list(seen.values()) + rooms[:1]


def _verdict(rule: r.Rule, event: Event, ctx: Context, user: str) -> str:
	directory = ctx.directory
	if not directory.is_enabled(user):
		return DISABLED
	if rule.exclude_actor and user == event.actor:
		return ACTOR_EXCLUDED
	if not directory.can_read(user, event.doctype, event.docname, event.doc):
		return NO_READ
	return DELIVER


def _render(rule: r.Rule, scope: dict, recipient: str | None) -> tuple[str, str]:
	scope = {**scope, "recipient": recipient}
	subject = _check(rule, "subject", lambda: rule.subject.render(scope)) if rule.subject else ""
	message = _check(rule, "message", lambda: rule.message.render(scope)) if rule.message else ""
	return subject, message


#: The keys of every message RT Studio publishes (DESIGN.md section 3), rule or channel.
WIRE_KEYS = (
	"rule",
	"channel",
	"subject",
	"message",
	"display",
	"indicator",
	"alert_seconds",
	"doctype",
	"docname",
	"event",
	"fields",
	"actor",
	"sent_at",
)


def channel_message(channel: str, text: str, actor: str, sent_at: datetime) -> dict:
	"""The wire message of a channel post; `text` must already be HTML-escaped."""
	return {
		"rule": None,
		"channel": channel,
		"subject": escape(channel),
		"message": text,
		"display": "Alert",
		"indicator": "blue",
		"alert_seconds": 7,
		"doctype": None,
		"docname": None,
		"event": "Channel",
		"fields": {},
		"actor": actor,
		"sent_at": sent_at.isoformat(),
	}


def build_message(
	rule: r.Rule, event: Event, subject: str, message: str, fields: dict, sent_at: datetime
) -> dict:
	"""The wire message of DESIGN.md section 3."""
	return {
		"rule": rule.name,
		"channel": None,
		"subject": subject,
		"message": message,
		"display": rule.display,
		"indicator": rule.indicator,
		"alert_seconds": rule.alert_seconds,
		"doctype": event.doctype,
		"docname": event.docname,
		"event": event.event,
		"fields": fields,
		"actor": event.actor,
		"sent_at": sent_at.isoformat(),
	}


def evaluate(
	rule: r.Rule,
	event: Event,
	ctx: Context,
	*,
	preview: bool = False,
	check_condition: bool = True,
	only_users: list[str] | None = None,
	defer_above: int | None = None,
) -> Outcome:
	"""Decide whether `rule` fires for `event`, who gets what, and build the deliveries.

	`preview` touches no counters and builds no deliveries. `check_condition=False` and
	`only_users` serve test-fire (send regardless of the condition, or to given users);
	permission, disabled-user and actor verdicts still hold there.
	With `defer_above`, an audience of more users than that stops after the condition:
	`outcome.deferred` holds its size, for the caller to finish the evaluation elsewhere
	(a background job) instead of checking permissions for everyone inside a user's save.
	A failing condition, template or audience row is returned as `outcome.error`.
	"""
	outcome = Outcome(rule=rule.name, event=event.event)
	if rule.event != event.event:
		outcome.reason = f"the rule listens to {rule.event}, not {event.event}"
		return outcome
	try:
		return _evaluate(rule, event, ctx, outcome, preview, check_condition, only_users, defer_above)
	except RuleError as e:
		outcome.error = e.problems[0]
		outcome.reason = f"error: {e.problems[0]}"
		outcome.fired = False
		outcome.deliveries = []
		return outcome


def _evaluate(rule, event, ctx, outcome, preview, check_condition, only_users, defer_above) -> Outcome:
	if check_condition and rule.event == VALUE_CHANGE:
		why_not = value_change_reason(rule, event)
		if why_not:
			outcome.reason = why_not
			return outcome
	scope = _scope(rule, event)
	scope.update(ctx.shared)
	if rule.condition is not None:
		outcome.condition = _check(
			rule, "condition", lambda: evaluate_condition(rule.condition, ctx.condition_globals, scope)
		)
		if check_condition and not outcome.condition:
			outcome.reason = "condition is false"
			return outcome
	if only_users is None:
		recipients = _recipients(rule, event, ctx, scope)
	else:
		recipients = [Recipient(user, None, "Test Fire", DELIVER) for user in only_users]
	if defer_above is not None and not preview and len(recipients) > defer_above:
		outcome.deferred = len(recipients)
		outcome.reason = f"{len(recipients)} recipients: delivered by a background job after the commit"
		return outcome
	for done, rec in enumerate(recipients, 1):
		if rec.user:
			rec.verdict = _verdict(rule, event, ctx, rec.user)
		if ctx.progress is not None and done % ctx.PROGRESS_EVERY == 0:
			ctx.progress(done, len(recipients))
	outcome.recipients = recipients

	shared_text = None
	per_recipient = (rule.subject and rule.subject.per_recipient) or (
		rule.message and rule.message.per_recipient
	)
	if not per_recipient:
		shared_text = _render(rule, scope, None)
	for rec in recipients:
		if preview or rec.verdict == DELIVER:
			rec.subject, rec.message = shared_text or _render(rule, scope, rec.user)

	if not preview and rule.rate_limit_count:
		for rec in recipients:
			if (
				rec.user
				and rec.verdict == DELIVER
				and not ctx.limiter.hit(
					rule_key(rule.name, rec.user), rule.rate_limit_count, rule.rate_limit_seconds
				)
			):
				rec.verdict = RATE_LIMITED
	elif preview and rule.rate_limit_count:
		for rec in recipients:
			if (
				rec.user
				and rec.verdict == DELIVER
				and not ctx.limiter.peek(
					rule_key(rule.name, rec.user), rule.rate_limit_count, rule.rate_limit_seconds
				)
			):
				rec.verdict = RATE_LIMITED

	deliverable = [rec for rec in recipients if rec.verdict == DELIVER]
	outcome.fired = bool(deliverable)
	outcome.reason = (
		f"{len(deliverable)} of {len(recipients)} recipients" if recipients else "the audience is empty"
	)
	if preview:
		return outcome
	sent_at = ctx.now()
	for rec in deliverable:
		fields = _fields(rule, event, ctx, rec.user)
		message = build_message(rule, event, rec.subject, rec.message, fields, sent_at)
		outcome.deliveries.append(Delivery(rule.name, rule.event_name, rec.user, rec.room, message))
	return outcome


def _fields(rule: r.Rule, event: Event, ctx: Context, user: str | None) -> dict:
	if not rule.fields:
		return {}
	readable = ctx.directory.readable_fields(user, event.doctype, rule.fields)
	return {f: to_json_value(event.doc.get(f)) for f in readable}


def preview(rule: r.Rule, event: Event, ctx: Context) -> Outcome:
	"""The preview the desk shows: evaluation with no side effects and text for everyone."""
	return evaluate(rule, event, ctx, preview=True)
