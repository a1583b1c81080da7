"""In-memory implementations of the engine's interfaces, for the CLI and the tests.

The directory file the CLI reads has this shape::

	{"users": {"a@x.com": {"roles": ["Sales User"], "enabled": true, "can_read": ["ToDo"],
	                       "cannot_read_fields": {"ToDo": ["priority"]}}},
	 "channels": [<channel documents as exported>] or {"name": <channel document>},
	 "follows": {"ToDo/TD-0001": ["c@x.com"]},
	 "mutes": {"a@x.com": ["rule:Closed ToDo", "channel:ops"]},
	 "translations": {"de": {"New ToDo": "Neue Aufgabe"}}}

A user's `"language"` (default "en") picks the `translations` templates' `_("...")` use.

`can_read` lists DocTypes, or "DocType/name" for single documents; "*" means everything.
`mutes` (read by `rt_studio.engine.mutes.InMemoryMutes.from_dict`) lists what each user muted.
"""

from collections.abc import Iterable, Mapping, Sequence
from itertools import islice

from rt_studio.engine.audience import assigned_users, commenters
from rt_studio.engine.rules import Channel, parse_channel
from rt_studio.engine.user_names import user_key


class DirectoryError(ValueError):
	"""The directory data is not of the documented shape."""


class InMemoryDirectory:
	"""A site's users, roles and permissions held in dicts."""

	def __init__(
		self,
		users: Mapping | None = None,
		channels: Iterable[Channel] = (),
		follows: Mapping | None = None,
		*,
		open_world: bool = False,
		translations: Mapping | None = None,
	):
		#: With no directory at all (the CLI without --directory), every user named by an
		#: audience counts as enabled and able to read: the simulation shows the rule's logic.
		self.open_world = open_world
		self.users = {name: dict(info) for name, info in (users or {}).items()}
		self.channels = {c.name: c for c in channels}
		self.follows = {k: list(v) for k, v in (follows or {}).items()}
		#: {language: {text: translated text}}
		self.translations = {lang: dict(texts) for lang, texts in (translations or {}).items()}

	@classmethod
	def from_dict(cls, data) -> "InMemoryDirectory":
		"""Build from the directory file's contents; DirectoryError says what is wrong."""
		if not isinstance(data, Mapping):
			raise DirectoryError('the directory must be an object like {"users": {...}, "channels": {...}}')
		users = data.get("users") or {}
		if not isinstance(users, Mapping):
			raise DirectoryError('"users" must be an object keyed by user id')
		for name, info in users.items():
			if not isinstance(info, Mapping):
				raise DirectoryError(f'users["{name}"] must be an object with roles, enabled, can_read')
			for key in ("roles", "can_read"):
				if key in info and not isinstance(info[key], list):
					raise DirectoryError(f'users["{name}"].{key} must be a list')
			hidden = info.get("cannot_read_fields") or {}
			if not isinstance(hidden, Mapping) or not all(isinstance(v, list) for v in hidden.values()):
				raise DirectoryError(
					f'users["{name}"].cannot_read_fields must be an object like {{"ToDo": ["priority"]}}'
				)
		raw = data.get("channels") or []
		if isinstance(raw, Mapping):
			raw = [
				{"channel_name": name, **(doc if isinstance(doc, Mapping) else {})}
				for name, doc in raw.items()
			]
		if not isinstance(raw, list):
			raise DirectoryError('"channels" must be a list of channel documents or an object keyed by name')
		channels = []
		for doc in raw:
			channel, problems = parse_channel(doc if isinstance(doc, Mapping) else {})
			if problems:
				raise DirectoryError(f"channel {problems[0]}")
			channels.append(channel)
		follows = data.get("follows") or {}
		if not isinstance(follows, Mapping):
			raise DirectoryError('"follows" must be an object like {"ToDo/TD-1": ["user"]}')
		translations = data.get("translations") or {}
		if not isinstance(translations, Mapping) or not all(
			isinstance(v, Mapping) for v in translations.values()
		):
			raise DirectoryError('"translations" must be an object like {"de": {"New ToDo": "Neue Aufgabe"}}')
		return cls(users, channels, follows, translations=translations)

	def _user(self, user: str) -> Mapping:
		return self.users.get(user) or {}

	def is_enabled(self, user: str) -> bool:
		if self.open_world and user not in self.users:
			return True
		return user in self.users and bool(self.users[user].get("enabled", True))

	def enabled_users(self, users: Sequence[str]) -> set[str]:
		return {user for user in users if self.is_enabled(user)}

	def users_with_role(self, role: str, limit: int | None = None) -> list[str]:
		found = (
			u for u, info in self.users.items() if role in (info.get("roles") or ()) and self.is_enabled(u)
		)
		return list(islice(found, limit))

	def all_users(self, limit: int | None = None) -> list[str]:
		return list(islice((u for u in self.users if self.is_enabled(u)), limit))

	def canonical_users(self, values: Sequence[str]) -> dict[str, str | None]:
		names = {user_key(name): name for name in self.users}
		found = {}
		for value in values:
			name = names.get(user_key(value))
			if name is None and self.open_world and value.strip():
				name = value.strip()
			found[value] = name
		return found

	def can_read(self, user: str, doctype: str, docname: str, doc: Mapping | None) -> bool:
		if self.open_world and user not in self.users:
			return True
		allowed = self._user(user).get("can_read") or ()
		if "System Manager" in (self._user(user).get("roles") or ()) or user == "Administrator":
			return True
		return "*" in allowed or doctype in allowed or f"{doctype}/{docname}" in allowed

	def readers(self, users: Sequence[str], doctype: str, docname: str, doc: Mapping | None) -> set[str]:
		return {user for user in users if self.can_read(user, doctype, docname, doc)}

	def languages(self, users: Sequence[str]) -> dict[str, str]:
		return {user: self._user(user).get("language") or "en" for user in users}

	def translator(self, language: str):
		texts = self.translations.get(language) or {}
		return lambda text, *args, **kwargs: texts.get(text, text) if isinstance(text, str) else str(text)

	def hidden_fields(self, users: Sequence[str | None], doctype: str) -> dict[str | None, frozenset[str]]:
		return {user: self._hidden(user, doctype) for user in users}

	def _hidden(self, user: str | None, doctype: str) -> frozenset[str]:
		hidden: set[str] = set()
		for info in self.users.values() if user is None else [self._user(user)]:
			hidden.update((info.get("cannot_read_fields") or {}).get(doctype) or ())
		return frozenset(hidden)

	def assignees(self, doctype: str, docname: str, doc: Mapping) -> list[str]:
		return assigned_users(doc)

	def followers(self, doctype: str, docname: str, doc: Mapping) -> list[str]:
		return list(self.follows.get(f"{doctype}/{docname}", [])) + commenters(doc)

	def get_channel(self, name: str) -> Channel | None:
		return self.channels.get(name)


class InMemoryMeta:
	"""Fieldtypes held in a dict {(doctype, fieldname): fieldtype}, for the tests."""

	def __init__(self, fieldtypes: Mapping | None = None, first_day_of_week: int = 6):
		self.fieldtypes = dict(fieldtypes or {})
		self.first_day_of_week = first_day_of_week

	def fieldtype(self, doctype: str, fieldname: str) -> str | None:
		return self.fieldtypes.get((doctype, fieldname))
