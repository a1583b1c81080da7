"""Part 1 of `site.py`: what one ToDo save costs with Realtime Rules and with Frappe Notifications.

Each save is what a request does: load the ToDo, change it, `save()`, `frappe.db.commit()`;
the time taken is that of the save and the commit together, so it holds everything either
system does for the save in the web worker: RT Studio's evaluation in the document hooks, the
numbering, replay log and inbox rows it writes just before the commit, and its publish and trace
just after; Notification's evaluation and the `make_notification_logs` jobs it enqueues (these go
to a scratch queue no worker reads; what the worker later does with one is measured apart). Five
variants, all on the same ten ToDos of an ordinary System User (owner and assignee):

    none          no Realtime Rule, no Notification
    other         50 Realtime Rules on 50 other DocTypes (a DocType without rules)
    false         10 Save rules on ToDo whose condition is false
    true          10 Save rules on ToDo whose condition is true: an Alert to `allocated_to`
                  with subject and message templates (10 messages a save)
    notification  10 Save Notifications on ToDo with the same condition and templates,
                  System Notification to `allocated_to` (10 jobs a save)

They are interleaved: each round runs every variant once (the order turns each round), a few
unmeasured saves after each switch, then `--per-save-ops` measured saves. The report gives
each variant's median over all rounds, its overhead over `none`, and the ratio of
Notification's overhead to the rules' (also per round, and the median of those ratios).

Then the `true` case once more with every stage of RT Studio timed (a wrapper with a clock
around each function, on top of the save): where its microseconds go.

Everything is committed (a commit is part of the cost) and deleted at the end, also after an
error: the rules, Notifications, ToDos, their inbox rows and Versions, the user, the scratch
queue, and the user's replay log and counters in Redis.
"""

import statistics
import time
from collections import defaultdict

import frappe

from rt_studio.tests.crowd import Member, forget_cached, insert_crowd, remove_crowd

OWNER = "rt.bench.saver@example.com"
PREFIX = "rt-bench-ps-"
NOTIFICATION_PREFIX = "RT Bench PS "
SCRATCH_QUEUE = "rt_bench_ps_scratch"
TODOS = 10
RULES = 10
OTHER_RULES = 50
SWITCH_WARMUP = 5
#: Notification jobs run here (then rolled back) to show what the worker does with each.
NOTIFICATION_LOG_SAMPLE = 20
CONDITION = "doc.status == 'Open' and doc.priority in ('Medium', 'High')"
FALSE_CONDITION = "doc.status == 'Closed' and doc.priority in ('Medium', 'High')"
SUBJECT = "{{ doc.description }} ({{ doc.priority }})"
MESSAGE = "<b>{{ doc.name }}</b>: {{ doc.description }}, due {{ doc.date or 'never' }}, by {{ doc.owner }}"
VARIANTS = ("none", "other", "false", "true", "notification")

#: (module, attribute, label) of the stages timed in the profile; "+" labels run before or
#: after the commit, the rest inside the document hooks.
STAGES = (
	("rt_studio.handler", "on_document_event", "hooks: RT Studio's handler, all of it"),
	("rt_studio.rule_cache", "get_index", "  rule index (token read, match)"),
	("rt_studio.save.handler", "context_for", "  context (the document's shares, site lookups)"),
	("rt_studio.save.handler", "freeze", "  document snapshots (before and after)"),
	("rt_studio.save.handler", "evaluate", "  evaluate, per rule:"),
	("rt_studio.engine.evaluate", "trigger_reason", "    condition"),
	("rt_studio.engine.evaluate", "audience_of", "    audience (allocated_to)"),
	("rt_studio.engine.evaluate", "give_verdicts", "    permission (can the recipient read it)"),
	("rt_studio.engine.evaluate", "apply_mutes", "    mutes"),
	("rt_studio.engine.evaluate", "translators_for", "    language"),
	("rt_studio.engine.evaluate", "render_texts", "    rendering (subject and message)"),
	("rt_studio.engine.evaluate", "apply_rate_limit", "    rate limit"),
	("rt_studio.engine.evaluate", "deliveries_for", "    the message (wire format)"),
	("rt_studio.save.handler", "finish", "  queue for the commit, per rule:"),
	("rt_studio.delivery.delivery_log", "record", "    numbering: queue the message"),
	("rt_studio.delivery.inbox", "remember", "    inbox: queue the row"),
	("rt_studio.delivery.trace", "record", "    trace: queue the entry"),
	("rt_studio.delivery.delivery_log", "stamp_queued", "+ before the commit: numbering (seq, replay log)"),
	("rt_studio.delivery.inbox", "keep", "+ before the commit: inbox rows (one INSERT)"),
	("rt_studio.delivery.outbox", "emit", "+ after the commit: publish (one pipeline)"),
	("rt_studio.delivery.trace", "write", "+ after the commit: trace (one pipeline)"),
)


# --------------------------------------------------------------------------- setup


def _rule(name: str, doctype: str, condition: str, audience: list[dict]) -> None:
	frappe.get_doc(
		{
			"doctype": "Realtime Rule",
			"rule_name": name,
			"enabled": 0,
			"document_type": doctype,
			"event": "Save" if doctype == "ToDo" else "New",
			"condition": condition,
			"audience": audience,
			"exclude_actor": 0,
			"subject": SUBJECT if doctype == "ToDo" else "{{ doc.name }}",
			"message": MESSAGE if doctype == "ToDo" else "{{ doc.name }} changed",
			"display": "Alert",
			"indicator": "blue",
		}
	).insert()


def _notification(name: str) -> None:
	frappe.get_doc(
		{
			"doctype": "Notification",
			"name": name,
			"subject": SUBJECT,
			"document_type": "ToDo",
			"event": "Save",
			"channel": "System Notification",
			"enabled": 0,
			"condition": CONDITION,
			"message": MESSAGE,
			"message_type": "HTML",
			"recipients": [{"receiver_by_document_field": "allocated_to"}],
		}
	).insert()


def setup(state: dict) -> None:
	from rt_studio.engine.events import IGNORED_DOCTYPES

	frappe.set_user("Administrator")
	# ToDo's own rules and Notifications would fire in every variant: off for the run (committed,
	# so the site's ToDos go without them meanwhile), on again at the end
	state["disabled_rules"] = frappe.get_all(
		"Realtime Rule", filters={"enabled": 1, "document_type": "ToDo"}, pluck="name"
	)
	state["disabled_notifications"] = frappe.get_all(
		"Notification", filters={"enabled": 1, "document_type": "ToDo"}, pluck="name"
	)
	_set("Realtime Rule", state["disabled_rules"], 0)
	_set("Notification", state["disabled_notifications"], 0)
	if state["disabled_rules"] or state["disabled_notifications"]:
		print(
			f"   off during the run, on again at its end: rules {state['disabled_rules'] or '-'},"
			f" ToDo Notifications {state['disabled_notifications'] or '-'}"
		)
	insert_crowd([Member(OWNER)])
	state["users"] = [OWNER]
	frappe.db.commit()

	others = frappe.get_all(
		"DocType",
		filters={
			"istable": 0,
			"issingle": 0,
			"is_virtual": 0,
			"name": ("not in", [*IGNORED_DOCTYPES, "ToDo"]),
		},
		pluck="name",
		order_by="name",
		limit_page_length=OTHER_RULES,
	)
	sets = state["sets"] = {v: {"Realtime Rule": [], "Notification": []} for v in VARIANTS}
	for i, doctype in enumerate(others):
		name = f"{PREFIX}other-{i:02d}"
		_rule(name, doctype, "doc.name", [{"audience_type": "Owner"}])
		sets["other"]["Realtime Rule"].append(name)
	to_assignee = [{"audience_type": "User Field", "user_field": "allocated_to"}]
	for i in range(RULES):
		_rule(f"{PREFIX}false-{i}", "ToDo", FALSE_CONDITION, to_assignee)
		sets["false"]["Realtime Rule"].append(f"{PREFIX}false-{i}")
		_rule(f"{PREFIX}true-{i}", "ToDo", CONDITION, to_assignee)
		sets["true"]["Realtime Rule"].append(f"{PREFIX}true-{i}")
		_notification(f"{NOTIFICATION_PREFIX}{i}")
		sets["notification"]["Notification"].append(f"{NOTIFICATION_PREFIX}{i}")
	frappe.db.commit()

	frappe.set_user(OWNER)
	state["todos"] = []
	for i in range(TODOS):
		doc = frappe.get_doc(
			{
				"doctype": "ToDo",
				"description": f"rt bench ps {i}",
				"allocated_to": OWNER,
				"priority": "Medium",
			}
		).insert()
		state["todos"].append(doc.name)
	frappe.db.commit()
	frappe.set_user("Administrator")


def _set(doctype: str, names: list[str], enabled: int) -> None:
	if names:
		frappe.db.sql(
			f"update `tab{doctype}` set enabled=%s, modified=%s where name in %s",
			(enabled, frappe.utils.now(), tuple(names)),
		)


def switch_to(state: dict, variant: str) -> None:
	"""Only `variant`'s rules and Notifications enabled, committed, as a System Manager would."""
	from rt_studio import rule_cache

	for other, named in state["sets"].items():
		for doctype, names in named.items():
			_set(doctype, names, int(other == variant))
	frappe.db.commit()
	rule_cache.invalidate()
	frappe.cache.hdel("notifications", "ToDo")


# --------------------------------------------------------------------------- the saves


def _scratch_enqueue(state: dict):
	"""Notification's jobs go through RQ into a queue no worker reads; other jobs are counted."""
	import frappe.utils.background_jobs as background_jobs

	frappe.local.conf.setdefault("workers", {})[SCRATCH_QUEUE] = {"timeout": 300}
	original = background_jobs.enqueue
	state["jobs"] = 0
	state["sample"] = []
	state["other_jobs"] = []

	def enqueue(method, *args, **kwargs):
		name = method if isinstance(method, str) else f"{method.__module__}.{method.__qualname__}"
		if name.endswith("make_notification_logs"):
			kwargs["queue"] = SCRATCH_QUEUE
			kwargs.pop("now", None)
			state["jobs"] += 1
			if len(state["sample"]) < NOTIFICATION_LOG_SAMPLE:
				state["sample"].append((kwargs.get("doc"), kwargs.get("users")))
			return original(method, *args, **kwargs)
		state["other_jobs"].append(name)
		return None

	state["original_enqueue"] = frappe.enqueue
	frappe.enqueue = enqueue


def new_request() -> None:
	"""What a new request starts without: its copies of what it read from Redis (Frappe's metas,
	roles and permissions, RT Studio's rules token, mutes and preferences, Notification's list of
	the DocType's Notifications), so each save pays its per-request reads as a request does. The
	process keeps what a worker process keeps (RT Studio's compiled rules, Frappe's compiled code)."""
	frappe.local.cache = {}
	frappe.local.rt_studio_index = None


def saves(state: dict, count: int, tag: str) -> list[float]:
	"""`count` saves as the ToDos' owner, each load, change, save and commit; seconds each."""
	frappe.set_user(OWNER)
	times = []
	todos = state["todos"]
	for i in range(count):
		new_request()
		doc = frappe.get_doc("ToDo", todos[i % len(todos)])
		doc.description = f"rt bench ps {tag} {i}"
		t = time.perf_counter()
		doc.save()
		frappe.db.commit()
		times.append(time.perf_counter() - t)
	frappe.set_user("Administrator")
	return times


def outbox_size() -> int:
	return len(getattr(frappe.local, "rt_studio_outbox", None) or [])


def interleaved(state: dict, rounds: int, ops: int) -> dict:
	samples = {v: [] for v in VARIANTS}
	per_round = []
	for r in range(rounds):
		order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
		medians = {}
		for variant in order:
			switch_to(state, variant)
			saves(state, SWITCH_WARMUP, f"{variant}-warm-{r}")
			times = saves(state, ops, f"{variant}-{r}")
			samples[variant] += times
			medians[variant] = statistics.median(times)
		per_round.append(medians)
	return {"samples": samples, "per_round": per_round}


def messages_per_save(state: dict) -> tuple[float, float]:
	"""(RT messages, Notification jobs) one save of the `true` / `notification` variant makes."""
	from rt_studio.delivery import outbox

	sent = []
	original = outbox.emit
	outbox.emit = lambda messages: (sent.extend(messages), original(messages))
	try:
		switch_to(state, "true")
		saves(state, 10, "count-rt")
	finally:
		outbox.emit = original
	jobs = state["jobs"]
	switch_to(state, "notification")
	saves(state, 10, "count-n")
	return sum(1 for event, _m, _r in sent if event == "rt_studio") / 10, (state["jobs"] - jobs) / 10


# --------------------------------------------------------------------------- the profile


class Stages:
	"""Inclusive seconds and calls per wrapped function."""

	def __init__(self):
		self.seconds = defaultdict(float)
		self.calls = defaultdict(int)
		self.undo = []

	def wrap(self, module_name: str, attr: str, label: str) -> None:
		module = frappe.get_module(module_name)
		original = getattr(module, attr)
		seconds, calls = self.seconds, self.calls

		def timed(*args, **kwargs):
			t = time.perf_counter()
			try:
				return original(*args, **kwargs)
			finally:
				seconds[label] += time.perf_counter() - t
				calls[label] += 1

		setattr(module, attr, timed)
		self.undo.append((module, attr, original))

	def wrap_preferences(self) -> None:
		"""outbox.publish reads preferences through the module: time its for_deliveries."""
		from rt_studio.delivery import preferences

		self.wrap(preferences.__name__, "for_deliveries", "    preferences (one read per request)")

	def restore(self) -> None:
		for module, attr, original in reversed(self.undo):
			setattr(module, attr, original)
		self.undo.clear()


def profile(state: dict, ops: int) -> tuple[list[float], list[float], Stages]:
	"""The `true` case with each stage timed, beside `none` unwrapped, interleaved in halves."""
	stages = Stages()
	none_times, true_times = [], []
	for half in range(2):
		switch_to(state, "none")
		saves(state, SWITCH_WARMUP, f"p-none-warm-{half}")
		none_times += saves(state, ops // 2, f"p-none-{half}")
		switch_to(state, "true")
		saves(state, SWITCH_WARMUP, f"p-true-warm-{half}")
		for module, attr, label in STAGES:
			if label:
				stages.wrap(module, attr, label)
		stages.wrap_preferences()
		try:
			true_times += saves(state, ops // 2, f"p-true-{half}")
		finally:
			stages.restore()
	return none_times, true_times, stages


def print_profile(none_times: list[float], true_times: list[float], stages: Stages, n: int) -> None:
	none_us = statistics.median(none_times) * 1e6
	true_us = statistics.median(true_times) * 1e6
	print(
		f"\n   where the `true` case's time goes ({n} saves with every stage clocked; medians: save"
		f" {true_us:.0f} us, {none_us:.0f} us without rules, so {true_us - none_us:.0f} us more;"
		" the clocks add about 1 us per call):"
	)
	print(f"   {'stage':58} {'us/save':>8} {'calls/save':>10} {'us/call':>8}")
	labels = [label for _m, _a, label in STAGES if label]
	labels.insert(labels.index("    numbering: queue the message"), "    preferences (one read per request)")
	for label in labels:
		seconds, calls = stages.seconds.get(label, 0.0), stages.calls.get(label, 0)
		print(
			f"   {label:58} {seconds / n * 1e6:8.0f} {calls / n:10.1f} {seconds / max(calls, 1) * 1e6:8.1f}"
		)
	total = sum(stages.seconds[label] for label in labels if not label.startswith(" "))
	print(f"   {'RT Studio in all (the lines without indent)':58} {total / n * 1e6:8.0f}")


# --------------------------------------------------------------------------- report


def report(result: dict, counted: tuple[float, float], ops: int, rounds: int) -> dict:
	samples, per_round = result["samples"], result["per_round"]
	med = {v: statistics.median(samples[v]) * 1e6 for v in VARIANTS}
	print(
		f"   {'variant':14} {'saves':>6} {'median us':>10} {'overhead us':>12} {'per rule us':>12}"
		f" {'x none':>7}"
	)
	for v in VARIANTS:
		over = med[v] - med["none"]
		per_rule = over / (OTHER_RULES if v == "other" else RULES) if v != "none" else 0
		print(
			f"   {v:14} {len(samples[v]):6d} {med[v]:10.0f} {over:12.0f} {per_rule:12.1f}"
			f" {med[v] / med['none']:7.2f}"
		)
	rt_over = med["true"] - med["none"]
	n_over = med["notification"] - med["none"]
	round_ratios = [
		(m["notification"] - m["none"]) / (m["true"] - m["none"]) for m in per_round if m["true"] > m["none"]
	]
	print(
		f"   one save delivers {counted[0]:.1f} RT messages (`true`) / enqueues {counted[1]:.1f}"
		f" Notification jobs (`notification`)"
	)
	print(
		f"   Notification's overhead / the rules' overhead: {n_over / rt_over:.1f}x on the medians"
		f" ({n_over:.0f} / {rt_over:.0f} us); per round "
		+ ", ".join(f"{x:.1f}x" for x in round_ratios)
		+ (f", median {statistics.median(round_ratios):.1f}x" if round_ratios else "")
	)
	return {"median_us": med, "ratio": n_over / rt_over, "round_ratios": round_ratios}


def round_trips(state: dict, count: int = 10) -> None:
	"""DB queries and Redis round trips (a pipeline counts once) of one save, per variant."""
	from rt_studio.tests.counting import RoundTrips

	counts = RoundTrips()
	counts.install()
	row = []
	try:
		for variant in VARIANTS:
			switch_to(state, variant)
			saves(state, 2, f"trips-warm-{variant}")
			with counts.counting():
				saves(state, count, f"trips-{variant}")
			row.append(f"{variant} {counts.queries / count:.1f} / {counts.redis / count:.1f}")
	finally:
		counts.remove()
	print("   queries / Redis round trips per save (the commit included): " + ", ".join(row))


def false_rule_cost(state: dict, n: int = 20_000) -> None:
	"""A false rule against the two things it must cost at most: a dict lookup and its condition."""
	from rt_studio import rule_cache
	from rt_studio.delivery.context import context_for
	from rt_studio.engine.docview import freeze
	from rt_studio.engine.evaluate import Event, evaluate
	from rt_studio.engine.sandbox import evaluate_condition
	from rt_studio.save import handler

	switch_to(state, "false")
	frappe.set_user(OWNER)
	doc = frappe.get_doc("ToDo", state["todos"][0])
	index = rule_cache.get_index()
	rules = index.match("ToDo", ("Save",))
	rule = rules[0]
	ctx = context_for(doc)
	snapshot = freeze(doc.as_dict(convert_dates_to_str=False))
	event = Event("ToDo", doc.name, "Save", snapshot, snapshot, OWNER, "on_update")
	scope = {"doc": snapshot}
	lookup = {"ToDo": rules}

	def per_call(fn) -> float:
		t = time.perf_counter()
		for _ in range(n):
			fn()
		return (time.perf_counter() - t) / n * 1e6

	dict_us = per_call(lambda: lookup.get("ToDo"))
	condition_us = per_call(lambda: evaluate_condition(rule.condition, ctx.condition_globals, scope))
	rule_us = per_call(lambda: evaluate(rule, event, ctx))
	outcome = evaluate(rule, event, ctx)
	# and as the hook runs it: evaluated, then its trace entry queued for after the commit (the
	# queue is emptied here, never written)
	handler.fire(rule, event, ctx)  # makes the transaction's trace queue
	traced = frappe.local.rt_studio_trace

	def hook_step():
		handler.fire(rule, event, ctx)
		if len(traced) > 1000:
			traced.clear()

	hook_us = per_call(hook_step)
	traced.clear()
	frappe.set_user("Administrator")
	base = dict_us + condition_us
	print(
		f"   a rule whose condition is false, evaluated alone: {rule_us:.1f} us ({outcome.reason!r}),"
		f" and with its trace entry as the hook runs it: {hook_us:.1f} us; a dict lookup {dict_us:.2f} us"
		f" plus its compiled condition {condition_us:.1f} us = {base:.1f} us"
		f" ({rule_us / base:.2f}x evaluated, {hook_us / base:.2f}x with the trace)"
	)


def notification_worker_cost(state: dict) -> None:
	"""What a worker later does with one of Notification's jobs: run a sample here, rolled back."""
	from frappe.desk.doctype.notification_log.notification_log import make_notification_logs

	sample = state["sample"]
	if not sample:
		return
	frappe.set_user("Administrator")
	before = frappe.db.count("Notification Log")
	t = time.perf_counter()
	for doc, users in sample:
		make_notification_logs(doc, users)
	took = time.perf_counter() - t
	made = frappe.db.count("Notification Log") - before
	frappe.db.rollback()
	print(
		f"   and in the worker, later: {len(sample)} of Notification's jobs run here made {made} Notification"
		f" Logs, {took / len(sample) * 1e6:.0f} us a job (rolled back; not in the figures above)"
	)


# --------------------------------------------------------------------------- clean-up


def cleanup(state: dict) -> None:
	from frappe.utils.background_jobs import generate_qname, get_redis_conn
	from rq import Queue

	from rt_studio import rule_cache
	from rt_studio.delivery import delivery_log

	if "original_enqueue" in state:
		frappe.enqueue = state["original_enqueue"]
	frappe.db.rollback()
	frappe.set_user("Administrator")
	sets = state.get("sets", {})
	rules = [n for named in sets.values() for n in named["Realtime Rule"]]
	notifications = [n for named in sets.values() for n in named["Notification"]]
	_set("Realtime Rule", rules, 0)
	_set("Notification", notifications, 0)
	frappe.db.commit()
	rule_cache.invalidate()
	todos = state.get("todos", [])
	if todos:
		for doctype, field in (
			("Realtime Inbox Item", "reference_name"),
			("Version", "docname"),
			("Notification Log", "document_name"),
			("Comment", "reference_name"),
		):
			frappe.db.delete(doctype, {field: ("in", todos)})
		frappe.db.delete("ToDo", {"name": ("in", todos)})
	if rules:
		frappe.db.delete("Realtime Rule Audience", {"parent": ("in", rules)})
		frappe.db.delete("Realtime Rule", {"name": ("in", rules)})
	for name in notifications:
		frappe.delete_doc("Notification", name, force=True, ignore_permissions=True)
	_set("Realtime Rule", state.get("disabled_rules", []), 1)
	_set("Notification", state.get("disabled_notifications", []), 1)
	frappe.db.commit()
	rule_cache.invalidate()
	frappe.cache.hdel("notifications", "ToDo")
	for rule in rules:
		frappe.cache.delete_value(f"rt_studio:trace:{rule}")
	users = state.get("users", [])
	for user in users:
		frappe.cache.delete(delivery_log._log_key(user), delivery_log._counter_key(user))
	if users:
		remove_crowd(users)
		frappe.db.commit()
		forget_cached(users)
	try:
		Queue(generate_qname(SCRATCH_QUEUE), connection=get_redis_conn()).delete(delete_jobs=True)
	except Exception as e:
		print(f"   could not delete the scratch queue: {e}")
	left = {
		"Realtime Rule": frappe.db.count("Realtime Rule", {"name": ("like", f"{PREFIX}%")}),
		"Notification": frappe.db.count("Notification", {"name": ("like", f"{NOTIFICATION_PREFIX}%")}),
		"ToDo": frappe.db.count("ToDo", {"description": ("like", "rt bench ps %")}),
		"User": frappe.db.count("User", {"name": OWNER}),
	}
	print(f"   cleaned up; left in the database: {left}")


# --------------------------------------------------------------------------- entry


def run(args) -> dict | None:
	rounds, ops = args.per_save_rounds, args.per_save_ops
	print(
		f"\n1. One ToDo save (load, change, save, commit), {rounds} interleaved rounds of {ops} saves per"
		f" variant (after {SWITCH_WARMUP} unmeasured saves per switch), as {OWNER} (System User,"
		" owner and assignee of the ToDos)"
	)
	state: dict = {}
	try:
		setup(state)
		_scratch_enqueue(state)
		counted = messages_per_save(state)
		result = interleaved(state, rounds, ops)
		summary = report(result, counted, ops, rounds)
		notification_worker_cost(state)
		round_trips(state)
		false_rule_cost(state)
		none_times, true_times, stages = profile(state, ops * 2)
		print_profile(none_times, true_times, stages, len(true_times))
		if state["other_jobs"]:
			print(f"   other jobs the saves enqueued (dropped): {sorted(set(state['other_jobs']))}")
		return summary
	finally:
		cleanup(state)
