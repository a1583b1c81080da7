"""Sandboxed conditions (RestrictedPython) and templates (Jinja2), compiled once.

The policy follows `frappe.safe_eval` and Frappe's Jinja sandbox: no names or attributes
that start with an underscore, none of the attributes that reach frames, code or
generators, no imports, no assignment; documents are read-only views. Compiling is the
expensive part, so a rule compiles its condition and templates once per version and every
event only evaluates them.
"""

import ast
import functools
import types
import unicodedata
from collections.abc import Mapping

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from RestrictedPython import compile_restricted
from RestrictedPython.Guards import guarded_iter_unpack_sequence

from rt_studio.engine.docview import ReadOnlyDoc
from rt_studio.engine.utils import OFFLINE_UTILS

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

#: Objects whose attributes are never readable from a condition or template.
OPAQUE_TYPES = (types.ModuleType, types.CodeType, types.TracebackType, types.FrameType, type)

#: Builtins a condition may call: Notification's plus a few harmless ones.
SAFE_BUILTINS = {
	"int": int,
	"float": float,
	"long": int,
	"round": round,
	"str": str,
	"bool": bool,
	"len": len,
	"abs": abs,
	"min": min,
	"max": max,
	"sum": sum,
	"any": any,
	"all": all,
	"sorted": sorted,
	"list": list,
	"tuple": tuple,
	"set": set,
	"dict": dict,
	"range": range,
}


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
	check_attribute(obj, name)
	if isinstance(obj, ReadOnlyDoc) and name in obj:
		# a field wins over a dict method, as on a Document: `doc.items` is the child table
		return obj[name]
	return getattr(obj, name, *default)


def _getitem(obj, key):
	if isinstance(key, str) and key.startswith("_"):
		raise SandboxError(f'key "{key}" is not allowed: keys starting with "_" are private')
	return obj[key]


def make_namespace(values: Mapping) -> types.SimpleNamespace:
	return types.SimpleNamespace(**values)


def base_globals(utils: Mapping | None = None) -> dict:
	"""The names every condition and template sees besides the document."""
	utils = dict(utils if utils is not None else OFFLINE_UTILS)
	return {
		"frappe": make_namespace({"utils": make_namespace(utils)}),
		"nowdate": utils.get("nowdate", OFFLINE_UTILS["nowdate"]),
	}


# ---------------------------------------------------------------- conditions


def compile_condition(source: str):
	"""Compile a Python expression under RestrictedPython; raise SandboxError on refusal."""
	source = unicodedata.normalize("NFKC", source).strip()
	try:
		tree = ast.parse(source, mode="eval")
	except SyntaxError as e:
		raise SandboxError(f"not a Python expression: {e.msg} (line {e.lineno}, column {e.offset})") from None
	for node in ast.walk(tree):
		if isinstance(node, ast.NamedExpr):
			raise SandboxError(f"assignment with := is not allowed (line {node.lineno})")
	try:
		return compile_restricted(source, filename="<condition>", mode="eval")
	except SyntaxError as e:
		reasons = e.args[0] if e.args and isinstance(e.args[0], tuple | list) else e.args[:1]
		raise SandboxError("; ".join(str(reason).rstrip(".") for reason in reasons)) from None


CONDITION_GUARDS = {
	"__builtins__": SAFE_BUILTINS,
	"_getattr_": _getattr,
	"_getitem_": _getitem,
	"_getiter_": iter,
	"_iter_unpack_sequence_": guarded_iter_unpack_sequence,
}


def condition_namespace(shared: Mapping) -> dict:
	"""Globals for evaluating conditions: guards plus the shared names, ready to copy."""
	namespace = dict(shared)
	namespace.update(CONDITION_GUARDS)
	return namespace


def evaluate_condition(code, namespace: dict, context: Mapping) -> bool:
	"""Evaluate compiled `code` with `context` (doc, doc_before_save ...) as globals.

	Globals, not locals: comprehensions in an expression only see globals.
	"""
	scope = namespace.copy()
	scope.update(context)
	return bool(eval(code, scope))


# ---------------------------------------------------------------- templates


class TemplateSandbox(ImmutableSandboxedEnvironment):
	"""Jinja's immutable sandbox plus Frappe's unsafe-attribute list.

	Autoescape is on: whatever a template prints from a document is HTML-escaped, while the
	markup the rule's author wrote stays as written. None prints as an empty string.
	"""

	def is_safe_attribute(self, obj, attr, value) -> bool:
		"""Refuse what `check_attribute` refuses, then apply Jinja's own checks."""
		try:
			check_attribute(obj, attr)
		except SandboxError:
			return False
		return super().is_safe_attribute(obj, attr, value)

	def getattr(self, obj, attribute):
		"""A document's field wins over a dict method, as on a Document (`doc.items` is a table).

		On a document the verdict depends on the field's name only, so it is memoised: a
		template reading ten fields does not run the whole policy ten times per render.
		"""
		if type(obj) is ReadOnlyDoc and isinstance(attribute, str) and attribute in obj:
			if _field_name_allowed(attribute):
				return obj[attribute]
			return self.unsafe_undefined(obj, attribute)
		return super().getattr(obj, attribute)

	def getitem(self, obj, argument):
		"""`doc['_assign']` is refused like `doc._assign`, as in conditions."""
		if isinstance(argument, str) and argument.startswith("_"):
			return self.unsafe_undefined(obj, argument)
		return super().getitem(obj, argument)

	def unsafe_undefined(self, obj, attribute):
		"""Refuse at once: Jinja's default prints an unsafe attribute as an empty string, which hides
		the refusal from the rule's author (and an attempt to escape from the log)."""
		raise jinja2.exceptions.SecurityError(
			f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
		)


def _finalize(value):
	return "" if value is None else value


TEMPLATES = TemplateSandbox(autoescape=True, finalize=_finalize, undefined=jinja2.ChainableUndefined)


@functools.lru_cache(maxsize=4096)
def _field_name_allowed(name: str) -> bool:
	try:
		check_attribute(None, name)
	except SandboxError:
		return False
	return True


class CompiledTemplate:
	"""A Jinja template compiled once, with a note of whether it names the recipient."""

	__slots__ = ("per_recipient", "source", "template")

	def __init__(self, source: str):
		self.source = source
		try:
			parsed = TEMPLATES.parse(source)
			self.template = TEMPLATES.from_string(parsed)
		except jinja2.TemplateSyntaxError as e:
			raise SandboxError(f"template does not compile: {e.message} (line {e.lineno})") from None
		# a plain dict instead of Jinja's ChainMap: each render copies the globals
		self.template.globals = dict(self.template.globals)
		# the second analysis pass is only worth it when the word appears at all
		self.per_recipient = "recipient" in source and "recipient" in jinja2.meta.find_undeclared_variables(
			parsed
		)

	def render(self, context: Mapping) -> str:
		try:
			return self.template.render(context)
		except jinja2.exceptions.SecurityError as e:
			raise SandboxError(str(e)) from None
