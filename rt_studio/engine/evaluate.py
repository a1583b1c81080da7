"""Evaluating one rule against one document event: whether, to whom, and what.

`evaluate` is the only place that decides; the site's hook, the desk preview, test-fire and
the CLI all call it. It runs in stages, each a short function: the trigger (a Value Change
transition and the condition), the audience (who the rows name), the verdicts (for the whole
audience at once, see `verdicts.py`), the mutes, the texts, the rate limit (which batches
what exceeds it, see `batching.py`) and the deliveries. It has no side effects besides the
rate limiter's counters and the batches, and none at all in preview mode.
"""

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from rt_studio.engine import budget, values
from rt_studio.engine import rules as r
from rt_studio.engine.audience import channel_members, doc_room, row_users
from rt_studio.engine.batching import InMemoryBatches, apply_rate_limit
from rt_studio.engine.budget import Budget, BudgetExceeded
from rt_studio.engine.changes import value_change
from rt_studio.engine.docview import freeze, to_json_value, without
from rt_studio.engine.errors import Problem, RuleError
from rt_studio.engine.events import METHOD, VALUE_CHANGE
from rt_studio.engine.filters import OfflineMeta, failing_filter
from rt_studio.engine.interfaces import Batches, Directory, Meta, Mutes, RateLimiter
from rt_studio.engine.messages import WIRE_KEYS, channel_message, rule_message
from rt_studio.engine.mutes import InMemoryMutes, channel_target, rule_target
from rt_studio.engine.sandbox import SandboxError, base_globals, condition_namespace, evaluate_condition
from rt_studio.engine.user_names import user_key
from rt_studio.engine.verdicts import (
	ACTOR_EXCLUDED,
	BATCHED,
	DELIVER,
	DISABLED,
	MUTED,
	NO_READ,
	NO_SUCH_USER,
	VERDICTS,
	Audit,
	Recipient,
	apply_mutes,
	chunks,
	give_verdicts,
)

__all__ = [
	"ACTOR_EXCLUDED",
	"BATCHED",
	"DELIVER",
	"DISABLED",
	"MUTED",
	"NO_READ",
	"NO_SUCH_USER",
	"VERDICTS",
	"WIRE_KEYS",
	"Context",
	"Delivery",
	"Event",
	"Mode",
	"Outcome",
	"Recipient",
	"channel_message",
	"channel_post",
	"evaluate",
	"preview",
	"run",
	"run_in_chunks",
]


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
	#: Set when the audience was larger than `defer_above` (to at least that size plus one):
	#: nothing decided per recipient yet.
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
	#: For Method rules: the document method that ran (`validate`, `on_update` ...).
	method: str = ""

	def __post_init__(self):
		self.doc = freeze(self.doc)
		self.before = freeze(self.before) if self.before is not None else None


class Context:
	"""What evaluation needs from the site, bundled once per process or request."""

	__slots__ = (
		"batches",
		"budget_ms",
		"condition_globals",
		"directory",
		"limiter",
		"meta",
		"mutes",
		"now",
		"progress",
		"shared",
	)

	def __init__(
		self,
		directory: Directory,
		limiter: RateLimiter,
		*,
		mutes: Mutes | None = None,
		batches: Batches | None = None,
		utils: Mapping | None = None,
		now=datetime.now,
		progress=None,
		budget_ms: float | None = None,
		meta: Meta | None = None,
	):
		#: Time each rule may spend on one event (None: budget.DEFAULT_BUDGET_MS).
		self.budget_ms = budget_ms
		#: Optional `progress(done, total)`, called after each chunk of verdicts for a large audience.
		self.progress = progress
		self.directory = directory
		self.limiter = limiter
		self.mutes = mutes if mutes is not None else InMemoryMutes()
		self.batches = batches if batches is not None else InMemoryBatches()
		self.now = now
		#: Fieldtypes and the first day of the week, for Filters conditions.
		self.meta = meta if meta is not None else OfflineMeta()
		self.shared = base_globals(utils)
		self.condition_globals = condition_namespace(self.shared)


def _scope(rule: r.Rule, event: Event) -> dict:
	return {
		"doc": event.doc,
		"doc_before_save": event.before,
		"actor": event.actor,
		"event": event.event,
		"rule": rule.name,
		"changed_rows": (),
	}


def listens_reason(rule: r.Rule, event: Event) -> str | None:
	"""None when the rule listens to this event (and, for Method, to this method)."""
	if rule.event != event.event:
		return f"the rule listens to {rule.event}, not {event.event}"
	if rule.event == METHOD and event.method != rule.method:
		return f"the rule listens to method {rule.method}, not {event.method or 'none'}"
	return None


#: The user nobody logs in as: never a recipient (matched as user names are, by `user_key`).
GUEST = user_key("Guest")


def _check(rule: r.Rule, field_label: str, fn):
	"""Run a condition or render, turning any failure into a RuleError naming the field."""
	try:
		return fn()
	except RuleError:
		raise
	except BudgetExceeded as e:
		raise RuleError.one(rule.name, field_label, f"stopped: {e}") from None
	except SandboxError as e:
		raise RuleError.one(rule.name, field_label, f"refused by the sandbox: {e}") from None
	except RecursionError:
		raise RuleError.one(
			rule.name, field_label, "stopped: calls nest too deeply (a lambda or macro calling itself?)"
		) from None
	except MemoryError:
		raise RuleError.one(rule.name, field_label, "stopped: out of memory") from None
	except Exception as e:
		raise RuleError.one(
			rule.name, field_label, f"failed on this document: {type(e).__name__}: {e}"
		) from None


# ---------------------------------------------------------------- the stages


@dataclass(frozen=True, slots=True)
class Mode:
	"""How an evaluation runs. The default is live firing.

	`preview` touches no counters and builds no deliveries. `check_condition=False` and
	`only_users` serve test-fire (send regardless of the condition, or to given users);
	permission, disabled-user and actor verdicts still hold there. With `defer_above`, an
	audience of more users than that stops after the audience stage: `outcome.deferred` holds
	its size, for the caller to finish elsewhere (a background job after the commit).
	"""

	preview: bool = False
	check_condition: bool = True
	only_users: tuple[str, ...] | None = None
	defer_above: int | None = None
	#: In a preview: render the texts of this many recipients only (those who would get the
	#: message first); every recipient still gets a verdict. None: everyone's, 0: nobody's.
	texts_for: int | None = None


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

	A failing condition, template or audience row is returned as `outcome.error`, never raised.
	"""
	users = tuple(only_users) if only_users is not None else None
	if users is None and not preview and check_condition:
		mode = _LIVE.get(defer_above)  # live firing, every save: one Mode per limit, made once
		if mode is None:
			mode = _LIVE[defer_above] = Mode(defer_above=defer_above)
	else:
		mode = Mode(preview, check_condition, users, defer_above)
	return run(rule, event, ctx, mode)


#: The Modes of live firing, by their `defer_above` (a frozen dataclass is slow to build).
_LIVE: dict[int | None, Mode] = {}


def run(rule: r.Rule, event: Event, ctx: Context, mode: Mode) -> Outcome:
	"""`evaluate` with its options in one `Mode`."""
	outcome = Outcome(rule=rule.name, event=event.event)
	outcome.reason = listens_reason(rule, event) or ""
	if outcome.reason:
		return outcome
	try:
		# one budget for the rule's own code (conditions and templates) for this event
		Budget(ctx.budget_ms).within(_run_stages, rule, event, ctx, mode, outcome)
	except RuleError as e:
		_failed(outcome, e)
	return outcome


def _run_stages(rule: r.Rule, event: Event, ctx: Context, mode: Mode, outcome: Outcome) -> None:
	# the trigger first, with no more than its own names: most rules stop there on most saves
	scope = _scope(rule, event)
	why_not = trigger_reason(rule, event, ctx, scope, outcome, mode.check_condition)
	if why_not:
		outcome.reason = why_not
		return
	scope.update(ctx.shared)
	ev = _Evaluation(rule, event, ctx, mode, scope)
	recipients = _audience(ev, outcome)
	if recipients is not None:
		_decide(ev, outcome, recipients)


@dataclass(frozen=True, slots=True)
class _Evaluation:
	"""One rule evaluated for one event: what each stage reads (the outcome it fills is its own:
	one per chunk of a large audience)."""

	rule: r.Rule
	event: Event
	ctx: Context
	mode: Mode
	#: The names conditions and templates see (Value Change adds `changed_rows`).
	scope: dict


def _triggered_audience(ev: _Evaluation, outcome: Outcome) -> list[Recipient] | None:
	"""The recipients when the event triggers the rule; None (and the reason) when it does not
	or when the audience is too large to decide here."""
	why_not = trigger_reason(ev.rule, ev.event, ev.ctx, ev.scope, outcome, ev.mode.check_condition)
	if why_not:
		outcome.reason = why_not
		return None
	return _audience(ev, outcome)


def _audience(ev: _Evaluation, outcome: Outcome) -> list[Recipient] | None:
	"""The recipients of a triggered rule; None (and the reason) when there are too many to
	decide here."""
	rule, event, ctx, mode = ev.rule, ev.event, ev.ctx, ev.mode
	if mode.only_users is not None:
		return [Recipient(user, None, "Test Fire") for user in mode.only_users]
	limit = None if mode.preview else mode.defer_above
	recipients = audience_of(rule, event, ctx, ev.scope, limit)
	if limit is not None and len(recipients) > limit:
		outcome.deferred = len(recipients)
		outcome.reason = f"more than {limit} recipients: delivered by a background job after the commit"
		return None
	return recipients


def _decide(ev: _Evaluation, outcome: Outcome, recipients: list) -> None:
	"""Verdicts, texts, rate limit and deliveries for `recipients` (all or one chunk of them)."""
	rule, event, ctx, mode = ev.rule, ev.event, ev.ctx, ev.mode
	audit = Audit(event.doctype, event.docname, event.doc, event.actor, rule.exclude_actor)
	give_verdicts(recipients, audit, ctx.directory, ctx.progress)
	apply_mutes(recipients, rule_target(rule.name), rule.critical, ctx.mutes)
	outcome.recipients = recipients
	readers = [rec for rec in recipients if mode.preview or rec.verdict == DELIVER]
	if mode.preview and mode.texts_for is not None:
		readers = sorted(readers, key=lambda rec: rec.verdict != DELIVER)[: mode.texts_for]
	hidden = ctx.directory.hidden_fields([rec.user for rec in readers], event.doctype) if readers else {}
	# the site's lookups (languages, translations loaded once) are not charged to the rule's time
	translators = translators_for(rule, readers, ctx.directory)
	budget.run(render_texts, rule, event, ev.scope, readers, hidden, translators)  # one clock for all
	apply_rate_limit(recipients, rule, event.docname, ctx.limiter, ctx.batches, consume=not mode.preview)
	deliverable = [rec for rec in recipients if rec.verdict == DELIVER]
	outcome.fired = bool(deliverable)
	outcome.reason = count_reason(recipients)
	if not mode.preview:
		outcome.deliveries = deliveries_for(rule, event, ctx, deliverable, hidden)


def count_reason(recipients: list[Recipient]) -> str:
	"""'2 of 5 recipients', naming the batched and muted ones when there are any."""
	if not recipients:
		return "the audience is empty"
	deliverable = sum(1 for rec in recipients if rec.verdict == DELIVER)
	held = [
		f"{count} {verdict}"
		for verdict in (BATCHED, MUTED)
		if (count := sum(1 for rec in recipients if rec.verdict == verdict))
	]
	return f"{deliverable} of {len(recipients)} recipients" + (f" ({', '.join(held)})" if held else "")


def run_in_chunks(
	rule: r.Rule, event: Event, ctx: Context, size: int, done: Collection[str] = ()
) -> Iterator[Outcome]:
	"""Live firing for an audience of any size, `size` recipients at a time.

	Yields one Outcome per chunk with that chunk's recipients and deliveries, for the caller
	to publish before the next chunk is decided: memory holds the audience's names and one
	chunk's messages, never every message. An outcome with an error (or a rule that does not
	fire at all) is the last one yielded. `done`: the users (and rooms) an earlier run of the
	same delivery decided, left out (a delivery job resumed after its worker died).
	"""
	head = Outcome(rule=rule.name, event=event.event)
	rule_budget = Budget(ctx.budget_ms)  # one for the whole event, across the chunks
	try:
		why_not = listens_reason(rule, event)
		if why_not:
			raise RuleError.one(rule.name, "event", why_not)
		ev = _Evaluation(rule, event, ctx, Mode(), {**_scope(rule, event), **ctx.shared})
		recipients = rule_budget.within(_triggered_audience, ev, head)
	except RuleError as e:
		yield _failed(head, e)
		return
	if recipients and done:
		recipients = [rec for rec in recipients if (rec.user or rec.room) not in done]
	if not recipients:
		head.reason = head.reason or "the audience is empty"
		yield head
		return
	while recipients:
		chunk = recipients[:size]
		del recipients[:size]
		part = Outcome(rule=rule.name, event=event.event, condition=head.condition)
		try:
			rule_budget.within(_decide, ev, part, chunk)
		except RuleError as e:
			yield _failed(part, e)
			return
		yield part


def _failed(outcome: Outcome, error: RuleError) -> Outcome:
	outcome.error = error.problems[0]
	outcome.reason = f"error: {error.problems[0]}"
	outcome.fired = False
	outcome.recipients = []
	outcome.deliveries = []
	return outcome


def trigger_reason(
	rule: r.Rule, event: Event, ctx: Context, scope: dict, outcome: Outcome, check_condition: bool = True
) -> str | None:
	"""None when the event triggers the rule (transition and condition); otherwise why not.

	The condition is evaluated even when it is not checked (test-fire), so its result shows.
	Value Change puts the rows that changed into the scope as `changed_rows`.
	"""
	if rule.event == VALUE_CHANGE:
		why_not, scope["changed_rows"] = value_change(rule, event.doc, event.before)
		if why_not and check_condition:
			return why_not
	if rule.condition is not None:
		outcome.condition = _check(
			rule, "condition", lambda: evaluate_condition(rule.condition, ctx.condition_globals, scope)
		)
		if check_condition and not outcome.condition:
			return "condition is false"
	elif rule.condition_type == r.FILTERS and rule.filters:
		failed = _check(rule, "filters", lambda: _failing_filter(rule, event, ctx))
		outcome.condition = failed is None
		if check_condition and failed:
			return str(failed)
	return None


def _failing_filter(rule: r.Rule, event: Event, ctx: Context):
	"""The first filter that fails, checked on the rule's clock (rows are many, filters a few)."""
	today = ctx.now().date()
	return budget.run(failing_filter, rule.filters, event.doc, rule.document_type, today, ctx.meta)


def audience_of(
	rule: r.Rule, event: Event, ctx: Context, scope: dict, limit: int | None = None
) -> list[Recipient]:
	"""Every user and room the audience rows name, once each, in row order (rooms last).

	Users are named as the site spells them, so one user named twice in different case or with
	spaces is one recipient; a value that names no user gets the verdict "no such user". With
	`limit`, resolving stops once more than `limit` recipients are named: a longer list only
	says that there are too many, its members are not the audience.
	"""
	named: dict[str, str] = {}  # {value: source}, first row first
	rooms: list[Recipient] = []
	for index, row in enumerate(rule.audience, 1):
		if row.condition is not None:
			label = f"audience row {index}: condition"
			if not _check(
				rule, label, lambda row=row: evaluate_condition(row.condition, ctx.condition_globals, scope)
			):
				continue
		if row.audience_type == r.DOCUMENT_VIEWERS:
			rooms.append(Recipient(None, doc_room(event.doctype, event.docname), row.audience_type))
			continue
		try:
			users = row_users(row, event, ctx.directory, limit)
		except LookupError as e:
			raise RuleError.one(
				rule.name, f"audience row {index}: {row.audience_type.lower()}", str(e.args[0])
			) from None
		for user in users:
			if isinstance(user, str) and user.strip():
				named.setdefault(user, row.audience_type)
		if limit is not None and len(named) > limit:
			return [Recipient(user, None, source) for user, source in named.items()]
	return _named_users(named, ctx) + rooms[:1]


def _named_users(named: dict[str, str], ctx: Context) -> list[Recipient]:
	"""One recipient per user the values name, by the site's spelling; unknown values flagged."""
	canonical = ctx.directory.canonical_users(list(named))
	seen: dict[str, Recipient] = {}
	for value, source in named.items():
		user = canonical.get(value)
		key = user_key(user or value)
		if key in seen or key == GUEST:
			continue
		if user is None:
			seen[key] = Recipient(value.strip(), None, source, NO_SUCH_USER)
		else:
			seen[key] = Recipient(user, None, source)
	return list(seen.values())


def render_texts(
	rule: r.Rule,
	event: Event,
	scope: dict,
	readers: list[Recipient],
	hidden: Mapping[str | None, frozenset],
	translators: Mapping[str, tuple] | None = None,
) -> None:
	"""Subject and message for each of `readers`, each seeing only the fields it may read.

	Texts are rendered once per set of hidden fields (so once per distinct set of permission
	levels, not once per user), once per user only for a template that names `recipient`, and once
	per language of the readers only for a rule whose subject or message translates (`_("...")`, in
	each reader's language: `translators`, {user: (language, translate)}, see `translators_for`).
	"""
	per_recipient = (rule.subject and rule.subject.per_recipient) or (
		rule.message and rule.message.per_recipient
	)
	translators = translators or {}
	views: dict[frozenset, dict] = {}
	texts: dict[tuple, tuple[str, str]] = {}
	for rec in readers:
		blind = hidden.get(rec.user, NOTHING_HIDDEN)
		language, translate = translators.get(rec.user, (None, None))
		key = (blind, rec.user if per_recipient else None, language)
		if key not in texts:
			if blind not in views:
				views[blind] = scope if not blind else _view(scope, event, blind)
			if (per_recipient or language) and texts:
				budget.grant(budget.PER_RECIPIENT_SHARE)  # this text is one more for the audience
			view = views[blind]
			if language:
				view = {**view, "_": translate}
			texts[key] = _render(rule, view, key[1])
		rec.subject, rec.message = texts[key]


def translators_for(rule: r.Rule, readers: list[Recipient], directory: Directory) -> dict[str, tuple]:
	"""{user: (language, `_` in it)} for the readers of a rule whose templates translate; {} otherwise."""
	if not ((rule.subject and rule.subject.translated) or (rule.message and rule.message.translated)):
		return {}
	languages = directory.languages([rec.user for rec in readers if rec.user])
	loaded = {language: directory.translator(language) for language in set(languages.values())}
	return {user: (language, loaded[language]) for user, language in languages.items()}


#: The hidden fields of a reader who may read every field.
NOTHING_HIDDEN: frozenset = frozenset()


def _view(scope: dict, event: Event, blind: frozenset) -> dict:
	"""The templates' names for a reader who may not read the `blind` fields."""
	return {**scope, "doc": without(event.doc, blind), "doc_before_save": without(event.before, blind)}


def _render(rule: r.Rule, scope: dict, recipient: str | None) -> tuple[str, str]:
	scope = {**scope, "recipient": recipient}
	subject = _check(rule, "subject", lambda: rule.subject.render(scope)) if rule.subject else ""
	message = _check(rule, "message", lambda: rule.message.render(scope)) if rule.message else ""
	return subject, message


def deliveries_for(
	rule: r.Rule, event: Event, ctx: Context, recipients: list[Recipient], hidden: Mapping
) -> list[Delivery]:
	"""One Delivery per deliverable recipient, each with the payload fields it may read."""
	sent_at = ctx.now()
	return [
		Delivery(
			rule.name,
			rule.event_name,
			rec.user,
			rec.room,
			rule_message(
				rule, event, rec.subject, rec.message, _fields(rule, event, hidden.get(rec.user)), sent_at
			),
		)
		for rec in recipients
	]


def _fields(rule: r.Rule, event: Event, blind: frozenset | None) -> dict:
	blind = blind or NOTHING_HIDDEN
	return {f: to_json_value(event.doc.get(f)) for f in rule.fields if f not in blind}


#: The `event` of a channel post's outcome and message.
CHANNEL_EVENT = "Channel"


def channel_post(channel: r.Channel, text: str, actor: str, event_name: str, ctx: Context) -> Outcome:
	"""A post to a channel, decided as a rule's audience is: the members now, named as the site
	spells them (a value that names no user: "no such user"), each enabled member who did not
	mute the channel gets the message. `text` must already be HTML-escaped. The caller
	publishes the outcome's deliveries as any rule's (rt_studio.delivery.outbox.publish)."""
	outcome = Outcome(rule=channel.name, event=CHANNEL_EVENT)
	named = dict.fromkeys(channel_members(channel, ctx.directory), "Channel")
	outcome.recipients = _named_users(named, ctx)
	users = [rec for rec in outcome.recipients if rec.verdict == DELIVER]
	for chunk in chunks(users):
		enabled = ctx.directory.enabled_users([rec.user for rec in chunk])
		for rec in chunk:
			if rec.user not in enabled:
				rec.verdict = DISABLED
	apply_mutes(outcome.recipients, channel_target(channel.name), False, ctx.mutes)
	message = channel_message(channel.name, text, actor, ctx.now())
	outcome.deliveries = [
		Delivery("", event_name, rec.user, None, message)
		for rec in outcome.recipients
		if rec.verdict == DELIVER
	]
	outcome.fired = bool(outcome.deliveries)
	outcome.reason = count_reason(outcome.recipients)
	return outcome


def preview(rule: r.Rule, event: Event, ctx: Context) -> Outcome:
	"""The preview the desk shows: evaluation with no side effects and text for everyone."""
	return evaluate(rule, event, ctx, preview=True)
