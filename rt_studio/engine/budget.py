"""The evaluation budget: how much time and memory one rule may use for one event.

A rule is written by an administrator and runs inside other people's saves, so a slip (a
loop over a big range, a padding width of a billion) must cost that save milliseconds, never
the worker. Every condition and template runs under a `Budget`, and the sandbox routes each
risky operation through a guard (`guards.py`) that asks it, on every path (live firing, preview, test fire,
backtest, time rules, the CLI, the save-time check):

- size limits, checked *before* an operation allocates: repetition, powers and shifts,
  `%` and `format` widths, padding, `join`/`replace` growth, ranges, `lipsum`, printing a
  value, and a total of everything one evaluation builds;
- a time budget per rule and event, spent only while the rule's own code runs (conditions,
  audience-row conditions, templates: not the site's permission queries), checked at every
  guarded step: each loop iteration, each call of a lambda, macro, filter or helper, each
  guarded operation.

Why checks in guards and not a timer: `signal.setitimer` works only in a process's main
thread (gunicorn's threaded workers serve requests in others), a watchdog thread can only
interrupt between bytecodes, and neither stops a single C call such as `'a' * 4_000_000_000`;
`sys.settrace` slows every line and breaks debuggers and coverage. Guards behave the same in
a web thread, an RQ work horse, the CLI and the tests, and the size limits keep every step
between two checks short. The active budget lives in a context variable, so threads never
share one.

Going over a limit raises `BudgetExceeded`, naming the limit; the engine turns it into a rule
error like any other: the rule is skipped for that event, recorded, and the save goes on.
"""

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from time import monotonic

#: Default time in milliseconds one rule may spend on one event. An ordinary rule needs about
#: 30 microseconds in all here, and a message over a 500-row child table about 1.5 ms
#: (benchmarks/engine.py, parts 2 and 3); 100 ms leaves room for a slow or busy machine while
#: a save that meets a few runaway rules still finishes well within a second. A site changes it with the
#: site config key `rt_studio_rule_budget_ms`.
DEFAULT_BUDGET_MS = 100

#: The largest text (characters), list (items, nested items included) or printed value one
#: step may build: a message needs kilobytes, and a million characters is still only a few
#: megabytes in memory.
MAX_SIZE = 1_000_000

#: Everything one evaluation builds together (the sum of MAX_SIZE-bounded steps), so a loop
#: of allowed steps cannot pile up hundreds of megabytes: at most a few tens of megabytes.
MAX_TOTAL = 10_000_000

#: Loop and comprehension iterations per rule and event: a message over every row of a
#: 5,000-row child table, twice, is still far below it.
MAX_ITERATIONS = 100_000

#: Numbers in one `range()`: Jinja's own sandbox limit (jinja2.sandbox.MAX_RANGE).
MAX_RANGE = 100_000

#: Numbers in all the ranges of one evaluation together (a range is lazy, but `sum`, `list`
#: and `sorted` walk it inside one C call, between two checks of the clock).
MAX_RANGE_TOTAL = 1_000_000

#: The largest integer a step may build, in bits: about 4,300 decimal digits, the most
#: Python itself agrees to print (`sys.int_info.default_max_str_digits`).
MAX_INT_BITS = 14_300

#: Digits of precision in `round()` and the `round` filter: a float has 17 at most.
MAX_PRECISION = 100

#: Nested calls of macros, recursive loops and lambdas, far below Python's recursion limit
#: even inside a deep Frappe save.
MAX_DEPTH = 50

#: Characters in a rendered subject or message: a live alert is a few lines, and a message
#: of this size would already stall the desk that shows it.
MAX_OUTPUT = 100_000

#: Words `lipsum()` may produce.
MAX_LIPSUM_WORDS = 10_000

#: What each further text rendered for one recipient adds to the budget, as a share of a whole
#: budget (time, loop turns, range numbers and everything built): a template that names
#: `recipient` runs once per recipient, so its cost grows with a legitimate audience. A
#: hundredth per recipient keeps a user's save (at most 100 recipients are decided inside it)
#: within twice the budget, and gives each render for a 10,000-user job a hundredth of one.
PER_RECIPIENT_SHARE = 0.01

#: The budget setting's site config key (milliseconds).
SITE_CONFIG_KEY = "rt_studio_rule_budget_ms"


class BudgetExceeded(Exception):
	"""A condition or template went over one of the limits above; the message names it."""


_active: ContextVar["Budget | None"] = ContextVar("rt_studio_budget", default=None)


class Budget:
	"""The time and sizes one rule may still use for one event."""

	__slots__ = ("built", "deadline", "depth", "iterations", "left", "milliseconds", "ranges", "scale")

	def __init__(self, milliseconds: float | None = None):
		self.milliseconds = DEFAULT_BUDGET_MS if milliseconds is None else milliseconds
		#: Seconds left; spent only while `run` runs the rule's code.
		self.left = self.milliseconds / 1000
		self.deadline = math.inf
		self.iterations = 0
		self.ranges = 0
		self.built = 0
		self.depth = 0
		#: How many whole budgets this event may use: 1, plus a share per recipient's text.
		self.scale = 1.0

	def within(self, fn, *args):
		"""Call `fn(*args)` with this budget active for the guards (its clock runs only in `run`)."""
		token = _active.set(self)
		try:
			return fn(*args)
		finally:
			_active.reset(token)

	def activate(self):
		"""Make this the budget guards use, until `deactivate(token)`; the clock is not started."""
		return _active.set(self)

	def grant(self, share: float) -> None:
		"""Allow `share` of a whole budget more: time, loop turns, range numbers and size built."""
		extra = self.milliseconds / 1000 * share
		self.left += extra
		if self.deadline != math.inf:
			self.deadline += extra
		self.scale += share

	# ------------------------------------------------------------ checks

	def check_time(self) -> None:
		if monotonic() > self.deadline:
			raise BudgetExceeded(
				f"the rule ran longer than its budget of {self.milliseconds:g} ms for one event"
				f" (site config {SITE_CONFIG_KEY}): simplify the condition or template"
			)

	def add_built(self, size: int) -> None:
		"""Count `size` characters or items built by one step, against MAX_TOTAL."""
		self.built += size
		if self.built > MAX_TOTAL * self.scale:
			raise BudgetExceeded(
				f"the rule built more than {MAX_TOTAL:,} characters or items in one event (MAX_TOTAL)"
			)

	def count_iterations(self, iterator: Iterator) -> Iterator:
		for item in iterator:
			self.iterations += 1
			if self.iterations > MAX_ITERATIONS * self.scale:
				raise BudgetExceeded(
					f"loops ran more than {MAX_ITERATIONS:,} times in one event (MAX_ITERATIONS)"
				)
			if monotonic() > self.deadline:
				self.check_time()
			yield item

	def enter(self) -> None:
		"""One nested call deeper (a macro, a recursive loop, a lambda); `leave` after it."""
		self.check_time()
		self.depth += 1
		if self.depth > MAX_DEPTH:
			self.depth = 0
			raise BudgetExceeded(
				f"calls nest more than {MAX_DEPTH} deep (MAX_DEPTH): is a macro calling itself?"
			)

	def leave(self) -> None:
		self.depth = max(self.depth - 1, 0)


def run(fn, *args):
	"""Call `fn(*args)` (a condition or a render) with the active budget's clock running.

	Outside any evaluation (a save-time check, a direct call) a default budget is used for
	this one call. The clock runs only here, so the site's own work between two runs (queries
	for the audience) is not charged to the rule.
	"""
	budget = _active.get()
	if budget is None:
		token = _active.set(Budget())
		try:
			return run(fn, *args)
		finally:
			_active.reset(token)
	if budget.deadline != math.inf:  # already running: a nested call
		return fn(*args)
	start = monotonic()
	budget.deadline = start + budget.left
	try:
		return fn(*args)
	finally:
		budget.left -= monotonic() - start
		budget.deadline = math.inf


def grant(share: float) -> None:
	"""Widen the active budget by `share` (see PER_RECIPIENT_SHARE); nothing outside an evaluation."""
	active = _active.get()
	if active is not None:
		active.grant(share)


def deactivate(token) -> None:
	_active.reset(token)


def tick() -> Budget:
	"""Check the clock; the active budget, for counting."""
	budget = _active.get()
	if budget is None:
		return Budget()
	if monotonic() > budget.deadline:
		budget.check_time()
	return budget


# ---------------------------------------------------------------- sizes


def too_big(
	what: str, size: int, limit: int = MAX_SIZE, name: str = "MAX_SIZE", unit: str = "characters or items"
) -> BudgetExceeded:
	"""The error for a step that would build `size` where `limit` is allowed."""
	return BudgetExceeded(f"{what} would be {size:,} {unit}; the limit is {limit:,} ({name})")


def over(what: str, number: int, limit: int, name: str) -> BudgetExceeded:
	"""The error for an argument (a width, a count) past its limit."""
	return BudgetExceeded(f"{what} of {number:,} is over the limit of {limit:,} ({name})")


def size_of(value, limit: int = MAX_SIZE) -> int:
	"""About how long `value` is when printed: characters of text, items of collections
	(nested ones included, each shared reference counted again, as printing would).

	Stops counting past `limit`, so it costs at most `limit` steps whatever the value.
	"""
	kind = type(value)
	if kind is str or kind is bytes:
		return len(value)
	if kind is int or kind is float or kind is bool or value is None:
		return 1
	total = 0
	stack = [value]
	while stack:
		item = stack.pop()
		if isinstance(item, str | bytes | bytearray):
			total += len(item)
		elif isinstance(item, list | tuple | set | frozenset):
			total += 1 + len(item)
			if total <= limit:
				stack.extend(item)
		elif isinstance(item, Mapping):
			total += 1 + 2 * len(item)
			if total <= limit:
				stack.extend(item.keys())
				stack.extend(item.values())
		elif isinstance(item, range):
			total += 1 + len(item) if len(item) < limit else limit + 1
		else:
			total += 1
			attrs = _namespace_attrs(item)
			if attrs is not None:
				stack.append(attrs)
		if total > limit:
			return total
	return total


def _namespace_attrs(value):
	"""The attributes of a Jinja `namespace()` (printed by its repr), else None."""
	from jinja2.utils import Namespace

	if isinstance(value, Namespace):
		return object.__getattribute__(value, "_Namespace__attrs")
	return None


def printable(value, what: str = "a printed value"):
	"""`value`, once sure that printing it stays within MAX_SIZE."""
	kind = type(value)
	if kind is str:
		if len(value) > MAX_SIZE:
			raise too_big(what, len(value))
		return value
	if kind is int or kind is float or kind is bool or value is None:
		return value
	size = size_of(value)
	if size > MAX_SIZE:
		raise too_big(what, size)
	return value


def count_text(text: str) -> None:
	"""Count a printed text against MAX_SIZE and MAX_TOTAL."""
	if len(text) > MAX_SIZE:
		raise too_big("a printed value", len(text))
	tick().add_built(len(text))


def built(value):
	"""Count a step's result against MAX_TOTAL and return it."""
	if isinstance(value, str | bytes | list | tuple):
		size = len(value)
		if size > MAX_SIZE:
			raise too_big("a result", size)
		if size > 64:
			tick().add_built(size)
	return value


# ---------------------------------------------------------------- loops


def iterate(iterable: Iterable, static_text: int = 0) -> Iterator:
	"""Iterate under the budget: every step counts against MAX_ITERATIONS and checks the clock.

	`static_text` is the length of the text a template loop's body writes each time round,
	counted against MAX_TOTAL.
	"""
	budget = tick()
	iterator = iter(iterable)
	if static_text:
		return _with_text(budget, budget.count_iterations(iterator), static_text)
	return budget.count_iterations(iterator)


def _with_text(budget: Budget, iterator: Iterator, size: int) -> Iterator:
	for item in iterator:
		budget.add_built(size)
		yield item


def guarded_range(*args) -> range:
	"""`range()` within MAX_RANGE numbers, and MAX_RANGE_TOTAL for the whole evaluation."""
	budget = tick()
	numbers = range(*args)
	try:
		size = len(numbers)
	except OverflowError:
		size = math.inf
	if size > MAX_RANGE:
		raise BudgetExceeded(
			f"range() of {size:,} numbers is over the limit of {MAX_RANGE:,} (MAX_RANGE)"
			if size != math.inf
			else f"range() of that many numbers is over the limit of {MAX_RANGE:,} (MAX_RANGE)"
		)
	budget.ranges += size
	if budget.ranges > MAX_RANGE_TOTAL * budget.scale:
		raise BudgetExceeded(
			f"the ranges of one event hold more than {MAX_RANGE_TOTAL:,} numbers (MAX_RANGE_TOTAL)"
		)
	return numbers


def check_precision(ndigits) -> None:
	if isinstance(ndigits, int) and abs(ndigits) > MAX_PRECISION:
		raise BudgetExceeded(
			f"a precision of {ndigits:,} digits is over the limit of {MAX_PRECISION} (MAX_PRECISION)"
		)
