"""Rule templates: Jinja's immutable sandbox with escaping that stays on, and the budget's guards.

Subject and message are Jinja templates compiled once per rule version. Autoescape is on and
cannot be switched off (`|safe` and `{% autoescape %}` are refused when compiling). Every
loop, call, operator, filter and printed value goes through the guards, and compiling never
evaluates anything: Jinja's constant folding is switched off.
"""

import functools
import types
from collections.abc import Iterable, Mapping

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from markupsafe import Markup

from rt_studio.engine import budget, guards
from rt_studio.engine.docview import ReadOnlyDoc
from rt_studio.engine.sandbox import SandboxError, check_attribute

#: Longest template accepted: a message is a paragraph; past this, compiling alone would take
#: a noticeable time.
MAX_TEMPLATE_LENGTH = 100_000


class NoFoldingCodeGenerator(CodeGenerator):
	"""Jinja's code generator without constant folding of `{{ }}` expressions.

	Jinja evaluates constant output at compile time (`{{ 'a'|center(10**9) }}` would build a
	gigabyte while the rule is being saved); here only the template's own text is constant.
	"""

	def _output_child_to_const(self, node, frame, finalize):
		if isinstance(node, nodes.TemplateData):
			return super()._output_child_to_const(node, frame, finalize)
		raise nodes.Impossible()


class GuardedFormatter(SandboxedFormatter):
	"""`str.format` in templates: Jinja's sandboxed formatter with checked widths and values."""

	def format_field(self, value, format_spec: str):
		return super().format_field(guards.format_value(value, format_spec), format_spec)


class GuardedEscapeFormatter(GuardedFormatter, jinja2.sandbox.SandboxedEscapeFormatter):
	pass


class TemplateSandbox(ImmutableSandboxedEnvironment):
	"""Jinja's immutable sandbox plus Frappe's unsafe-attribute list and the budget's guards.

	Autoescape is on and cannot be switched off (`|safe` and `{% autoescape %}` are refused
	when compiling): whatever a template prints from a document is HTML-escaped, while the
	markup the rule's author wrote stays as written. None prints as an empty string.
	"""

	code_generator_class = NoFoldingCodeGenerator
	intercepted_binops = frozenset({"+", "*", "**", "%"})
	BINOPS = {"+": guards.add, "*": guards.mul, "**": guards.power, "%": guards.mod}

	def is_safe_attribute(self, obj, attr, value) -> bool:
		"""Refuse what `check_attribute` refuses, then apply Jinja's own checks."""
		try:
			check_attribute(obj, attr)
		except SandboxError:
			return False
		return super().is_safe_attribute(obj, attr, value)

	def getattr(self, obj, attribute):
		"""A document's field wins over a dict method, as on a Document (`doc.items` is a table,
		and a field may be named `format`).

		On a document the verdict depends on the field's name only, so it is memoised: a
		template reading ten fields does not run the whole policy ten times per render.
		"""
		if type(obj) is ReadOnlyDoc and isinstance(attribute, str) and attribute in obj:
			if _field_name_allowed(attribute):
				return obj[attribute]
			return self.unsafe_undefined(obj, attribute)
		return self._guard(obj, attribute, super().getattr(obj, attribute))

	def getitem(self, obj, argument):
		"""`doc['_assign']` is refused like `doc._assign`, as in conditions."""
		if isinstance(argument, str) and argument.startswith("_"):
			return self.unsafe_undefined(obj, argument)
		return self._guard(obj, argument, super().getitem(obj, argument))

	def _guard(self, obj, name, value):
		if isinstance(value, types.BuiltinMethodType) and isinstance(name, str):
			if name in ("format", "format_map") and isinstance(obj, str):
				return self.wrap_str_format(value)
			return guards.guard_method(obj, name, value)
		return value

	def wrap_str_format(self, value):
		"""`str.format` and `format_map` run with the guarded formatter (checked widths)."""
		if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in (
			"format",
			"format_map",
		):
			return None
		text = value.__self__
		if not isinstance(text, str):
			return None
		formatter = (
			GuardedEscapeFormatter(self, escape=text.escape)
			if isinstance(text, Markup)
			else GuardedFormatter(self)
		)
		is_format_map = value.__name__ == "format_map"

		def guarded_format(*args, **kwargs):
			budget.tick()
			if is_format_map:
				if kwargs or len(args) != 1:
					raise TypeError("format_map() takes exactly one argument")
				args, kwargs = (), args[0]
			return budget.built(type(text)(formatter.vformat(text, args, kwargs)))

		return guarded_format

	def call(__self, __context, __obj, *args, **kwargs):
		"""Every call checks the clock; macros and recursive loops count their depth."""
		current = budget.tick()
		if isinstance(__obj, Macro | LoopContext):
			if isinstance(__obj, LoopContext) and args:
				args = (budget.iterate(args[0]), *args[1:])
			current.enter()
			try:
				return budget.built(super().call(__context, __obj, *args, **kwargs))
			finally:
				current.leave()
		return super().call(__context, __obj, *args, **kwargs)

	def call_binop(self, context, operator: str, left, right):
		return self.BINOPS[operator](left, right)

	def unsafe_undefined(self, obj, attribute):
		"""Refuse at once: Jinja's default prints an unsafe attribute as an empty string, which hides
		the refusal from the rule's author (and an attempt to escape from the log)."""
		raise jinja2.exceptions.SecurityError(
			f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
		)


def _finalize(value):
	"""Every printed value: None as nothing, anything else only when printing it stays small."""
	if value is None:
		return ""
	kind = type(value)
	if kind is str:
		if len(value) > 64:
			budget.count_text(value)
		return value
	if kind is int or kind is float:
		return value
	return budget.printable(value)


TEMPLATES = TemplateSandbox(
	autoescape=True, finalize=_finalize, undefined=jinja2.ChainableUndefined, optimized=False
)
TEMPLATES.globals["range"] = budget.guarded_range
TEMPLATES.globals["lipsum"] = guards.lipsum

#: Internal filters the compiler puts into templates (names a template author cannot type
#: are not needed: calling them directly is harmless).
ITERATE_FILTER = "rt_studio_iterate"
PRINTABLE_FILTER = "rt_studio_printable"
BUILT_FILTER = "rt_studio_built"

#: Jinja filters refused in rule templates, and why.
REFUSED_FILTERS = {"safe": "document values are always escaped: remove |safe"}


def _guarded_filter(name: str, fn):
	"""A Jinja filter that checks the clock, refuses oversized work first and counts its result."""
	check = FILTER_CHECKS.get(name)
	skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

	@functools.wraps(fn)
	def guarded(*args, **kwargs):
		budget.tick()
		if check is not None:
			args = check(args[:skip], args[skip:], kwargs)
		return budget.built(fn(*args, **kwargs))

	return guarded


def _arg(args: tuple, kwargs: Mapping, index: int, name: str, default=None):
	return args[index] if len(args) > index else kwargs.get(name, default)


def _check_center(front, args, kwargs):
	budget.printable(args[0] if args else "")
	width = _arg(args, kwargs, 1, "width", 80)
	if isinstance(width, int) and width > budget.MAX_SIZE:
		raise budget.over("a center width", width, budget.MAX_SIZE, "MAX_SIZE")
	return (*front, *args)


def _check_indent(front, args, kwargs):
	text = budget.printable(args[0] if args else "")
	width = _arg(args, kwargs, 1, "width", 4)
	per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
	size = len(str(text)) + (str(text).count("\n") + 1) * max(per_line, 0)
	if size > budget.MAX_SIZE:
		raise budget.too_big("the indented text", size)
	return (*front, *args)


def _check_format(front, args, kwargs):
	template = str(budget.printable(args[0] if args else ""))
	budget.tick().add_built(guards.percent_size(template, kwargs or tuple(args[1:])))
	return (*front, *args)


def _check_join(front, args, kwargs):
	items = list(budget.iterate(args[0])) if args else []
	separator = _arg(args, kwargs, 1, "d", "")
	size = sum(budget.size_of(item) for item in items) + len(str(separator)) * len(items)
	if size > budget.MAX_SIZE:
		raise budget.too_big("the joined text", size)
	return (*front, items, *args[1:])


def _check_replace(front, args, kwargs):
	text = str(budget.printable(args[0] if args else ""))
	old, new = str(_arg(args, kwargs, 1, "old", "")), str(_arg(args, kwargs, 2, "new", ""))
	count = _arg(args, kwargs, 3, "count")
	found = (len(text) + 1) if not old else text.count(old)
	if isinstance(count, int) and count >= 0:
		found = min(found, count)
	size = len(text) + found * max(len(new) - len(old), 0)
	if size > budget.MAX_SIZE:
		raise budget.too_big("the replaced text", size)
	return (*front, *args)


def _check_count(index: int, name: str, default, what: str):
	def check(front, args, kwargs):
		count = _arg(args, kwargs, index, name, default)
		if isinstance(count, int) and count > budget.MAX_ITERATIONS:
			raise budget.over(what, count, budget.MAX_ITERATIONS, "MAX_ITERATIONS")
		return (*front, *args)

	return check


def _check_round(front, args, kwargs):
	budget.check_precision(_arg(args, kwargs, 1, "precision", 0))
	return (*front, *args)


def _check_sum(front, args, kwargs):
	start = _arg(args, kwargs, 2, "start", 0)
	if not isinstance(start, int | float):
		raise budget.BudgetExceeded("the sum filter adds numbers only")
	return (*front, *args)


def _check_printable(front, args, kwargs):
	if args:
		budget.printable(args[0])
	return (*front, *args)


def _check_wordwrap(front, args, kwargs):
	text = str(budget.printable(args[0] if args else ""))
	wrap = _arg(args, kwargs, 4, "wrapstring") or "\n"
	size = len(text) + (len(text) + 1) * len(str(wrap))
	if size > budget.MAX_SIZE:
		raise budget.too_big("the wrapped text", size)
	return (*front, *args)


#: Checks made before a filter runs (on the value and arguments, after any context argument).
FILTER_CHECKS = {
	"center": _check_center,
	"indent": _check_indent,
	"format": _check_format,
	"join": _check_join,
	"replace": _check_replace,
	"batch": _check_count(1, "linecount", 0, "a batch size"),
	"slice": _check_count(1, "slices", 0, "a number of slices"),
	"round": _check_round,
	"sum": _check_sum,
	"wordwrap": _check_wordwrap,
	**dict.fromkeys(
		(
			"string",
			"e",
			"escape",
			"forceescape",
			"pprint",
			"tojson",
			"list",
			"xmlattr",
			"urlize",
			"striptags",
		),
		_check_printable,
	),
	**dict.fromkeys(
		("title", "capitalize", "upper", "lower", "trim", "truncate", "wordcount"), _check_printable
	),
	**dict.fromkeys(("urlencode", "filesizeformat", "unique", "sort", "dictsort"), _check_printable),
}

for _name in [n for n in TEMPLATES.filters if n not in REFUSED_FILTERS]:
	TEMPLATES.filters[_name] = _guarded_filter(_name, TEMPLATES.filters[_name])
for _name in REFUSED_FILTERS:
	TEMPLATES.filters.pop(_name, None)
TEMPLATES.filters[ITERATE_FILTER] = budget.iterate
TEMPLATES.filters[PRINTABLE_FILTER] = budget.printable
TEMPLATES.filters[BUILT_FILTER] = budget.built


@functools.lru_cache(maxsize=4096)
def _field_name_allowed(name: str) -> bool:
	return not name.startswith("_")


class TemplateGuards(jinja2.visitor.NodeTransformer):
	"""Refuses what would switch escaping off or load other templates, and puts the guards in:
	every loop iterates through the budget (counting the text its body writes each time),
	every `~` checks what it prints and counts what it builds."""

	def visit_Filter(self, node):
		if node.name in REFUSED_FILTERS:
			raise SandboxError(
				f"|{node.name} is not allowed (line {node.lineno}): {REFUSED_FILTERS[node.name]}"
			)
		return self.generic_visit(node)

	def visit_ScopedEvalContextModifier(self, node):
		raise SandboxError(
			f"{{% autoescape %}} is not allowed (line {node.lineno}): document values are always escaped"
		)

	visit_EvalContextModifier = visit_ScopedEvalContextModifier

	def visit_Include(self, node):
		raise SandboxError(f"templates cannot include, import or extend others (line {node.lineno})")

	visit_Import = visit_FromImport = visit_Extends = visit_Include

	def visit_For(self, node):
		node = self.generic_visit(node)
		static = sum(len(data.data) for data in _own_text(node.body))
		args = [nodes.Const(static)] if static else []
		node.iter = nodes.Filter(node.iter, ITERATE_FILTER, args, [], None, None, lineno=node.lineno)
		return node

	def visit_Concat(self, node):
		node = self.generic_visit(node)
		node.nodes = [
			nodes.Filter(part, PRINTABLE_FILTER, [], [], None, None, lineno=node.lineno)
			for part in node.nodes
		]
		return nodes.Filter(node, BUILT_FILTER, [], [], None, None, lineno=node.lineno)


def _own_text(body: Iterable[nodes.Node]):
	"""The template text a loop body writes itself (not in nested loops or macros)."""
	for child in body:
		if isinstance(child, nodes.TemplateData):
			yield child
		elif not isinstance(child, nodes.For | nodes.Macro | nodes.CallBlock):
			yield from _own_text(child.iter_child_nodes())


class CompiledTemplate:
	"""A Jinja template compiled once, with a note of whether it names the recipient or translates."""

	__slots__ = ("per_recipient", "source", "template", "translated")

	def __init__(self, source: str):
		if not isinstance(source, str):
			raise SandboxError(f"must be text, not {type(source).__name__}")
		if len(source) > MAX_TEMPLATE_LENGTH:
			raise SandboxError(f"is {len(source):,} characters long; the limit is {MAX_TEMPLATE_LENGTH:,}")
		self.source = source
		try:
			parsed = TemplateGuards().visit(TEMPLATES.parse(source))
			self.template = TEMPLATES.from_string(parsed)
		except jinja2.TemplateSyntaxError as e:
			raise SandboxError(f"template does not compile: {e.message} (line {e.lineno})") from None
		except (RecursionError, MemoryError):
			raise SandboxError("template nests too deeply to compile: split it into simpler parts") from None
		except (ValueError, SyntaxError) as e:  # a number too long to read, a name Python refuses
			raise SandboxError(f"template does not compile: {e}") from None
		# a plain dict instead of Jinja's ChainMap: each render copies the globals
		self.template.globals = dict(self.template.globals)
		# read from the syntax tree: Jinja's own analysis (meta) would fold constants
		self.per_recipient = "recipient" in source and any(
			name.name == "recipient" for name in parsed.find_all(nodes.Name)
		)
		# `_("text")`: rendered once per recipient language (rt_studio.engine.evaluate.render_texts)
		self.translated = "_" in source and any(name.name == "_" for name in parsed.find_all(nodes.Name))

	def render(self, context: Mapping) -> str:
		"""The text, rendered under the active budget (a default one when the caller set none)."""
		try:
			text = budget.run(self.template.render, context)
		except jinja2.exceptions.SecurityError as e:
			raise SandboxError(str(e)) from None
		if len(text) > budget.MAX_OUTPUT:
			raise budget.too_big("the rendered text", len(text), budget.MAX_OUTPUT, "MAX_OUTPUT")
		return text
