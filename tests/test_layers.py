"""The house's floors: no import cycles anywhere in the app, the engine stays pure, and no chain
of imports is deeper than a newcomer can walk.

Every import counts, also one inside a function (a common way to hide a cycle): a module
that imports another to run must not be needed by it in turn.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
APP = ROOT / "rt_studio"
ENGINE = "rt_studio.engine"

#: Floors above the engine: the longest chain of app modules outside the engine, the engine
#: counted as one floor (api -> desk.authoring -> delivery.deferred -> ... -> engine). It was 9
#: before the packages by capability, 12 right after; a chain deeper than this means a module
#: needs one that belongs above it (a desk module the save handler, say).
MAX_FLOORS = 8
#: Floors inside the engine (e.g. summaries -> evaluate -> audience -> rules -> templates ->
#: sandbox -> guards -> budget): it was 11; interfaces.py holds only protocols and plain data.
MAX_ENGINE_FLOORS = 9


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


def longest_chain(edges: dict[str, set[str]]) -> list[str]:
	"""The longest chain of imports (a -> b -> c ...) in an acyclic graph, first by name on a tie."""
	longest: dict[str, list[str]] = {}

	def chain(v):
		if v not in longest:
			below = max((chain(w) for w in sorted(edges.get(v, ()))), key=len, default=[])
			longest[v] = [v, *below]
		return longest[v]

	return max((chain(v) for v in sorted(edges)), key=len, default=[])


def floors(edges: dict[str, set[str]]) -> dict[str, set[str]]:
	"""The app's modules outside the engine, with the engine as one module `rt_studio.engine`."""

	def floor(name):
		return ENGINE if name.startswith(ENGINE) else name

	out: dict[str, set[str]] = {}
	for name, imported in edges.items():
		out.setdefault(floor(name), set()).update(floor(m) for m in imported)
	out[ENGINE] = set()
	return out


def engine_only(edges: dict[str, set[str]]) -> dict[str, set[str]]:
	return {
		name: {m for m in imported if m.startswith(ENGINE)}
		for name, imported in edges.items()
		if name.startswith(ENGINE)
	}


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


def test_no_chain_of_imports_is_deeper_than_the_floors():
	edges = graph()
	chain = longest_chain(floors(edges))
	assert len(chain) <= MAX_FLOORS, " -> ".join(chain)
	chain = longest_chain(engine_only(edges))
	assert len(chain) <= MAX_ENGINE_FLOORS, " -> ".join(chain)


def test_the_depth_check_sees_a_deep_chain():
	"""The depth check itself: it finds the longest chain, and the engine is one floor above the rest."""
	edges = {"a": {"b", "d"}, "b": {"c"}, "c": set(), "d": set()}
	assert longest_chain(edges) == ["a", "b", "c"]
	app = {
		"rt_studio.api": {"rt_studio.desk"},
		"rt_studio.desk": {"rt_studio.engine.evaluate"},
		"rt_studio.engine.evaluate": {"rt_studio.engine.rules"},
		"rt_studio.engine.rules": set(),
	}
	assert longest_chain(floors(app)) == ["rt_studio.api", "rt_studio.desk", ENGINE]
	assert longest_chain(engine_only(app)) == ["rt_studio.engine.evaluate", "rt_studio.engine.rules"]
