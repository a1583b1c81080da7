"""The house's floors: no import cycles anywhere in the app, and the engine stays pure.

Every import counts, also one inside a function (a common way to hide a cycle): a module
that imports another to run must not be needed by it in turn.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
APP = ROOT / "rt_studio"


def module_name(path: pathlib.Path) -> str:
	parts = list(path.relative_to(ROOT).with_suffix("").parts)
	if parts[-1] == "__init__":
		parts.pop()
	return ".".join(parts)


def app_modules() -> dict[str, pathlib.Path]:
	"""The app's modules but its tests (they import everything, on purpose)."""
	return {
		module_name(p): p
		for p in APP.rglob("*.py")
		if "tests" not in p.relative_to(APP).parts and not p.name.startswith("test_")
	}


def imports_of(path: pathlib.Path, modules: dict) -> set[str]:
	"""The app modules `path` imports, at any depth of its code."""
	found = set()
	for node in ast.walk(ast.parse(path.read_text())):
		if isinstance(node, ast.Import):
			names = [alias.name for alias in node.names]
		elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
			# `from pkg import sub` needs the module sub (a package's own __init__ always runs
			# first, whoever imports it); `from mod import name` needs mod
			subs = [f"{node.module}.{alias.name}" for alias in node.names]
			names = [s for s in subs if s in modules]
			if len(names) < len(subs):
				names.append(node.module)
		else:
			continue
		for name in names:
			# `from rt_studio.a import b`: b is a module or a name in module a
			while name and name not in modules:
				name = name.rpartition(".")[0]
			if name and name != "rt_studio":
				found.add(name)
	return found


def graph() -> dict[str, set[str]]:
	modules = app_modules()
	return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
	"""Strongly connected components of more than one module (Tarjan)."""
	index, low, stack, on_stack, out = {}, {}, [], set(), []

	def visit(v):
		index[v] = low[v] = len(index)
		stack.append(v)
		on_stack.add(v)
		for w in sorted(edges.get(v, ())):
			if w not in index:
				visit(w)
				low[v] = min(low[v], low[w])
			elif w in on_stack:
				low[v] = min(low[v], index[w])
		if low[v] == index[v]:
			component = []
			while True:
				w = stack.pop()
				on_stack.discard(w)
				component.append(w)
				if w == v:
					break
			if len(component) > 1:
				out.append(sorted(component))

	for v in sorted(edges):
		if v not in index:
			visit(v)
	return out


def test_no_import_cycles():
	assert cycles(graph()) == []


def test_the_engine_imports_only_the_engine():
	for name, imported in graph().items():
		if name.startswith("rt_studio.engine"):
			assert {m for m in imported if not m.startswith("rt_studio.engine")} == set(), name


def test_the_checker_finds_a_cycle():
	"""The check itself: a two-module cycle is reported (a check that cannot fail proves nothing)."""
	assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
