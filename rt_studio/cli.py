"""`rt-studio`: check rule fixtures and simulate events offline, with the engine only.

Exit codes: 0 clean; 1 problems found (check), or a rule skipped because it is invalid or
failed on the document (simulate); 2 usage or unreadable input.
"""

import argparse
import json
import sys
from datetime import datetime

from rt_studio.engine.dry_run import dry_run_problems
from rt_studio.engine.due import CATCH_UP, why_not_due
from rt_studio.engine.errors import Problem
from rt_studio.engine.evaluate import Context, Event, evaluate
from rt_studio.engine.events import (
	ACTION_METHODS,
	EVENTS,
	HOOKS,
	METHOD,
	METHOD_FOR_EVENT,
	TIME_EVENTS,
	events_for_action,
	methods_for_action,
	normalize_event,
)
from rt_studio.engine.fixtures import Fixture, FixtureError, load_file, read_json
from rt_studio.engine.matcher import RuleIndex
from rt_studio.engine.memory import DirectoryError, InMemoryDirectory
from rt_studio.engine.mutes import InMemoryMutes
from rt_studio.engine.ratelimit import InMemoryRateLimiter

USAGE_ERROR = 2
#: A file whose JSON is an empty list: readable, but checking it proves nothing (a failed export
#: or the wrong file), so it is a problem like an empty file, not "no problems".
NO_DOCUMENTS = Problem("", "", "the file holds no rules or channels: export rules into it, or leave it out")


class UsageError(Exception):
	"""Bad input: printed as one line, exit code 2."""


def check(paths: list[str], out=None) -> int:
	"""Print `FILE: NAME: field: problem` for every problem; 1 if any, else 0."""
	out = out or sys.stdout  # looked up now, not at import: redirect_stdout and capture work
	found = 0
	merged = Fixture()
	for path in paths:
		part = _load(path)
		merged.merge(part)  # adds a name already used in an earlier file to part.problems
		for problem in part.problems + _unknown_channels(part, merged) + _dry_run(part):
			print(f"{path}: {problem}", file=out)
			found += 1
	if not found:
		print(f"{len(paths)} file(s) checked: no problems", file=sys.stderr)
	return 1 if found else 0


def _load(path: str) -> Fixture:
	try:
		part = load_file(path)
	except FixtureError as e:
		raise UsageError(str(e)) from None
	if not (part.rules or part.channels or part.problems):
		part.problems.append(NO_DOCUMENTS)
	return part


def _dry_run(part: Fixture) -> list[Problem]:
	"""What running each rule once on an empty document of its DocType refuses."""
	return [
		problem
		for rule in part.rules
		for problem in dry_run_problems(rule, {"doctype": rule.document_type, "name": ""})
	]


def _unknown_channels(part: Fixture, merged: Fixture) -> list[Problem]:
	"""Audience rows naming a channel none of the files defines (when the files define any)."""
	channels = {c.name for c in merged.channels}
	return [
		Problem(rule.name, f"audience row {index}: channel", f"{row.channel!r} is not in the files checked")
		for rule in part.rules
		for index, row in enumerate(rule.audience, 1)
		if row.channel and channels and row.channel not in channels
	]


def _document(path: str, what: str) -> dict:
	try:
		data = read_json(path)
	except FixtureError as e:
		raise UsageError(str(e)) from None
	if not isinstance(data, dict):
		raise UsageError(f"{path}: the {what} must be a JSON object (one document)")
	return data


def simulate(args, out=None) -> int:
	"""Run one document event through the rules and print what would be delivered.

	EVENT is a label or a document method: a label stands for the user action and every
	document method Frappe runs for it (Method rules included); a method name such as
	`validate` for that one method. Time events are sent when a scheduler run at --now (whose
	last run was at --last-run, by default CATCH_UP earlier) would send them.
	"""
	out = out or sys.stdout
	fixture, invalid = Fixture(), []
	for path in args.rules:
		part = _load(path)
		fixture.merge(part)
		invalid += _invalid(part.problems, path)
	labels, methods = _events_of(args.event, fixture)
	doc = _document(args.doc, "document")
	before = _document(args.before, "document before the change") if args.before else None
	doctype = doc.get("doctype")
	if not doctype or not isinstance(doctype, str):
		raise UsageError(f'{args.doc}: the document has no "doctype" key')
	now = _moment(args.now, "--now") or datetime.now()
	since = _moment(args.last_run, "--last-run") or now - CATCH_UP
	directory, mutes = _site(args, fixture)
	ctx = Context(directory, InMemoryRateLimiter(), mutes=mutes, now=lambda: now)
	index = RuleIndex(fixture.rules)
	result = {"matched": [], "skipped": invalid, "deliveries": []}
	broken = bool(invalid)
	for rule in fixture.rules:
		listens = rule.event in labels or (rule.event == METHOD and rule.method in methods)
		if rule.document_type == doctype and listens and not rule.enabled:
			result["skipped"].append({"rule": rule.name, "reason": "the rule is disabled"})
	docname = str(doc.get("name") or "")
	events = [
		(rule, Event(doctype, docname, label, doc, before, args.actor))
		for label in labels
		for rule in index.match(doctype, (label,))
	]
	events += [
		(rule, Event(doctype, docname, METHOD, doc, before, args.actor, method=method))
		for method in methods
		for rule in index.match_method(doctype, method)
	]
	for rule, event in events:
		why_not = why_not_due(rule, doc, since, now) if rule.event in TIME_EVENTS else None
		if why_not:
			result["skipped"].append({"rule": rule.name, "reason": why_not})
			continue
		outcome = evaluate(rule, event, ctx)
		broken = broken or outcome.error is not None
		_report(result, rule, outcome)
	print(json.dumps(result, indent=2, default=str), file=out)
	return 1 if broken else 0


def _events_of(name: str, fixture: Fixture) -> tuple[tuple[str, ...], tuple[str, ...]]:
	"""(labels, document methods) that --event stands for. A method name must be one a site
	runs (HOOKS and each action's methods) or one that a Method rule in the files names:
	anything else (`on_sneeze`) is a typo that would otherwise match nothing, silently."""
	if normalize_event(name) == METHOD:
		raise UsageError("--event Method: name the method instead, such as --event validate")
	labels, methods = events_for_action(name), methods_for_action(name)
	if not labels and methods and methods[0] not in _known_methods(fixture):
		methods = ()
	if not labels and not methods:
		hooks = ", ".join(METHOD_FOR_EVENT.values())
		raise UsageError(
			f"--event {name!r} is not an event: use one of {', '.join(EVENTS)} "
			f"or a document method such as {hooks}, validate"
		)
	return labels, methods


def _known_methods(fixture: Fixture) -> set[str]:
	known = set(HOOKS).union(*ACTION_METHODS.values())
	return known | {rule.method for rule in fixture.rules if rule.event == METHOD and rule.method}


def _moment(text: str | None, option: str) -> datetime | None:
	if not text:
		return None
	try:
		return datetime.fromisoformat(text.strip()).replace(tzinfo=None)
	except ValueError:
		raise UsageError(f"{option} {text!r} is not a date and time: write it as 2024-05-01T09:00") from None


def _site(args, fixture: Fixture) -> tuple:
	"""The directory and the mutes that stand for the site offline."""
	directory = InMemoryDirectory(channels=fixture.channels, open_world=True)
	mutes = InMemoryMutes()
	if args.directory:
		data = _document(args.directory, "directory")
		try:
			directory = InMemoryDirectory.from_dict(data)
			mutes = InMemoryMutes.from_dict(data.get("mutes") or {})
		except ValueError as e:  # DirectoryError included
			raise UsageError(f"{args.directory}: {e}") from None
		directory.channels = {**{c.name: c for c in fixture.channels}, **directory.channels}
	return directory, mutes


def _report(result: dict, rule, outcome) -> None:
	if not outcome.fired:
		result["skipped"].append({"rule": rule.name, "reason": outcome.reason})
		return
	result["matched"].append(rule.name)
	for delivery in outcome.deliveries:
		target = {"user": delivery.user} if delivery.user else {"room": delivery.room}
		message = delivery.message
		result["deliveries"].append(
			{
				"rule": rule.name,
				"event_name": delivery.event_name,
				**target,
				"subject": message["subject"],
				"message": message["message"],
				"display": message["display"],
				"indicator": message["indicator"],
			}
		)


def _invalid(problems: list[Problem], path: str) -> list[dict]:
	"""One `skipped` entry per invalid rule (or file item), with all of its problems."""
	reasons: dict[str, list[str]] = {}
	for problem in problems:
		where = f"{problem.field}: {problem.problem}" if problem.field else problem.problem
		reasons.setdefault(problem.rule or path, []).append(where)
	return [{"rule": rule, "reason": "invalid: " + "; ".join(lines)} for rule, lines in reasons.items()]


class Parser(argparse.ArgumentParser):
	def error(self, message):
		raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
	parser = Parser(
		prog="rt-studio", description="Check RT Studio rule fixtures and simulate events offline."
	)
	commands = parser.add_subparsers(dest="command", parser_class=Parser)
	p_check = commands.add_parser("check", help="validate rule and channel fixture files")
	p_check.add_argument("files", nargs="+", metavar="FILE")
	p_sim = commands.add_parser("simulate", help="run one document event through the rules")
	p_sim.add_argument("--rules", action="append", required=True, metavar="FILE")
	p_sim.add_argument("--doc", required=True, metavar="DOC.json")
	p_sim.add_argument("--before", metavar="OLD.json")
	p_sim.add_argument("--event", required=True, metavar="EVENT")
	p_sim.add_argument("--actor", default="Administrator", metavar="USER")
	p_sim.add_argument("--directory", metavar="DIR.json")
	p_sim.add_argument("--now", metavar="ISO", help="the clock, for time events and timespan filters")
	p_sim.add_argument("--last-run", metavar="ISO", help="the scheduler's last run, for time events")
	return parser


def main(argv: list[str] | None = None) -> int:
	try:
		args = build_parser().parse_args(argv)
		if args.command == "check":
			return check(args.files)
		if args.command == "simulate":
			return simulate(args)
		raise UsageError("choose a command: check or simulate (rt-studio --help)")
	except UsageError as e:
		print(f"rt-studio: error: {e}", file=sys.stderr)
		return USAGE_ERROR


if __name__ == "__main__":
	sys.exit(main())
