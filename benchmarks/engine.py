"""Engine timings, printed as ratios (never asserted).

Run from the repo root: `python benchmarks/engine.py` (add `--profile` for a cProfile of
`evaluate`). It measures, in one run:

1. the hot path of the site's hook for a DocType nobody listens to, `index.match(doctype,
   events)`, with 10,000 enabled rules on 500 other DocTypes, against an empty function call;
2. evaluating 1, 10 and 100 matching rules per event with the engine (compiled once) against
   the way Frappe's Notification does it (RestrictedPython compile + eval as `frappe.safe_eval`
   and a Jinja `from_string` for subject and message, on every event);
3. what the evaluation budget costs on the ordinary path: the rules' condition, subject and
   message run under the budget with the guarded sandbox, against the same three compiled in
   the sandbox without guards (as the engine did before the budget), and a template over a
   500-row child table both ways;
4. a Filters condition (no code) against the same condition written in Python, on the
   document's own fields and on a 500-row child table (informational: no target).
"""

import argparse
import ast
import cProfile
import functools
import importlib.metadata
import platform
import pstats
import sys
import time
import timeit
import types
import unicodedata
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
	sys.path.insert(0, str(ROOT))

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from RestrictedPython import compile_restricted
from RestrictedPython.Guards import guarded_iter_unpack_sequence, safer_getattr
from RestrictedPython.transformer import RestrictingNodeTransformer

from rt_studio.engine import Context, Event, RuleIndex, budget, compile_rule, evaluate
from rt_studio.engine.budget import Budget, deactivate
from rt_studio.engine.docview import ReadOnlyDoc
from rt_studio.engine.events import DOCUMENT_EVENTS, VALUE_CHANGE
from rt_studio.engine.memory import InMemoryDirectory, InMemoryMeta
from rt_studio.engine.ratelimit import InMemoryRateLimiter
from rt_studio.engine.sandbox import UNSAFE_ATTRIBUTES, base_globals, condition_namespace, evaluate_condition
from rt_studio.engine.utils import OFFLINE_UTILS

REPEAT = 5
ROUNDS = 7
MATCH_NUMBER = 1_000_000
N_DOCTYPES = 500
RULES_PER_DOCTYPE = 20
RULE_COUNTS = (1, 10, 100)
MATCH_TARGET = 5.0
EVALUATE_TARGET = 20.0
BUDGET_TARGET = 0.10
CHILD_ROWS = 500

DOCTYPE = "ToDo"
DOCNAME = "TD-0042"
OWNER = "ana@example.com"
ACTOR = "ben@example.com"
SAVE_EVENTS = ("Save", VALUE_CHANGE)


# ---------------------------------------------------------------- fixtures


def rule_fixture(i: int, document_type: str, event: str, *, short: bool = False) -> dict:
	"""A Realtime Rule as `bench export-fixtures` writes it, distinct per `i`.

	`short` gives one-line templates (part 1 only needs many rules in the index, and compiling
	Jinja templates is most of the build time); part 2 uses the longer message.
	"""
	subject = (
		f"{{{{ doc.name }}}}: {{{{ doc.description }}}} ({{{{ doc.priority }}}}, qty {{{{ doc.qty }}}}) #{i}"
	)
	message = (
		f"<p>Rule {i}: {{{{ doc.modified_by }}}} set <b>{{{{ doc.status }}}}</b> on {{{{ doc.name }}}}.</p>"
		f"{{% if doc.qty > {i} %}}<p>{{{{ doc.qty - {i} }}}} over {i}</p>{{% endif %}}"
	)
	if short:
		subject = f"{{{{ doc.name }}}}: {{{{ doc.description }}}} #{i}"
		message = f"<b>{{{{ doc.status }}}}</b> on {{{{ doc.name }}}} (rule {i})"
	return {
		"doctype": "Realtime Rule",
		"name": f"Bench rule {i:05d}",
		"rule_name": f"Bench rule {i:05d}",
		"enabled": 1,
		"document_type": document_type,
		"event": event,
		"value_changed": "status" if event == VALUE_CHANGE else "",
		"condition": f"doc.priority == 'High' and doc.qty > {i}",
		"audience": [{"doctype": "Realtime Rule Audience", "audience_type": "Owner"}],
		"exclude_actor": 1,
		"subject": subject,
		"message": message,
		"display": "Alert",
		"indicator": "orange",
		"alert_seconds": 5,
		"event_name": "rt_studio",
		"rate_limit_count": 0,
		"rate_limit_seconds": 60,
	}


def document(status: str) -> dict:
	"""A ToDo roughly as `doc.as_dict()` gives it (no HTML in the values the templates print)."""
	return {
		"doctype": DOCTYPE,
		"name": DOCNAME,
		"owner": OWNER,
		"modified_by": ACTOR,
		"creation": datetime(2024, 5, 1, 9, 30),
		"modified": datetime(2024, 5, 2, 16, 5),
		"docstatus": 0,
		"idx": 0,
		"status": status,
		"priority": "High",
		"qty": 1000,
		"date": "2024-05-10",
		"allocated_to": ACTOR,
		"description": "Call the customer back about the delayed order",
		"reference_type": "Sales Order",
		"reference_name": "SO-0001",
		"role": None,
		"assigned_by": OWNER,
		"assigned_by_full_name": "Ana",
		"sender": None,
		"assignment_rule": None,
		"color": None,
		"_assign": None,
		"_comments": None,
		"_liked_by": None,
		"_user_tags": None,
	}


# ---------------------------------------------------------------- Frappe's way, per event


class _dict(dict):
	"""frappe._dict: a dict with attribute access (what Notification's context holds)."""

	__getattr__ = dict.get
	__setattr__ = dict.__setitem__


class FrappeTransformer(RestrictingNodeTransformer):
	"""frappe.utils.safe_exec.FrappeTransformer: RestrictedPython's policy, `_dict` allowed."""

	def check_name(self, node, name, *args, **kwargs):
		if name == "_dict":
			return
		return super().check_name(node, name, *args, **kwargs)


def _check_attribute_access(obj, name):
	if isinstance(name, str) and name in UNSAFE_ATTRIBUTES:
		raise SyntaxError(f"{name} is an unsafe attribute")
	if isinstance(obj, types.ModuleType | types.CodeType | types.TracebackType | types.FrameType):
		raise SyntaxError(f"Reading {obj} attributes is not allowed")
	if name.startswith("_"):
		raise AttributeError(f'"{name}" is an invalid attribute name because it starts with "_"')


def _getattr_for_safe_exec(obj, name, default=None):
	_check_attribute_access(obj, name)
	return safer_getattr(obj, name, default=default)


def _getitem(obj, key):
	if isinstance(key, str) and key.startswith("_"):
		raise SyntaxError("Key starts with _")
	return obj[key]


def _write(obj):
	return obj


WHITELISTED_SAFE_EVAL_GLOBALS = {
	"int": int,
	"float": float,
	"long": int,
	"round": round,
	"_getattr_": _getattr_for_safe_exec,
	"_write_": _write,
	"_getitem_": _getitem,
	"_getiter_": iter,
	"_iter_unpack_sequence_": guarded_iter_unpack_sequence,
}


def frappe_safe_eval(code, eval_globals=None, eval_locals=None):
	"""frappe.safe_eval as in v15: normalize, refuse :=, compile_restricted, eval."""
	code = unicodedata.normalize("NFKC", code)
	for node in ast.walk(ast.parse(code, mode="eval")):
		if isinstance(node, ast.NamedExpr):
			raise SyntaxError("Operation not allowed")
	if not eval_globals:
		eval_globals = {}
	eval_globals["__builtins__"] = {}
	eval_globals.update(WHITELISTED_SAFE_EVAL_GLOBALS)
	code_object = compile_restricted(code, filename="<safe_eval>", policy=FrappeTransformer, mode="eval")
	return eval(code_object, eval_globals, eval_locals)


#: Frappe keeps one Jinja environment per request (frappe.get_jenv); creating it per render
#: would only make this baseline slower, so it is created once here.
JENV = SandboxedEnvironment()


def frappe_render_template(template: str, context: dict) -> str:
	"""frappe.render_template for a template string: strip, refuse `.__`, from_string, render."""
	template = template.strip()
	if ".__" in template:
		raise ValueError("Illegal template")
	return JENV.from_string(template).render(context)


FRAPPE_UTILS = _dict(OFFLINE_UTILS)


def notification_event(fixtures: list[dict], doc: _dict) -> list[tuple[str, str]]:
	"""What Notification does per event for each of its alerts: compile and render from source."""
	sent = []
	for alert in fixtures:
		context = {"doc": doc, "nowdate": OFFLINE_UTILS["nowdate"], "frappe": _dict(utils=FRAPPE_UTILS)}
		if alert["condition"] and not frappe_safe_eval(alert["condition"], None, context):
			continue
		context = {"doc": doc, "alert": alert, "comments": None}
		sent.append(
			(
				frappe_render_template(alert["subject"], context),
				frappe_render_template(alert["message"], context),
			)
		)
	return sent


# ---------------------------------------------------------------- timing


def calls_for(timer: timeit.Timer, min_time: float) -> int:
	"""How many calls make one timing run of at least `min_time` seconds."""
	one = timer.timeit(number=1)
	return max(1, int(min_time / one)) if one > 0 else 1_000


def best_per_call(timer: timeit.Timer, number: int) -> float:
	"""Best of REPEAT runs of `number` calls, in seconds per call."""
	return min(timer.repeat(repeat=REPEAT, number=number)) / number


def best_interleaved(timers: list[timeit.Timer], min_time: float = 0.1, rounds: int = ROUNDS) -> list[float]:
	"""Best seconds per call of each timer, run in turns so that all see the same machine load."""
	numbers = [calls_for(timer, min_time) for timer in timers]
	best = [float("inf")] * len(timers)
	for _ in range(rounds):
		for i, (timer, number) in enumerate(zip(timers, numbers, strict=True)):
			best[i] = min(best[i], timer.timeit(number=number) / number)
	return best


def fmt_time(seconds: float) -> str:
	if seconds < 1e-6:
		return f"{seconds * 1e9:.1f} ns"
	if seconds < 1e-3:
		return f"{seconds * 1e6:.1f} us"
	return f"{seconds * 1e3:.2f} ms"


def verdict(ratio: float, target: float, lower_is_better: bool) -> str:
	ok = ratio <= target if lower_is_better else ratio >= target
	return "meets target" if ok else "MISSES target"


# ---------------------------------------------------------------- 1. the no-rule hot path


def bench_match(rows: list) -> None:
	print(
		f"1. Event on a DocType with no rules, {N_DOCTYPES * RULES_PER_DOCTYPE:,} rules on {N_DOCTYPES} other DocTypes"
	)
	fixtures = [
		rule_fixture(
			d * RULES_PER_DOCTYPE + j,
			f"Bench DocType {d:03d}",
			DOCUMENT_EVENTS[(d * RULES_PER_DOCTYPE + j) % len(DOCUMENT_EVENTS)],
			short=True,
		)
		for d in range(N_DOCTYPES)
		for j in range(RULES_PER_DOCTYPE)
	]
	start = time.perf_counter()
	compiled = [compile_rule(f) for f in fixtures]
	compile_seconds = time.perf_counter() - start
	start = time.perf_counter()
	index = RuleIndex(compiled)
	index_seconds = time.perf_counter() - start
	print(
		f"   compile_rule x {len(compiled):,}: {compile_seconds:.2f} s ({fmt_time(compile_seconds / len(compiled))} per rule);"
		f" RuleIndex: {index_seconds * 1e3:.1f} ms"
	)
	if index.has_rules(DOCTYPE) or index.match(DOCTYPE, SAVE_EVENTS):
		print(f"   WARNING: {DOCTYPE} has rules in the index; the measurement is not of the empty path")
	elif len(index.match("Bench DocType 000", SAVE_EVENTS)) == 0:
		print("   WARNING: the index returns nothing for a DocType that has rules")

	def noop(doctype, events):
		return ()

	namespace = {"_index": index, "_noop": noop, "_doctype": DOCTYPE, "_events": SAVE_EVENTS}
	setup = "index = _index; noop = _noop; doctype = _doctype; events = _events"
	empty = best_per_call(timeit.Timer("pass", setup, globals=namespace), MATCH_NUMBER)
	base = best_per_call(timeit.Timer("noop(doctype, events)", setup, globals=namespace), MATCH_NUMBER)
	match = best_per_call(
		timeit.Timer("index.match(doctype, events)", setup, globals=namespace), MATCH_NUMBER
	)
	ratio = match / base
	print(
		f"   timeit number={MATCH_NUMBER:,}, best of {REPEAT}: empty loop {empty * 1e9:.1f} ns,"
		f" noop(doctype, events) {base * 1e9:.1f} ns, index.match(doctype, events) {match * 1e9:.1f} ns"
	)
	print(
		f"   ratio match / noop = {ratio:.2f}x (target <= {MATCH_TARGET:g}x: {verdict(ratio, MATCH_TARGET, True)})"
	)
	print()
	rows.append(
		(
			f"no-rule event, {len(compiled):,} rules",
			f"{match * 1e9:.1f} ns",
			f"{base * 1e9:.1f} ns (noop)",
			f"{ratio:.2f}x",
			f"<= {MATCH_TARGET:g}x",
			verdict(ratio, MATCH_TARGET, True),
		)
	)


# ---------------------------------------------------------------- 2. evaluating matching rules


def make_context() -> Context:
	users = {
		OWNER: {"roles": ["Sales User"], "enabled": True, "can_read": [DOCTYPE]},
		ACTOR: {"roles": ["Sales User"], "enabled": True, "can_read": [DOCTYPE]},
	}
	return Context(InMemoryDirectory(users), InMemoryRateLimiter())


def ours_event(rules, ctx, doc, before):
	"""The site's work per event once the index matched: one Event, then evaluate each rule."""
	event = Event(DOCTYPE, DOCNAME, "Save", doc, before=before, actor=ACTOR)
	return [evaluate(rule, event, ctx) for rule in rules]


def sanity_check(count, outcomes, sent) -> bool:
	"""Both paths fire every rule and render the same subject and message (a warning if not)."""
	fired = [o for o in outcomes if o.fired and o.deliveries]
	if len(fired) != count or len(sent) != count:
		print(f"   WARNING ({count} rules): {len(fired)} fired here, {len(sent)} in the Notification path")
		return False
	for outcome, (subject, message) in zip(fired, sent, strict=True):
		ours = outcome.deliveries[0].message
		if ours["subject"] != subject or ours["message"] != message:
			print(f"   WARNING ({count} rules): {outcome.rule} renders differently:")
			print(f"     ours:     {ours['subject']!r} / {ours['message']!r}")
			print(f"     frappe's: {subject!r} / {message!r}")
			return False
	return True


def bench_evaluate(rows: list) -> float:
	"""Part 2; returns the time per rule of RT Studio's evaluation with 10 matching rules."""
	print("2. Evaluating matching rules per event (condition + subject + message, audience Owner)")
	print(f"   best of {ROUNDS} runs of >= 0.1 s each, the two paths taking turns")
	ctx = make_context()
	doc, before = document("Open"), document("Pending")
	frappe_doc = _dict(doc)
	for count in RULE_COUNTS:
		fixtures = [rule_fixture(i, DOCTYPE, "Save") for i in range(count)]
		start = time.perf_counter()
		rules = [compile_rule(f) for f in fixtures]
		compile_seconds = time.perf_counter() - start
		outcomes, sent = ours_event(rules, ctx, doc, before), notification_event(fixtures, frappe_doc)
		if sanity_check(count, outcomes, sent) and count == RULE_COUNTS[0]:
			print(f"   both paths render the same text, e.g. subject {sent[0][0]!r}")
		ours, theirs = best_interleaved(
			[
				timeit.Timer(lambda rules=rules: ours_event(rules, ctx, doc, before)),
				timeit.Timer(lambda fixtures=fixtures: notification_event(fixtures, frappe_doc)),
			]
		)
		ratio = theirs / ours
		if count == 10:
			per_rule = ours / count
		print(
			f"   {count:>3} rules: RT Studio {fmt_time(ours)} per event ({fmt_time(ours / count)} per rule),"
			f" recompile {fmt_time(theirs)} per event ({fmt_time(theirs / count)} per rule),"
			f" recompile / ours = {ratio:.1f}x; compile_rule {fmt_time(compile_seconds / count)} per rule"
		)
		target = EVALUATE_TARGET if count >= 10 else None
		rows.append(
			(
				f"evaluate, {count} matching rule{'s' if count > 1 else ''}",
				fmt_time(ours),
				f"{fmt_time(theirs)} (recompile)",
				f"{ratio:.1f}x",
				f">= {target:g}x" if target else "-",
				verdict(ratio, target, False) if target else "-",
			)
		)
	print()
	return per_rule


# ---------------------------------------------------------------- 3. the budget's cost


def _plain_getattr(obj, name, *default):
	"""The conditions' attribute policy as it was before the budget (no guarded methods)."""
	if not isinstance(name, str) or name.startswith("_") or name in UNSAFE_ATTRIBUTES:
		raise AttributeError(name)
	if isinstance(obj, ReadOnlyDoc) and name in obj:
		return obj[name]
	return getattr(obj, name, *default)


#: The conditions' globals before the budget: plain iteration, no operator guards.
PLAIN_GUARDS = {
	"__builtins__": {
		"int": int,
		"float": float,
		"len": len,
		"any": any,
		"all": all,
		"sum": sum,
		"range": range,
	},
	"_getattr_": _plain_getattr,
	"_getitem_": lambda obj, key: obj[key],
	"_getiter_": iter,
	"_iter_unpack_sequence_": guarded_iter_unpack_sequence,
}


class PlainTemplateSandbox(ImmutableSandboxedEnvironment):
	"""Templates as the engine compiled them before the budget: Jinja's immutable sandbox, a
	document's fields read first (memoised verdict on the name), escaping, None printed as ""."""

	def getattr(self, obj, attribute):
		if type(obj) is ReadOnlyDoc and isinstance(attribute, str) and attribute in obj:
			if _plain_field_allowed(attribute):
				return obj[attribute]
		return super().getattr(obj, attribute)


@functools.lru_cache(maxsize=4096)
def _plain_field_allowed(name: str) -> bool:
	return not name.startswith("_") and name not in UNSAFE_ATTRIBUTES


PLAIN_TEMPLATES = PlainTemplateSandbox(
	autoescape=True,
	finalize=lambda value: "" if value is None else value,
	undefined=jinja2.ChainableUndefined,
)


def plain_rule(fixture: dict):
	"""The fixture's condition, subject and message compiled without the budget's guards."""
	condition = compile_restricted(fixture["condition"], filename="<condition>", mode="eval")
	return condition, plain_template(fixture["subject"]), plain_template(fixture["message"])


def plain_template(source: str):
	template = PLAIN_TEMPLATES.from_string(source)
	template.globals = dict(template.globals)  # as the engine does: no ChainMap copy per render
	return template


def guarded_texts(rules, namespace: dict, scope: dict) -> None:
	"""What evaluate runs of a rule's own code per event, as it runs it: a budget for the rule,
	the condition, then subject and message under one clock."""
	for rule in rules:
		token = Budget().activate()
		try:
			evaluate_condition(rule.condition, namespace, scope)
			budget.run(_render_both, rule, scope)
		finally:
			deactivate(token)


def _render_both(rule, scope: dict) -> None:
	rule.subject.render(scope)
	rule.message.render(scope)


def plain_texts(plain, namespace: dict, scope: dict) -> None:
	for condition, subject, message in plain:
		globals_ = namespace.copy()
		globals_.update(scope)
		bool(eval(condition, globals_))
		subject.render(scope)
		message.render(scope)


CHILD_TABLE_TEMPLATE = (
	"<ul>{% for row in doc.items %}<li>{{ row.item_code }}: {{ row.qty }} x {{ row.rate }}"
	"{% if row.qty > 5 %} (bulk){% endif %}</li>{% endfor %}</ul>"
)


def bench_budget(rows: list, evaluate_per_rule: float) -> None:
	print("3. The evaluation budget on the ordinary path (condition + subject + message per rule)")
	count = 10
	fixtures = [rule_fixture(i, DOCTYPE, "Save") for i in range(count)]
	rules = [compile_rule(f) for f in fixtures]
	plain = [plain_rule(f) for f in fixtures]
	event = Event(DOCTYPE, DOCNAME, "Save", document("Open"), document("Pending"), ACTOR)
	shared = base_globals()
	scope = {"doc": event.doc, "doc_before_save": event.before, "actor": ACTOR, **shared}
	guarded_ns, plain_ns = condition_namespace(shared), {**shared, **PLAIN_GUARDS}
	with_budget, without = best_interleaved(
		[
			timeit.Timer(lambda: guarded_texts(rules, guarded_ns, scope)),
			timeit.Timer(lambda: plain_texts(plain, plain_ns, scope)),
		]
	)
	extra = (with_budget - without) / count
	share = extra / evaluate_per_rule
	print(
		f"   per rule: with the budget {fmt_time(with_budget / count)}, without {fmt_time(without / count)};"
		f" the budget adds {fmt_time(extra)}, {share:.1%} of a whole evaluation ({fmt_time(evaluate_per_rule)}"
		" per rule in part 2)"
	)
	items = [{"item_code": f"ITEM-{i:04d}", "qty": i % 9, "rate": 12.5} for i in range(CHILD_ROWS)]
	table_event = Event(DOCTYPE, DOCNAME, "Save", {**document("Open"), "items": items}, None, ACTOR)
	table_scope = {"doc": table_event.doc}
	guarded_table = compile_rule({**fixtures[0], "message": CHILD_TABLE_TEMPLATE}).message
	plain_table = plain_template(CHILD_TABLE_TEMPLATE)
	if guarded_table.render(table_scope) != plain_table.render(table_scope):
		print("   WARNING: the child-table template renders differently with and without the budget")
	table_with, table_without = best_interleaved(
		[
			timeit.Timer(lambda: guarded_table.render(table_scope)),
			timeit.Timer(lambda: plain_table.render(table_scope)),
		],
		min_time=0.2,
		rounds=5,
	)
	print(
		f"   a message over a {CHILD_ROWS}-row child table: {fmt_time(table_with)} with the budget,"
		f" {fmt_time(table_without)} without ({table_with / table_without:.2f}x)"
	)
	print()
	rows.append(
		(
			"budget, ordinary rule",
			f"+{fmt_time(extra)}",
			f"{fmt_time(evaluate_per_rule)} (evaluate)",
			f"{share:.1%}",
			f"<= {BUDGET_TARGET:.0%}",
			verdict(share, BUDGET_TARGET, True),
		)
	)
	rows.append(
		(
			f"budget, {CHILD_ROWS}-row template",
			fmt_time(table_with),
			f"{fmt_time(table_without)} (no budget)",
			f"{table_with / table_without:.2f}x",
			"-",
			"-",
		)
	)


# ---------------------------------------------------------------- 4. Filters against Python

#: The same condition twice: as the filter editor writes it, and as a Python expression.
FILTERS = [
	["ToDo", "status", "=", "Open"],
	["ToDo", "priority", "in", ["High", "Medium"]],
	["ToDo", "qty", ">", 5],
	["ToDo", "date", "between", ["2024-05-01", "2024-05-31"]],
	["ToDo", "description", "like", "%customer%"],
]
PYTHON_CONDITION = (
	"doc.status == 'Open' and doc.priority in ('High', 'Medium') and doc.qty > 5"
	" and '2024-05-01' <= doc.date <= '2024-05-31' and 'customer' in doc.description.lower()"
)
ROW_FILTERS = [["ToDo Item", "qty", ">", 7], ["ToDo Item", "item_code", "like", "ITEM-04%"]]
FIELDTYPES = InMemoryMeta(
	{
		("ToDo", "status"): "Select",
		("ToDo", "priority"): "Select",
		("ToDo", "qty"): "Int",
		("ToDo", "date"): "Date",
		("ToDo", "description"): "Text Editor",
		("ToDo Item", "qty"): "Int",
		("ToDo Item", "item_code"): "Data",
	}
)
ROW_CONDITION = "any(row.qty > 7 and row.item_code.startswith('ITEM-04') for row in doc.items)"


def bench_filters(rows: list) -> None:
	print("4. A Filters condition against the same condition in Python (whole evaluation, one rule)")
	ctx = make_context()
	ctx.meta = FIELDTYPES  # as on a site: each field's type known, none guessed from its values
	items = [{"doctype": "ToDo Item", "item_code": f"ITEM-{i:04d}", "qty": i % 9} for i in range(CHILD_ROWS)]
	base = rule_fixture(0, DOCTYPE, "Save")
	for label, filters, condition, doc in (
		("document fields", FILTERS, PYTHON_CONDITION, document("Open")),
		(f"{CHILD_ROWS}-row child table", ROW_FILTERS, ROW_CONDITION, {**document("Open"), "items": items}),
	):
		by_filters = compile_rule({**base, "condition_type": "Filters", "filters": filters})
		by_python = compile_rule({**base, "condition": condition})
		event = Event(DOCTYPE, DOCNAME, "Save", doc, document("Pending"), ACTOR)
		fired = (evaluate(by_filters, event, ctx).fired, evaluate(by_python, event, ctx).fired)
		if fired != (True, True):
			print(f"   WARNING ({label}): fired {fired} (Filters, Python)")
		with_filters, with_python = best_interleaved(
			[
				timeit.Timer(lambda r=by_filters, e=event: evaluate(r, e, ctx)),
				timeit.Timer(lambda r=by_python, e=event: evaluate(r, e, ctx)),
			]
		)
		ratio = with_filters / with_python
		print(f"   {label}: Filters {fmt_time(with_filters)}, Python {fmt_time(with_python)} ({ratio:.2f}x)")
		rows.append(
			(
				f"filters, {label}",
				fmt_time(with_filters),
				f"{fmt_time(with_python)} (Python)",
				f"{ratio:.2f}x",
				"-",
				"-",
			)
		)
	print()


def profile_evaluate(count: int = 100, events: int = 200) -> None:
	"""Where `evaluate` spends its time, per rule, for `count` matching rules."""
	ctx = make_context()
	doc, before = document("Open"), document("Pending")
	rules = [compile_rule(rule_fixture(i, DOCTYPE, "Save")) for i in range(count)]
	profiler = cProfile.Profile()
	profiler.enable()
	for _ in range(events):
		ours_event(rules, ctx, doc, before)
	profiler.disable()
	print(f"cProfile: {events} events x {count} matching rules, top 20 by own time")
	pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(20)


def print_table(rows: list) -> None:
	header = ("benchmark", "RT Studio", "baseline", "ratio", "target", "")
	widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
	for row in [header, tuple("-" * w for w in widths), *rows]:
		print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--profile", action="store_true", help="also print a cProfile of evaluate")
	args = parser.parse_args()
	print(
		f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.machine()},"
		f" RestrictedPython {importlib.metadata.version('RestrictedPython')}, Jinja2 {jinja2.__version__}"
	)
	print()
	started = time.perf_counter()
	rows: list = []
	bench_match(rows)
	per_rule = bench_evaluate(rows)
	bench_budget(rows, per_rule)
	bench_filters(rows)
	if args.profile:
		profile_evaluate()
	print_table(rows)
	print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
	main()
