"""Large audiences: deferred without resolving everyone, then decided chunk by chunk."""

from conftest import ACTOR, NOW, audience

from rt_studio.engine import Context, evaluate
from rt_studio.engine.evaluate import BATCHED, DELIVER, NO_READ, run_in_chunks
from rt_studio.engine.memory import InMemoryDirectory
from rt_studio.engine.ratelimit import InMemoryRateLimiter


class CountingDirectory(InMemoryDirectory):
	"""Records how many users each role lookup returned."""

	def __init__(self, *args, **kwargs):
		super().__init__(*args, **kwargs)
		self.returned = []

	def users_with_role(self, role, limit=None):
		users = super().users_with_role(role, limit)
		self.returned.append(len(users))
		return users

	def all_users(self, limit=None):
		users = super().all_users(limit)
		self.returned.append(len(users))
		return users


def crowd(size: int, readable_every: int = 1) -> dict:
	return {
		f"u{i:05d}@example.com": {"roles": ["Crowd"], "can_read": ["ToDo"] if i % readable_every == 0 else []}
		for i in range(size)
	}


def test_deferring_a_huge_role_asks_for_no_more_users_than_needed(new_rule, make_event):
	directory = CountingDirectory(crowd(10_000))
	ctx = Context(directory, InMemoryRateLimiter())
	for rows in (audience(("Role", {"role": "Crowd"})), audience("Everyone")):
		directory.returned.clear()
		outcome = evaluate(new_rule(audience=rows), make_event(), ctx, defer_above=100)
		assert outcome.deferred and outcome.recipients == []
		assert directory.returned == [101]


def test_reference_channel_members_are_not_resolved_to_defer(new_rule, make_event):
	from rt_studio.engine.rules import parse_channel

	channel, _ = parse_channel({"channel_name": "big", "reference_doctype": "ToDo", "reference_name": "TD-1"})
	directory = CountingDirectory(crowd(5_000), [channel])
	ctx = Context(directory, InMemoryRateLimiter())
	rule = new_rule(audience=audience(("Channel", {"channel": "big"})))
	assert evaluate(rule, make_event(), ctx, defer_above=100).deferred
	assert directory.returned == [101]
	# without a limit the channel is its reference document's readers
	members = evaluate(rule, make_event(), ctx, preview=True).recipients
	assert len(members) == 5_000


def test_chunks_decide_and_deliver_the_whole_audience_once(new_rule, make_event):
	users = crowd(2_500, readable_every=2)
	users[ACTOR] = {"roles": ["Crowd"], "can_read": ["ToDo"]}
	ctx = Context(InMemoryDirectory(users), InMemoryRateLimiter(), now=lambda: NOW)
	rule = new_rule(audience=audience(("Role", {"role": "Crowd"})))
	parts = list(run_in_chunks(rule, make_event(actor=ACTOR), ctx, size=1000))
	assert [len(p.recipients) for p in parts] == [1000, 1000, 501]
	delivered = [d.user for p in parts for d in p.deliveries]
	assert len(delivered) == len(set(delivered)) == 1250
	verdicts = {r.user: r.verdict for p in parts for r in p.recipients}
	assert verdicts["u00000@example.com"] == DELIVER and verdicts["u00001@example.com"] == NO_READ
	# the same deliveries as one evaluation of everyone
	whole_ctx = Context(InMemoryDirectory(users), InMemoryRateLimiter(), now=lambda: NOW)
	whole = evaluate(rule, make_event(actor=ACTOR), whole_ctx)
	assert [(d.user, d.message) for d in whole.deliveries] == [
		(d.user, d.message) for p in parts for d in p.deliveries
	]


def test_chunks_keep_rate_limits(new_rule, make_event):
	limiter = InMemoryRateLimiter()
	ctx = Context(InMemoryDirectory(crowd(30)), limiter)
	rule = new_rule(audience=audience(("Role", {"role": "Crowd"})), rate_limit_count=1, rate_limit_seconds=60)
	first = [r.verdict for p in run_in_chunks(rule, make_event(), ctx, size=7) for r in p.recipients]
	second = [r.verdict for p in run_in_chunks(rule, make_event(), ctx, size=7) for r in p.recipients]
	assert first == [DELIVER] * 30 and second == [BATCHED] * 30


def test_chunks_stop_at_the_first_error_and_report_a_rule_that_did_not_fire(new_rule, make_event):
	ctx = Context(InMemoryDirectory(crowd(30)), InMemoryRateLimiter())
	rows = audience(("Role", {"role": "Crowd"}))
	broken = new_rule(
		audience=rows, subject="{{ recipient.upper() }} {{ 1 / (recipient != 'u00012@example.com') }}"
	)
	parts = list(run_in_chunks(broken, make_event(), ctx, size=10))
	assert [len(p.deliveries) for p in parts] == [10, 0]
	assert parts[-1].error is not None and "subject" in parts[-1].reason
	quiet = new_rule(audience=rows, condition="doc.status == 'Nope'")
	[only] = list(run_in_chunks(quiet, make_event(), ctx, size=10))
	assert (only.fired, only.reason) == (False, "condition is false")


def _rows_message() -> str:
	return "{{ recipient }}: {% for row in doc['items'] %}{{ row.qty }} {% endfor %}"


def test_a_text_that_names_the_recipient_reaches_a_large_audience(new_rule, make_event, todo):
	"""Each recipient's own text adds to the budget: 5,000 renders of a 50-row loop are 250,000
	loop turns, more than one event's MAX_ITERATIONS, and still an ordinary rule."""
	ctx = Context(InMemoryDirectory(crowd(5_000)), InMemoryRateLimiter(), now=lambda: NOW)
	rule = new_rule(audience=audience(("Role", {"role": "Crowd"})), message=_rows_message())
	doc = {**todo, "items": [{"qty": i} for i in range(50)]}
	outcome = evaluate(rule, make_event(doc=doc), ctx)
	assert outcome.error is None, outcome.reason
	assert len(outcome.deliveries) == 5_000
	assert outcome.deliveries[-1].message["message"].startswith("u04999@example.com: 0 1 2")
	chunks = list(run_in_chunks(rule, make_event(doc=doc), ctx, 1_000))
	assert [part.error for part in chunks] == [None] * 5
	assert sum(len(part.deliveries) for part in chunks) == 5_000


def test_a_runaway_text_that_names_the_recipient_is_stopped_at_its_first_render(new_rule, make_event, todo):
	# a generous clock, so the loop limit (not a busy machine) is what stops it
	ctx = Context(InMemoryDirectory(crowd(5_000)), InMemoryRateLimiter(), now=lambda: NOW, budget_ms=60_000)
	runaway = "{{ recipient }}{% for a in range(100000) %}{% for b in range(2) %}.{% endfor %}{% endfor %}"
	outcome = evaluate(
		new_rule(audience=audience(("Role", {"role": "Crowd"})), message=runaway), make_event(), ctx
	)
	assert outcome.deliveries == []
	assert "MAX_ITERATIONS" in outcome.reason
