"""Verdicts: whether each recipient of a rule gets the message.

Decided for the whole audience at once, in chunks: the directory answers "which of these
users are enabled" and "which of these may read the document" per chunk, so a site can load
roles, permissions and shares for many users in a few queries instead of a few per user,
and a role of ten thousand users never holds more than one chunk of answers in flight.
Mutes are asked once per chunk as well; the rate limit and batching stage is in `batching.py`.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rt_studio.engine.interfaces import Directory, Mutes
from rt_studio.engine.user_names import user_key

DELIVER = "deliver"
NO_READ = "no read permission"
ACTOR_EXCLUDED = "actor excluded"
DISABLED = "disabled user"
MUTED = "muted"
#: Over the rule's rate limit: collected into one summary delivered when the window ends.
BATCHED = "batched"
#: A value in the audience (a user field, an assignment ...) that names no user of the site.
NO_SUCH_USER = "no such user"

#: Every verdict a recipient can get now, the deliverable one first.
VERDICTS = (DELIVER, NO_READ, ACTOR_EXCLUDED, DISABLED, MUTED, BATCHED, NO_SUCH_USER)

#: Recipients decided together: a site answers a chunk of a thousand users in one round trip
#: per question (who is enabled, who may read, who muted, who is over the limit), and one step
#: holds no more than a thousand users' answers in memory.
CHUNK = 1000


@dataclass(slots=True)
class Recipient:
	"""One user (or room) an audience row named, with the verdict on delivering to it."""

	user: str | None
	room: str | None
	source: str
	verdict: str = DELIVER
	subject: str = ""
	message: str = ""

	def as_dict(self) -> dict:
		target = {"user": self.user} if self.user else {"room": self.room}
		return {
			**target,
			"source": self.source,
			"verdict": self.verdict,
			"subject": self.subject,
			"message": self.message,
		}


@dataclass(frozen=True, slots=True)
class Audit:
	"""What the verdicts are about: the document, who acted, and whether the actor is spared.

	`actor` may be spelled in any case: it is compared as the site compares user names.
	"""

	doctype: str
	docname: str
	doc: Mapping
	actor: str
	exclude_actor: bool


def chunks(items: list, size: int = CHUNK):
	for start in range(0, len(items), size):
		yield items[start : start + size]


def give_verdicts(
	recipients: list[Recipient],
	audit: Audit,
	directory: Directory,
	progress: Callable[[int, int], None] | None = None,
) -> None:
	"""Set each user recipient's verdict: disabled, actor excluded, no read permission or deliver.

	Rooms keep their verdict: whoever joins a document's room was checked for read access by
	Frappe when joining.
	"""
	users = [rec for rec in recipients if rec.user and rec.verdict == DELIVER]
	actor = user_key(audit.actor or "")
	done = 0
	for chunk in chunks(users):
		enabled = directory.enabled_users([rec.user for rec in chunk])
		readable = []
		for rec in chunk:
			if rec.user not in enabled:
				rec.verdict = DISABLED
			elif audit.exclude_actor and user_key(rec.user) == actor:
				rec.verdict = ACTOR_EXCLUDED
			else:
				readable.append(rec)
		if readable:
			readers = directory.readers(
				[rec.user for rec in readable], audit.doctype, audit.docname, audit.doc
			)
			for rec in readable:
				if rec.user not in readers:
					rec.verdict = NO_READ
		done += len(chunk)
		if progress is not None:
			progress(done, len(users))


def apply_mutes(recipients: list[Recipient], target: str, critical: bool, mutes: Mutes) -> None:
	"""Mark deliverable users who muted `target` (a rule or a channel) as muted.

	A critical rule reaches everyone it names: its recipients' mutes are not even asked.
	"""
	if critical:
		return
	users = [rec for rec in recipients if rec.user and rec.verdict == DELIVER]
	for chunk in chunks(users):
		muted = mutes.muted(target, [rec.user for rec in chunk])
		if muted:
			for rec in chunk:
				if rec.user in muted:
					rec.verdict = MUTED
