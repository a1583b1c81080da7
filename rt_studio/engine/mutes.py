"""Mutes: a user's own choice not to receive a rule's or a channel's messages for a while.

A mute names its target as `rule:NAME` or `channel:NAME` and ends at a moment (seconds on the
store's clock) or never (`None`: until unmuted). The site keeps mutes in the database with a
Redis copy per target; the CLI and the tests use `InMemoryMutes`.
"""

import time
from collections.abc import Mapping, Sequence


def rule_target(rule: str) -> str:
	return f"rule:{rule}"


def channel_target(channel: str) -> str:
	return f"channel:{channel}"


class InMemoryMutes:
	"""{target: {user: until or None}} in a dict."""

	def __init__(self, mutes: Mapping[str, Mapping[str, float | None]] | None = None, clock=time.time):
		self._clock = clock
		self._mutes = {target: dict(users) for target, users in (mutes or {}).items()}

	@classmethod
	def from_dict(cls, data) -> "InMemoryMutes":
		"""From the CLI directory's `"mutes": {"user": ["rule:NAME", "channel:NAME"]}` (no end)."""
		if not isinstance(data, Mapping) or not all(isinstance(v, list) for v in data.values()):
			raise ValueError(
				'"mutes" must be an object like {"a@x.com": ["rule:Closed ToDo", "channel:ops"]}'
			)
		mutes: dict[str, dict] = {}
		for user, targets in data.items():
			for target in targets:
				if not isinstance(target, str) or not target.startswith(("rule:", "channel:")):
					raise ValueError(f'mutes["{user}"]: {target!r} must be "rule:NAME" or "channel:NAME"')
				mutes.setdefault(target, {})[user] = None
		return cls(mutes)

	def mute(self, target: str, user: str, until: float | None = None) -> None:
		self._mutes.setdefault(target, {})[user] = until

	def unmute(self, target: str, user: str) -> None:
		self._mutes.get(target, {}).pop(user, None)

	def muted(self, target: str, users: Sequence[str]) -> set[str]:
		held = self._mutes.get(target)
		if not held:
			return set()
		now = self._clock()
		return {user for user in users if user in held and (held[user] is None or held[user] > now)}
