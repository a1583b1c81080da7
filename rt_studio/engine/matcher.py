"""The per-event lookup: which enabled rules listen to this DocType and these events.

Shaped like blinker's receivers-by-sender: an event on a DocType nobody listens to costs
one dict lookup and returns an empty tuple before any other work.
"""

from collections.abc import Iterable

from rt_studio.engine.events import METHOD, TIME_EVENTS
from rt_studio.engine.rules import Rule

NO_RULES: tuple = ()


class RuleIndex:
	"""Enabled rules indexed as {doctype: {event: (rule, ...)}}; Method rules also by method."""

	__slots__ = ("_index", "_merged", "_methods", "rules")

	def __init__(self, rules: Iterable[Rule]):
		self.rules = {rule.name: rule for rule in rules}
		index: dict[str, dict[str, list[Rule]]] = {}
		for rule in sorted(self.rules.values(), key=lambda r: r.name):
			if rule.enabled:
				index.setdefault(rule.document_type, {}).setdefault(rule.event, []).append(rule)
		self._index = {dt: {ev: tuple(rs) for ev, rs in by_event.items()} for dt, by_event in index.items()}
		methods: dict[str, dict[str, tuple[Rule, ...]]] = {}
		for doctype, by_event in self._index.items():
			for rule in by_event.get(METHOD, ()):
				by_method = methods.setdefault(doctype, {})
				by_method[rule.method] = (*by_method.get(rule.method, ()), rule)
		#: {doctype: {method: (rule, ...)}} for the Method rules.
		self._methods = methods
		#: {(doctype, events): rules} for actions that raise several events, filled on first use.
		self._merged: dict[tuple, tuple[Rule, ...]] = {}

	def has_rules(self, doctype: str) -> bool:
		return doctype in self._index

	def match(self, doctype: str, events: tuple[str, ...]) -> tuple[Rule, ...]:
		"""The enabled rules for `doctype` listening to any of `events` (each rule once)."""
		by_event = self._index.get(doctype)
		if by_event is None:
			return NO_RULES
		if len(events) == 1:
			return by_event.get(events[0], NO_RULES)
		key = (doctype, events)
		found = self._merged.get(key)
		if found is None:
			found = tuple(sorted((r for e in events for r in by_event.get(e, ())), key=_name)) or NO_RULES
			self._merged[key] = found
		return found

	def match_method(self, doctype: str, method: str) -> tuple[Rule, ...]:
		"""The enabled Method rules for `doctype` that name `method`."""
		by_method = self._methods.get(doctype)
		return by_method.get(method, NO_RULES) if by_method else NO_RULES

	def time_rules(self) -> tuple[Rule, ...]:
		"""Every enabled rule of a time event (Days/Minutes Before/After), by name."""
		found = (
			rules
			for by_event in self._index.values()
			for event, rules in by_event.items()
			if event in TIME_EVENTS
		)
		return tuple(sorted((rule for rules in found for rule in rules), key=_name))


def _name(rule: Rule) -> str:
	return rule.name
