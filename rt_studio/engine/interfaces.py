"""What only a site knows, as small interfaces the engine asks, and the plain data they pass.

The Frappe layer implements them with real Frappe calls; the CLI and the tests with the
in-memory versions in `rt_studio.engine.memory`. Documents are passed as read-only dicts.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True, eq=False)
class Channel:
	"""A Realtime Channel as the engine reads it (`rules.parse_channel` builds it from a document)."""

	name: str
	enabled: bool
	description: str
	members: tuple[tuple[str, str], ...]
	reference_doctype: str
	reference_name: str
	publish_roles: tuple[str, ...]
	rate_limit_count: int
	rate_limit_seconds: int
	event_name: str


#: Documents a summary names (the count goes on beyond): enough to see what happened, while
#: a batch of a busy rule stays a few kilobytes however many saves it collects.
MAX_DOCNAMES = 50


@dataclass(slots=True)
class Batch:
	"""The messages of one rule held back for one recipient."""

	rule: str
	user: str
	count: int = 0
	docnames: list[str] = field(default_factory=list)
	#: When the window ends, in the store's clock (seconds).
	due: float = 0.0

	def add(self, docname: str) -> None:
		self.count += 1
		if docname and docname not in self.docnames and len(self.docnames) < MAX_DOCNAMES:
			self.docnames.append(docname)


class DocumentEvent(Protocol):
	"""The document an event is about, and who acted (the engine's `evaluate.Event` is one)."""

	doctype: str
	docname: str
	doc: Mapping
	actor: str


class Directory(Protocol):
	"""Users, roles, permissions and document relations of one site."""

	def is_enabled(self, user: str) -> bool:
		"""Whether the user exists and is enabled."""

	def users_with_role(self, role: str, limit: int | None = None) -> Iterable[str]:
		"""Enabled users who have the role (at most `limit` of them, any, when given)."""

	def all_users(self, limit: int | None = None) -> Iterable[str]:
		"""Every enabled desk user (the "Everyone" audience, before permission checks; at most `limit`)."""

	def canonical_users(self, values: Sequence[str]) -> dict[str, str | None]:
		"""{value: the user's name as the site spells it, or None when the value names no user}.

		Values match user names as the site matches them: without case and surrounding spaces
		(`user_names.user_key`), so `Ben@Example.com ` and `ben@example.com` are one user.
		"""

	def enabled_users(self, users: Sequence[str]) -> set[str]:
		"""Those of `users` that exist and are enabled (asked for a whole chunk of an audience)."""

	def can_read(self, user: str, doctype: str, docname: str, doc: Mapping | None) -> bool:
		"""Whether the user may read the document."""

	def readers(self, users: Sequence[str], doctype: str, docname: str, doc: Mapping | None) -> set[str]:
		"""Those of `users` that may read the document, exactly as `can_read` would answer each."""

	def hidden_fields(self, users: Sequence[str | None], doctype: str) -> dict[str | None, frozenset[str]]:
		"""For each of `users`, the fields of `doctype` it may not read, by their permission level:
		`field`, or `table.field` for a field of a child table. None stands for a room (whoever
		may read the document: the fields of level 0 only)."""

	def assignees(self, doctype: str, docname: str, doc: Mapping) -> Iterable[str]:
		"""Users the document is assigned to."""

	def followers(self, doctype: str, docname: str, doc: Mapping) -> Iterable[str]:
		"""Users who follow the document or commented on it (owner and assignees are added by the engine)."""

	def get_channel(self, name: str) -> Channel | None:
		"""The channel by name, or None."""

	def languages(self, users: Sequence[str]) -> dict[str, str]:
		"""{user: language code} for `users`: each user's own language, else the site's."""

	def translator(self, language: str) -> Callable[[str], str]:
		"""Templates' `_` in `language`: a text in that language, as the site translates it."""


class RateLimiter(Protocol):
	"""Counts deliveries per key in a sliding window."""

	def hit(self, key: str, limit: int, window: int) -> bool:
		"""Record one delivery if fewer than `limit` were made in the last `window` seconds."""

	def peek(self, key: str, limit: int, window: int) -> bool:
		"""Whether `hit` would allow a delivery now, without recording one."""

	def hit_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		"""`hit` for each key, in order (one round trip on a site)."""

	def peek_many(self, keys: Sequence[str], limit: int, window: int) -> list[bool]:
		"""`peek` for each key, in order."""


class Mutes(Protocol):
	"""Who muted what, for themselves: a rule (`rule:NAME`) or a channel (`channel:NAME`)."""

	def muted(self, target: str, users: Sequence[str]) -> set[str]:
		"""Those of `users` with a mute of `target` in force now (asked for a whole chunk)."""


class Batches(Protocol):
	"""Messages over a rule's rate limit, collected per rule and recipient until the window ends."""

	def collecting(self, rule: str, users: Sequence[str]) -> set[str]:
		"""Those of `users` with a batch of `rule` not yet delivered."""

	def collect(self, rule: str, users: Sequence[str], docname: str, window: int) -> None:
		"""Add one message about `docname` to each user's batch of `rule`; a batch this opens
		is due `window` seconds from now."""

	def admit(
		self, rule: str, users: Sequence[str], limiter: RateLimiter, limit: int, window: int, consume: bool
	) -> set[str]:
		"""Those of `users` whose message of `rule` is held back: a batch of theirs is collecting,
		or they had `limit` messages within `window` seconds (counted in `limiter` under
		`ratelimit.rule_key`). With `consume` (live firing) each of the others uses up a slot;
		without it (preview) nothing is recorded. A site answers a chunk in one round trip."""

	def take_due(self, limit: int) -> list["Batch"]:
		"""Take up to `limit` batches whose window has ended, oldest due first (each batch is
		taken by one caller only). In memory they are gone at once; a site claims them and
		deletes them once their summaries are committed (see rt_studio/delivery/batches.py)."""


class Meta(Protocol):
	"""What Filters conditions need to compare as a list view does on this site."""

	#: The first day of a week for timespans such as "this week": 0 Monday ... 6 Sunday.
	first_day_of_week: int

	def fieldtype(self, doctype: str, fieldname: str) -> str | None:
		"""The field's Frappe fieldtype (`Int`, `Date` ...), or None when the DocType has no such field."""
