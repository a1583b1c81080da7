"""Reading fixture files: rules and channels as `bench export-fixtures` writes them."""

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from rt_studio.engine.errors import Problem
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE, Channel, Rule, parse_channel, parse_rule

#: The DocTypes a fixture file for rt-studio holds.
FIXTURE_DOCTYPES = (RULE_DOCTYPE, CHANNEL_DOCTYPE)


class FixtureError(ValueError):
	"""A file that cannot be read as JSON, or whose JSON is not a list of documents."""


class EmptyFile(FixtureError):
	"""A file with nothing in it (a problem of a rules file, a usage error for a document)."""


EMPTY_FILE = Problem("", "", "the file is empty: export rules into it, or leave it out")


@dataclass
class Fixture:
	rules: list[Rule] = field(default_factory=list)
	channels: list[Channel] = field(default_factory=list)
	problems: list[Problem] = field(default_factory=list)
	#: Rule documents as read, by name (disabled ones included).
	rule_docs: dict[str, Mapping] = field(default_factory=dict)
	#: Names seen so far per DocType, with the file and item they came from.
	seen: dict[tuple[str, str], str] = field(default_factory=dict)

	def merge(self, other: "Fixture") -> None:
		for (doctype, name), where in other.seen.items():
			if (doctype, name) in self.seen:
				other.problems.append(_duplicate(doctype, name, self.seen[(doctype, name)], where))
				other.rules = [r for r in other.rules if r.name != name or doctype != RULE_DOCTYPE]
				other.channels = [c for c in other.channels if c.name != name or doctype != CHANNEL_DOCTYPE]
			else:
				self.seen[(doctype, name)] = where
		self.rules += other.rules
		self.channels += other.channels
		self.problems += other.problems
		self.rule_docs.update(other.rule_docs)


def read_json(path: str):
	"""The parsed JSON of a file; FixtureError names the file and the line on failure.

	A UTF-8 byte order mark is accepted (editors on Windows write one).
	"""
	try:
		with open(path, encoding="utf-8-sig") as f:
			text = f.read()
	except FileNotFoundError:
		raise FixtureError(f"{path}: no such file") from None
	except (OSError, UnicodeDecodeError) as e:
		raise FixtureError(f"{path}: cannot read: {e}") from None
	if not text.strip():
		raise EmptyFile(f"{path}: the file is empty")
	try:
		return json.loads(text)
	except json.JSONDecodeError as e:
		raise FixtureError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
	except RecursionError:
		raise FixtureError(f"{path}: invalid JSON: nested too deeply to read") from None


def load_documents(documents, source: str = "") -> Fixture:
	"""Rules and channels from a list of fixture documents; anything else in it is a problem."""
	if not isinstance(documents, list):
		raise FixtureError(
			f"{source or 'fixture'}: expected a list of documents, as bench export-fixtures writes"
		)
	fixture = Fixture()
	for index, doc in enumerate(documents, 1):
		label = f"item {index}"
		if not isinstance(doc, Mapping):
			fixture.problems.append(Problem(label, "", "is not a document object: remove it"))
			continue
		doctype = doc.get("doctype")
		if doctype not in FIXTURE_DOCTYPES:
			fixture.problems.append(Problem(label, "doctype", _doctype_problem(doctype)))
			continue
		parse = parse_rule if doctype == RULE_DOCTYPE else parse_channel
		found, problems = parse(doc)
		fixture.problems += problems
		name = found.name if found else _name_of(doc)
		if name:
			where = f"{source + ' ' if source else ''}{label}"
			if (doctype, name) in fixture.seen:
				fixture.problems.append(_duplicate(doctype, name, fixture.seen[(doctype, name)], where))
				continue
			fixture.seen[(doctype, name)] = where
		if isinstance(found, Rule):
			fixture.rules.append(found)
			fixture.rule_docs[found.name] = doc
		elif found is not None:
			fixture.channels.append(found)
	return fixture


def _name_of(doc: Mapping) -> str:
	name = doc.get("rule_name") or doc.get("channel_name") or doc.get("name")
	return name.strip() if isinstance(name, str) else ""


def _doctype_problem(doctype) -> str:
	expected = " or ".join(FIXTURE_DOCTYPES)
	if not isinstance(doctype, str) or not doctype:
		return f"is missing: each document needs a doctype, {expected}"
	close = difflib.get_close_matches(doctype.strip().title(), FIXTURE_DOCTYPES, n=1, cutoff=0.8)
	if close:
		return f"{doctype!r} is not a DocType rt-studio reads: did you mean {close[0]}?"
	return f"{doctype!r} is not {expected}: keep other documents in a file of their own"


def _duplicate(doctype: str, name: str, first: str, again: str) -> Problem:
	return Problem(
		name, "name", f"a second {doctype} of this name ({again}; the first is {first}): rename one"
	)


def load_file(path: str) -> Fixture:
	"""The rules and channels of one fixture file; an empty file is a problem, not an error."""
	try:
		return load_documents(read_json(path), path)
	except EmptyFile:
		return Fixture(problems=[EMPTY_FILE])
