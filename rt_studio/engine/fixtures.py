"""Reading fixture files: rules and channels as `bench export-fixtures` writes them."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rt_studio.engine.errors import Problem
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE, Channel, Rule, parse_channel, parse_rule


class FixtureError(ValueError):
	"""A fixture file that cannot be read as a list of documents."""


@dataclass
class Fixture:
	rules: list[Rule] = field(default_factory=list)
	channels: list[Channel] = field(default_factory=list)
	problems: list[Problem] = field(default_factory=list)
	#: Rule documents as read, by name (disabled ones included).
	rule_docs: dict[str, Mapping] = field(default_factory=dict)


def read_json(path: str):
	"""The parsed JSON of a file; FixtureError names the file and the line on failure."""
	try:
		with open(path, encoding="utf-8") as f:
			text = f.read()
	except FileNotFoundError:
		raise FixtureError(f"{path}: no such file") from None
	except (OSError, UnicodeDecodeError) as e:
		raise FixtureError(f"{path}: cannot read: {e}") from None
	try:
		return json.loads(text)
	except json.JSONDecodeError as e:
		raise FixtureError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def load_documents(documents, source: str = "") -> Fixture:
	"""Rules and channels from a list of fixture documents (other DocTypes are ignored)."""
	if not isinstance(documents, list):
		raise FixtureError(
			f"{source or 'fixture'}: expected a list of documents, as bench export-fixtures writes"
		)
	fixture = Fixture()
	for index, doc in enumerate(documents, 1):
		if not isinstance(doc, Mapping):
			raise FixtureError(f"{source or 'fixture'}: item {index} is not a document object")
		doctype = doc.get("doctype")
		if doctype == RULE_DOCTYPE:
			rule, problems = parse_rule(doc)
			fixture.problems += problems
			if rule:
				fixture.rules.append(rule)
				fixture.rule_docs[rule.name] = doc
		elif doctype == CHANNEL_DOCTYPE:
			channel, problems = parse_channel(doc)
			fixture.problems += problems
			if channel:
				fixture.channels.append(channel)
	return fixture


def load_files(paths: Iterable[str]) -> Fixture:
	"""All rules and channels of several fixture files, in order."""
	merged = Fixture()
	for path in paths:
		part = load_documents(read_json(path), path)
		merged.rules += part.rules
		merged.channels += part.channels
		merged.problems += part.problems
		merged.rule_docs.update(part.rule_docs)
	return merged
