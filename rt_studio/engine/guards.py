"""Guards: the operations a rule may run, each refused before it builds too much.

The sandbox routes every operator, builtin, text method and site helper that can build a
large value or run long through one of these (conditions through RestrictedPython's hooks
and an AST rewrite, templates through Jinja's sandbox). Each checks the clock and the size
of what it is about to build against the limits of the active `Budget`, before it builds.
"""

import math
import re
from collections.abc import Mapping

from rt_studio.engine.budget import (
	MAX_INT_BITS,
	MAX_LIPSUM_WORDS,
	MAX_SIZE,
	BudgetExceeded,
	check_precision,
	guarded_range,
	iterate,
	over,
	printable,
	size_of,
	tick,
	too_big,
)

# ---------------------------------------------------------------- operators


def _is_int(value) -> bool:
	return type(value) is int or type(value) is bool


def _sequence(value) -> bool:
	return isinstance(value, str | bytes | bytearray | list | tuple)


def add(left, right):
	"""`left + right`, refused when the result would pass MAX_SIZE."""
	kind = type(left)
	if (kind is int or kind is float) and (type(right) is int or type(right) is float):
		return left + right
	budget = tick()
	if _sequence(left) and _sequence(right):
		size = size_of(left) + size_of(right)
		if size > MAX_SIZE:
			raise too_big("joining these two values with +", size)
		budget.add_built(size)
	return left + right


def mul(left, right):
	"""`left * right`: repetition and integer products within the limits."""
	kind = type(left)
	if kind is float or type(right) is float:
		return left * right
	if _is_int(left) and _is_int(right):
		bits = abs(left).bit_length() + abs(right).bit_length()
		if bits > MAX_INT_BITS:
			raise too_big(f"{left} * {right}", bits, MAX_INT_BITS, "MAX_INT_BITS", "bits")
		return left * right
	budget = tick()
	if _is_int(right) and _sequence(left):
		sequence, count = left, right
	elif _is_int(left) and _sequence(right):
		sequence, count = right, left
	else:
		return left * right
	if count > 0:
		each = size_of(sequence, MAX_SIZE // count + 1)
		if each * count > MAX_SIZE:
			raise too_big(f"repeating a value {count:,} times", each * count)
		budget.add_built(each * count)
	return left * right


def power(left, right):
	"""`left ** right`, refused when the integer result would pass MAX_INT_BITS."""
	tick()
	if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
		# the result has at least (bits of left - 1) * right bits
		if right > MAX_INT_BITS or (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
			bits = (abs(left).bit_length() - 1) * min(right, 10**12)
			raise too_big(f"{left} ** {right}", bits, MAX_INT_BITS, "MAX_INT_BITS", "bits")
	return left**right


def lshift(left, right):
	"""`left << right` within MAX_INT_BITS."""
	if _is_int(left) and _is_int(right) and left and right > 0:
		bits = abs(left).bit_length() + right
		if bits > MAX_INT_BITS:
			raise too_big(f"{left} << {right}", bits, MAX_INT_BITS, "MAX_INT_BITS", "bits")
	return left << right


def mod(left, right):
	"""`left % right`: for text, %-formatting with checked widths and arguments."""
	if isinstance(left, str | bytes):
		return percent_format(left, right)
	return left % right


#: One %-directive: optional (key), flags, width, precision, length modifier, type.
PERCENT_DIRECTIVE = re.compile(rb"%(?:\(([^)]*)\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)


def percent_format(template, args):
	"""`template % args` once every width, precision and argument is within the limits."""
	budget = tick()
	budget.add_built(percent_size(template, args))
	return template % args


def percent_size(template, args) -> int:
	"""About how long `template % args` is, refused past MAX_SIZE before formatting."""
	raw = template.encode("utf-8", "surrogatepass") if isinstance(template, str) else template
	total = len(template)
	keys = []
	for match in PERCENT_DIRECTIVE.finditer(raw):
		key, width, precision, _type = match.groups()
		if width == b"*" or precision == b"*":
			raise BudgetExceeded("a * width or precision in a % format is not allowed: write the number")
		for number in (width, precision):
			if number:
				total += _format_number(number)
		if key is not None:
			keys.append(key.decode("utf-8", "surrogatepass"))
	if keys and isinstance(args, Mapping):
		values = [args[key] for key in keys if key in args]
	else:
		values = args if type(args) is tuple else (args,)
	for value in values:
		total += size_of(value)
		if total > MAX_SIZE:
			break
	if total > MAX_SIZE:
		raise too_big("the formatted text", total)
	return total


def _format_number(digits: bytes | str) -> int:
	"""A width or precision written in a format, refused past MAX_SIZE before int() reads it."""
	if len(digits) > 7:
		raise BudgetExceeded(
			f"a format width or precision of {len(digits)} digits is over the limit of {MAX_SIZE:,} (MAX_SIZE)"
		)
	number = int(digits)
	if number > MAX_SIZE:
		raise over("a format width or precision", number, MAX_SIZE, "MAX_SIZE")
	return number


#: Numbers in a format spec ("{:>10.2f}", an f-string's "{x:>10}"): width and precision.
SPEC_NUMBERS = re.compile(r"\d+")


def check_format_spec(spec: str) -> None:
	"""Refuse a `format()` spec whose width or precision passes MAX_SIZE (before formatting)."""
	if spec:
		for digits in SPEC_NUMBERS.findall(spec):
			_format_number(digits)


def format_value(value, spec: str = ""):
	"""One replacement field of str.format or an f-string: `value`, checked for printing."""
	check_format_spec(spec)
	return printable(value)


# ---------------------------------------------------------------- builtins


def guarded_round(number, ndigits=None):
	"""`round()` with at most MAX_PRECISION digits either way (round(1, -10**9) computes 10**10**9)."""
	tick()
	check_precision(ndigits)
	return round(number) if ndigits is None else round(number, ndigits)


def guarded_sum(iterable, start=0):
	"""`sum()` of numbers: summing lists or tuples copies them again at every step."""
	tick()
	if not isinstance(start, int | float) and not hasattr(start, "__radd__"):
		raise BudgetExceeded("sum() adds numbers only: for lists, use a comprehension")
	return sum(iterable, start)


def _copying(kind):
	"""A builtin that copies its argument (list, tuple, str ...), counted against the limits."""

	def guarded(*args, **kwargs):
		budget = tick()
		if args and kind is str:
			printable(args[0], "the text of str()")
		result = kind(*args, **kwargs)
		size = size_of(result) if kind is str else len(result)
		if size > MAX_SIZE:
			raise too_big(f"the result of {kind.__name__}()", size)
		budget.add_built(size)
		return result

	guarded.__name__ = guarded.__qualname__ = kind.__name__
	return guarded


def guarded_sorted(iterable, *, key=None, reverse=False):
	budget = tick()
	result = sorted(iterable, key=key, reverse=reverse)
	budget.add_built(len(result))
	return result


#: Builtins replaced by guarded versions wherever rules run them.
GUARDED_BUILTINS = {
	"range": guarded_range,
	"round": guarded_round,
	"sum": guarded_sum,
	"sorted": guarded_sorted,
	"str": _copying(str),
	"list": _copying(list),
	"tuple": _copying(tuple),
	"set": _copying(set),
	"dict": _copying(dict),
}


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100):
	"""Jinja's `lipsum()` within MAX_LIPSUM_WORDS words."""
	from jinja2.utils import generate_lorem_ipsum

	tick()
	words = n * max if _is_int(n) and _is_int(max) else math.inf
	if words > MAX_LIPSUM_WORDS:
		raise BudgetExceeded(
			f"lipsum() of up to {words:,} words is over the limit of {MAX_LIPSUM_WORDS:,} (MAX_LIPSUM_WORDS)"
		)
	return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


# ---------------------------------------------------------------- methods of text


def _first(args: tuple, kwargs: Mapping, name: str, default=None):
	return args[0] if args else kwargs.get(name, default)


#: Methods of text and bytes that build a new text or list (the others answer a question).
BUILDING_METHODS = frozenset(
	{
		"capitalize", "casefold", "center", "decode", "encode", "expandtabs", "hex", "ljust", "lower",
		"lstrip", "partition", "removeprefix", "removesuffix", "replace", "rjust", "rpartition",
		"rsplit", "rstrip", "split", "splitlines", "strip", "swapcase", "title", "translate", "upper",
		"zfill",
	}
)  # fmt: skip


def _length_of_text_method(text, name: str, args: tuple, kwargs: Mapping) -> int:
	"""An upper bound of the length of `text.<name>(*args, **kwargs)`, computed first."""
	n = len(text)
	if name in ("center", "ljust", "rjust", "zfill"):
		width = _first(args, kwargs, "width", 0)
		return max(n, width if _is_int(width) else 0)
	if name == "expandtabs":
		size = _first(args, kwargs, "tabsize", 8)
		return n + text.count("\t" if isinstance(text, str) else b"\t") * max(size if _is_int(size) else 8, 1)
	if name == "replace" and len(args) >= 2:
		old, new = args[0], args[1]
		count = args[2] if len(args) > 2 else kwargs.get("count", -1)
		if isinstance(old, str | bytes) and isinstance(new, str | bytes):
			found = (n + 1) if not old else text.count(old)
			if _is_int(count) and count >= 0:
				found = min(found, count)
			return n + found * max(len(new) - len(old), 0)
	if name == "translate" and args and isinstance(args[0], Mapping):
		longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
		return n * max(longest, 1)
	if name in ("encode", "hex"):
		return 4 * n
	return n


def text_method_call(method, text, name: str, args: tuple, kwargs: Mapping):
	"""Call a method of a text (or bytes) value once its result is known to fit."""
	budget = tick()
	if name == "join":
		parts = list(iterate(_first(args, kwargs, "iterable", ())))
		size = sum(size_of(p) for p in parts) + len(text) * len(parts)
		if size > MAX_SIZE:
			raise too_big("the joined text", size)
		budget.add_built(size)
		return method(parts)
	if name not in BUILDING_METHODS:
		return method(*args, **kwargs)
	size = _length_of_text_method(text, name, args, kwargs)
	if size > MAX_SIZE:
		raise too_big(f"the result of .{name}()", size)
	result = method(*args, **kwargs)
	budget.add_built(len(result) if isinstance(result, str | bytes) else len(text))
	return result


class GuardedMethod:
	"""A method of a text, bytes or number, called only once its result is known to fit.

	Conditions and templates get these instead of the bound methods themselves.
	"""

	__slots__ = ("method", "name", "receiver")

	def __init__(self, receiver, name: str, method):
		self.receiver = receiver
		self.name = name
		self.method = method

	def __call__(self, *args, **kwargs):
		receiver = self.receiver
		if isinstance(receiver, str | bytes | bytearray):
			return text_method_call(self.method, receiver, self.name, args, kwargs)
		tick()
		if self.name == "to_bytes":
			length = _first(args, kwargs, "length", 1)
			if _is_int(length) and length > MAX_SIZE:
				raise over("int.to_bytes() length", length, MAX_SIZE, "MAX_SIZE")
		elif self.name == "strftime":
			printable(_first(args, kwargs, "format", ""), "a date format")
		return self.method(*args, **kwargs)

	def __repr__(self) -> str:
		return f"<method {self.name} of {type(self.receiver).__name__}>"


def guard_method(obj, name: str, value):
	"""`value` (the attribute `name` of `obj`), wrapped when calling it could build too much."""
	if isinstance(obj, str | bytes | bytearray) and callable(value):
		return GuardedMethod(obj, name, value)
	if name in ("to_bytes", "strftime") and callable(value):
		return GuardedMethod(obj, name, value)
	return value


def guard_helper(fn):
	"""A site helper (`frappe.utils.*`) checked on the way in and out.

	Frappe's helpers are not written for hostile input: `rounded(1, 10**9)` computes
	`10**10**9` and `generate_hash(10**9)` allocates a gigabyte. Each call checks the clock,
	refuses a precision past MAX_PRECISION, and refuses arguments and results that pass
	MAX_SIZE when printed.
	"""

	name = getattr(fn, "__name__", "helper")
	precision_at = PRECISION_HELPERS.get(name)

	def guarded(*args, **kwargs):
		budget = tick()
		for value in (*args, *kwargs.values()):
			if _is_int(value):
				if abs(value) > MAX_HELPER_NUMBER:
					raise BudgetExceeded(
						f"frappe.utils.{name}(): {value} is out of range (at most {MAX_HELPER_NUMBER:,})"
					)
			elif isinstance(value, str) and len(value) > MAX_HELPER_TEXT:
				raise too_big(
					f"a text given to frappe.utils.{name}()", len(value), MAX_HELPER_TEXT, "MAX_HELPER_TEXT"
				)
			elif not isinstance(value, float):
				printable(value, f"an argument of frappe.utils.{name}()")
		if precision_at is not None:
			precision = args[precision_at] if len(args) > precision_at else kwargs.get("precision")
			check_precision(precision)
		if name in LENGTH_HELPERS:
			length = _first(args, kwargs, "length", 0)
			if _is_int(length) and length > MAX_SIZE:
				raise over(f"frappe.utils.{name}() length", length, MAX_SIZE, "MAX_SIZE")
		result = fn(*args, **kwargs)
		if isinstance(result, str | bytes):
			if len(result) > MAX_SIZE:
				raise too_big(f"the result of frappe.utils.{name}()", len(result))
			budget.add_built(len(result))
		return result

	guarded.__name__ = guarded.__qualname__ = name
	guarded.__doc__ = getattr(fn, "__doc__", None)
	return guarded


#: Integers a helper accepts: amounts up to a quadrillion (money_in_words and the date
#: helpers loop or overflow far beyond it).
MAX_HELPER_NUMBER = 10**15
#: Characters of text a helper accepts: Frappe's markdown and HTML helpers are pure Python and
#: take about half a second for a million characters, in one call the clock cannot stop;
#: 100,000 takes a few milliseconds and is as much as a message can print anyway.
MAX_HELPER_TEXT = 100_000
#: Helpers with a number of digits, and the position of that argument (or `precision=`).
PRECISION_HELPERS = {"flt": 1, "rounded": 1, "fmt_money": 1, "round_based_on_smallest_currency_fraction": 2}
#: Helpers whose first argument (or `length`) is the length of the text they return.
LENGTH_HELPERS = frozenset({"generate_hash"})
