"""The sandbox policy, and conditions: Python expressions under RestrictedPython, compiled once.

The policy follows `frappe.safe_eval` and Frappe's Jinja sandbox (templates, in
`templates.py`, share it): no names or attributes that start with an underscore, none of the
attributes that reach frames, code or generators, no imports, no assignment, nothing that
changes a list or dict; documents are read-only views. On top of that, every operation that
can build something large or run long goes through a guard of `guards.py`, and compiling
never evaluates anything: the rewritten expression has no constant left for Python to fold.
Compiling is the expensive part, so a rule compiles its condition once per version and every
event only evaluates it.
"""

import ast
import types
from collections.abc import Mapping

from jinja2.sandbox import modifies_known_mutable
from RestrictedPython import compile_restricted
from RestrictedPython.Guards import guarded_iter_unpack_sequence
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from rt_studio.engine import budget, guards
from rt_studio.engine.docview import ReadOnlyDoc
from rt_studio.engine.utils import FRAPPE_UTIL_NAMES, OFFLINE_UTILS

#: Attributes that lead from a harmless object to frames, code or the interpreter.
UNSAFE_ATTRIBUTES = frozenset(
	{
		"gi_frame",
		"gi_code",
		"gi_yieldfrom",
		"cr_frame",
		"cr_code",
		"cr_origin",
		"cr_await",
		"ag_code",
		"ag_frame",
		"tb_frame",
		"tb_next",
		"format",
		"format_map",
		"f_back",
		"f_builtins",
		"f_code",
		"f_globals",
		"f_locals",
		"f_trace",
		"mro",
	}
)

#: Objects whose attributes are never readable from a condition or template (functions and
#: methods have nothing a rule needs, and `dict.update` would reach a document's dict).
OPAQUE_TYPES = (
	types.ModuleType,
	types.CodeType,
	types.TracebackType,
	types.FrameType,
	type,
	types.FunctionType,
	types.BuiltinFunctionType,
	types.MethodType,
)

#: Builtins a condition may call: Notification's plus a few harmless ones (those that build
#: or walk collections in their guarded form).
SAFE_BUILTINS = {
	"int": int,
	"float": float,
	"long": int,
	"bool": bool,
	"len": len,
	"abs": abs,
	"min": min,
	"max": max,
	"any": any,
	"all": all,
	**guards.GUARDED_BUILTINS,
}

#: Names a condition can use besides its own comprehension variables and lambda arguments.
CONDITION_NAMES = frozenset(
	{"doc", "doc_before_save", "actor", "event", "rule", "frappe", "nowdate", "changed_rows"}
) | set(SAFE_BUILTINS)

#: Longest condition accepted: Notification conditions are a line or two; past this,
#: compiling alone would take a noticeable time.
MAX_CONDITION_LENGTH = 10_000


class SandboxError(Exception):
	"""A condition or template refused by the sandbox or failing to compile."""


def check_attribute(obj, name) -> None:
	"""Refuse private and dangerous attribute names and attributes of opaque objects."""
	if not isinstance(name, str):
		raise SandboxError("attribute names must be text")
	if name.startswith("_"):
		raise SandboxError(f'"{name}" is not allowed: names starting with "_" are private')
	if name in UNSAFE_ATTRIBUTES:
		raise SandboxError(f'"{name}" is an unsafe attribute')
	if isinstance(obj, OPAQUE_TYPES):
		raise SandboxError(f"reading attributes of {type(obj).__name__} objects is not allowed")


def _getattr(obj, name, *default):
	if type(obj) is ReadOnlyDoc and isinstance(name, str) and name in obj:
		# a field wins over a dict method, as on a Document: `doc.items` is the child table,
		# and a field may be named `format` or `mro`
		if name[0] == "_":
			raise SandboxError(f'"{name}" is not allowed: names starting with "_" are private')
		return obj[name]
	check_attribute(obj, name)
	if modifies_known_mutable(obj, name):
		if isinstance(obj, ReadOnlyDoc):
			raise SandboxError(f'"{name}": documents are read-only in conditions and templates')
		raise SandboxError(f'"{name}" would change a {type(obj).__name__}: conditions change nothing')
	return guards.guard_method(obj, name, getattr(obj, name, *default))


def _getitem(obj, key):
	if isinstance(key, str) and key.startswith("_"):
		raise SandboxError(f'key "{key}" is not allowed: keys starting with "_" are private')
	if type(key) is slice:
		return budget.built(obj[key])
	return obj[key]


def make_namespace(values: Mapping) -> types.SimpleNamespace:
	return types.SimpleNamespace(**values)


def base_globals(utils: Mapping | None = None) -> dict:
	"""The names every condition and template sees besides the document.

	Every helper is wrapped by `guards.guard_helper`: Frappe's helpers were not written for
	hostile input.
	"""
	guarded = _guarded_utils(utils if utils is not None else OFFLINE_UTILS)
	return {
		"frappe": make_namespace({"utils": make_namespace(guarded)}),
		"nowdate": guarded.get("nowdate") or guards.guard_helper(OFFLINE_UTILS["nowdate"]),
		# templates' `_("text")`: the text in the recipient's language (render_texts); as is here
		"_": untranslated,
	}


def untranslated(text, *args, **kwargs) -> str:
	"""`_` where no language applies: the text as written."""
	return text if isinstance(text, str) else str(text)


_guarded_cache: dict[int, tuple[Mapping, dict]] = {}


def _guarded_utils(utils: Mapping) -> dict:
	"""The helpers wrapped once per mapping (a site passes the same cached one every time)."""
	cached = _guarded_cache.get(id(utils))
	if cached is None or cached[0] is not utils:
		guarded = {name: guards.guard_helper(fn) if callable(fn) else fn for name, fn in utils.items()}
		cached = _guarded_cache[id(utils)] = (utils, guarded)
	return cached[1]


# ---------------------------------------------------------------- conditions


class GuardingTransformer(RestrictingNodeTransformer):
	"""RestrictedPython's policy, plus the budget's guards put into the expression.

	`a * b`, `a ** b`, `a % b`, `a + b` and `a << b` become guard calls (so Python has no
	constant expression left to fold while compiling either), each lambda checks the clock
	when called, f-string fields are checked before they are printed, and `*` / `**`
	unpacking, which copies without a guard, is refused.
	"""

	OPERATOR_GUARDS = {
		ast.Add: "_add_",
		ast.Mult: "_mul_",
		ast.Pow: "_pow_",
		ast.Mod: "_mod_",
		ast.LShift: "_lshift_",
	}

	def visit_BinOp(self, node):
		node = self.node_contents_visit(node)
		guard = self.OPERATOR_GUARDS.get(type(node.op))
		if guard is None:
			return node
		return _call(guard, [node.left, node.right], node)

	def visit_Lambda(self, node):
		node = super().visit_Lambda(node)
		node.body = ast.BoolOp(op=ast.And(), values=[_call("_tick_", [], node.body), node.body])
		copy_locations(node.body, node)
		return node

	def visit_FormattedValue(self, node):
		node.value = self.visit(node.value)
		spec = node.format_spec
		if spec is not None:
			if not all(isinstance(part, ast.Constant) for part in spec.values):
				self.error(node, "a format spec in an f-string must be written out, not computed")
				return node
			try:
				guards.check_format_spec("".join(str(part.value) for part in spec.values))
			except budget.BudgetExceeded as e:
				self.error(node, str(e))
		node.value = _call("_format_value_", [node.value], node.value)
		return node

	def visit_JoinedStr(self, node):
		node = self.node_contents_visit(node)
		return _call("_built_", [node], node)

	def visit_Starred(self, node):
		self.error(node, "unpacking with * is not allowed in conditions")
		return node

	def visit_Dict(self, node):
		if any(key is None for key in node.keys):
			self.error(node, "unpacking with ** is not allowed in conditions")
		return self.node_contents_visit(node)

	def visit_Call(self, node):
		if any(keyword.arg is None for keyword in node.keywords):
			self.error(node, "unpacking with ** is not allowed in conditions")
		return super().visit_Call(node)


def _call(name: str, args: list, where) -> ast.Call:
	call = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
	copy_locations(call, where)
	copy_locations(call.func, where)
	return call


def _tick() -> bool:
	budget.tick()
	return True


def compile_condition(source: str):
	"""Compile a Python expression under RestrictedPython; raise SandboxError on refusal.

	String literals are compiled as written: Python's parser already folds look-alike
	identifiers (NFKC), so a full-width underscore is refused like `doc._assign`, while `'m²'` stays
	`'m²'` and does not become `'m2'`.
	"""
	if not isinstance(source, str):
		raise SandboxError(f"must be text, not {type(source).__name__}")
	source = source.strip()
	if len(source) > MAX_CONDITION_LENGTH:
		raise SandboxError(
			f"is {len(source):,} characters long; the limit is {MAX_CONDITION_LENGTH:,}: write a shorter expression"
		)
	try:
		tree = ast.parse(source, mode="eval")
		_check_condition_tree(tree)
		result = compile_restricted(source, filename="<condition>", mode="eval", policy=GuardingTransformer)
	except SyntaxError as e:
		if e.args and isinstance(e.args[0], tuple | list):
			raise SandboxError("; ".join(str(reason).rstrip(".") for reason in e.args[0])) from None
		raise SandboxError(f"not a Python expression: {e.msg} (line {e.lineno}, column {e.offset})") from None
	except (RecursionError, MemoryError):
		raise SandboxError("nests too deeply to compile: split it into simpler parts") from None
	except ValueError as e:  # a NUL byte, an integer literal too long to read
		raise SandboxError(f"not a Python expression: {e}") from None
	return result


def _check_condition_tree(tree: ast.AST) -> None:
	"""Refuse := and names that do not exist, before RestrictedPython's own checks."""
	bound = set()
	for node in ast.walk(tree):
		if isinstance(node, ast.NamedExpr):
			raise SandboxError(f"assignment with := is not allowed (line {node.lineno})")
		if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
			bound.add(node.id)
		elif isinstance(node, ast.arg):
			bound.add(node.arg)
	for node in ast.walk(tree):
		if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
			if node.id not in CONDITION_NAMES and node.id not in bound and not node.id.startswith("_"):
				raise SandboxError(f"name {node.id!r} is not defined (line {node.lineno}): {_names_hint()}")
		elif (
			isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "frappe"
		):
			if node.attr != "utils" and "frappe" not in bound:
				raise SandboxError(f"frappe.{node.attr} is not available: conditions can use frappe.utils")
		elif (
			isinstance(node, ast.Attribute)
			and isinstance(node.value, ast.Attribute)
			and isinstance(node.value.value, ast.Name)
			and node.value.value.id == "frappe"
			and node.value.attr == "utils"
			and node.attr not in FRAPPE_UTIL_NAMES
		):
			raise SandboxError(f"frappe.utils.{node.attr} does not exist (line {node.lineno})")


def _names_hint() -> str:
	return (
		"conditions can use doc, doc_before_save, changed_rows, actor, event, rule, frappe.utils, nowdate and "
		+ ", ".join(sorted(SAFE_BUILTINS))
	)


CONDITION_GUARDS = {
	"__builtins__": SAFE_BUILTINS,
	"_getattr_": _getattr,
	"_getitem_": _getitem,
	"_getiter_": budget.iterate,
	"_iter_unpack_sequence_": guarded_iter_unpack_sequence,
	"_add_": guards.add,
	"_mul_": guards.mul,
	"_pow_": guards.power,
	"_mod_": guards.mod,
	"_lshift_": guards.lshift,
	"_tick_": _tick,
	"_format_value_": budget.printable,
	"_built_": budget.built,
}


def condition_namespace(shared: Mapping) -> dict:
	"""Globals for evaluating conditions: guards plus the shared names, ready to copy."""
	namespace = dict(shared)
	namespace.update(CONDITION_GUARDS)
	return namespace


def evaluate_condition(code, namespace: dict, context: Mapping) -> bool:
	"""Evaluate compiled `code` with `context` (doc, doc_before_save ...) as globals, under the
	active budget (a default one when the caller set none).

	Globals, not locals: comprehensions in an expression only see globals.
	"""
	scope = namespace.copy()
	scope.update(context)
	return bool(budget.run(eval, code, scope))
