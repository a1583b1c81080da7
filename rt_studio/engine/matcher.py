"""The per-event lookup: which enabled rules listen to this DocType and these events.

Shaped like blinker's receivers-by-sender: an event on a DocType nobody listens to costs
one dict lookup and returns an empty tuple before any other work.
"""

from collections.abc import Iterable

from rt_studio.engine.rules import Rule

NO_RULES: tuple = ()


class RuleIndex:
	"""Enabled rules indexed as {doctype: {event: (rule, ...)}}."""

	__slots__ = ("_index", "_merged", "rules")

	def __init__(self, rules: Iterable[Rule]):
		self.rules = {rule.name: rule for rule in rules}
		index: dict[str, dict[str, list[Rule]]] = {}
		for rule in sorted(self.rules.values(), key=lambda r: r.name):
			if rule.enabled:
				index.setdefault(rule.document_type, {}).setdefault(rule.event, []).append(rule)
		self._index = {dt: {ev: tuple(rs) for ev, rs in by_event.items()} for dt, by_event in index.items()}
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


def _name(rule: Rule) -> str:
	return rule.name
