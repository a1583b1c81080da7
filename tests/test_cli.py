"""The `rt-studio` console script: check and simulate, exit codes and messages."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import EXAMPLES, REPO, rule_dict, write_json

from rt_studio.cli import main

RULES = str(EXAMPLES / "rules.json")
TODO = str(EXAMPLES / "todo.json")
BEFORE = str(EXAMPLES / "todo_before.json")
DIRECTORY = str(EXAMPLES / "directory.json")
README_EXAMPLE = [
	"simulate",
	"--rules",
	RULES,
	"--doc",
	TODO,
	"--before",
	BEFORE,
	"--event",
	"Save",
	"--actor",
	"ben@example.com",
	"--directory",
	DIRECTORY,
]
ANA_DELIVERY = {
	"rule": "ToDo closed",
	"event_name": "rt_studio",
	"user": "ana@example.com",
	"subject": "ToDo TD-0042 closed",
	"message": "<b>ben@example.com</b> closed: Call the customer &lt;script&gt;alert(1)&lt;/script&gt;",
	"display": "Alert",
	"indicator": "green",
}
EVENTS_HINT = (
	"use one of New, Save, Submit, Cancel, Delete, Update After Submit, Value Change, Days Before, "
	"Days After, Minutes Before, Minutes After, Method or a document method such as after_insert, "
	"on_update, on_submit, on_cancel, on_trash, on_update_after_submit, on_change, validate"
)


def run(capsys, *argv):
	code = main(list(argv))
	out, err = capsys.readouterr()
	assert "Traceback" not in out + err
	return code, out, err


def usage_error(capsys, *argv) -> str:
	"""Run a command that must fail with exit 2 and one line on stderr; return that line."""
	code, out, err = run(capsys, *argv)
	assert code == 2
	assert out == ""
	assert err.endswith("\n") and err.count("\n") == 1, err
	assert err.startswith("rt-studio: error: ")
	return err.strip()


def simulate(capsys, *argv) -> dict:
	code, out, err = run(capsys, "simulate", *argv)
	assert code == 0, err
	return json.loads(out)


# ---------------------------------------------------------------- check


def test_check_clean_file(capsys):
	code, out, err = run(capsys, "check", RULES)
	assert code == 0
	assert out == ""
	assert err == "1 file(s) checked: no problems\n"


def test_check_reports_file_name_field_problem_lines(capsys, tmp_path):
	broken = write_json(
		tmp_path / "broken.json",
		[
			rule_dict(rule_name="Good"),
			rule_dict(rule_name="Bad event", event="Saved"),
			rule_dict(rule_name="", condition="doc.x =="),
			rule_dict(rule_name="Bad row", audience=[{"audience_type": "Role"}], event="Value Change"),
			{"doctype": "Realtime Channel", "channel_name": "Other"},
			rule_dict(rule_name="Uses Ops", audience=[{"audience_type": "Channel", "channel": "Ops"}]),
		],
	)
	code, out, err = run(capsys, "check", RULES, broken)
	assert code == 1
	lines = out.splitlines()
	assert lines[0] == (
		f"{broken}: Bad event: event: 'Saved' is not an event: use one of New, Save, Submit, Cancel, "
		"Delete, Update After Submit, Value Change, Days Before, Days After, Minutes Before, Minutes After, "
		"Method"
	)
	assert lines[1] == f"{broken}: (unnamed): rule_name: is required: give the rule a unique name"
	assert lines[2].startswith(f"{broken}: (unnamed): condition: not a Python expression")
	assert lines[3] == (
		f"{broken}: Bad row: value_changed: is required for event Value Change: name the field to watch"
	)
	assert lines[4] == (
		f"{broken}: Bad row: audience row 1: role: is required for audience type Role: "
		"choose the role whose users receive it"
	)
	assert lines[5] == f"{broken}: Uses Ops: audience row 1: channel: 'Ops' is not in the files checked"
	assert len(lines) == 6
	assert all(line.startswith(f"{broken}: ") for line in lines)
	assert "no problems" not in err


def test_check_missing_file(capsys, tmp_path):
	missing = str(tmp_path / "nope.json")
	assert usage_error(capsys, "check", RULES, missing) == f"rt-studio: error: {missing}: no such file"


def test_check_invalid_json_names_file_and_line(capsys, tmp_path):
	path = tmp_path / "bad.json"
	path.write_text('[\n {"doctype": "Realtime Rule",\n  "rule_name": "x",,\n }\n]\n', encoding="utf-8")
	line = usage_error(capsys, "check", str(path))
	assert line.startswith(f"rt-studio: error: {path}: invalid JSON at line 3, column ")


@pytest.mark.parametrize(
	"data, text",
	[
		({"doctype": "Realtime Rule"}, "expected a list of documents, as bench export-fixtures writes"),
		("rules", "expected a list of documents, as bench export-fixtures writes"),
	],
)
def test_check_fixture_of_wrong_shape(capsys, tmp_path, data, text):
	path = write_json(tmp_path / "shape.json", data)
	assert usage_error(capsys, "check", path) == f"rt-studio: error: {path}: {text}"


def test_check_a_file_holding_no_documents_is_a_problem(capsys, tmp_path):
	"""`[]` (a failed export, the wrong file) is not "no problems": one line, exit 1."""
	empty = write_json(tmp_path / "none.json", [])
	code, out, err = run(capsys, "check", RULES, empty)
	assert code == 1
	assert out == f"{empty}: the file holds no rules or channels: export rules into it, or leave it out\n"
	assert "no problems" not in err


def test_simulate_with_a_rules_file_holding_no_documents_says_so(capsys, tmp_path):
	empty = write_json(tmp_path / "none.json", [])
	code, out, _err = run(capsys, "simulate", "--rules", empty, "--doc", TODO, "--event", "Save")
	assert code == 1
	assert json.loads(out)["skipped"] == [
		{
			"rule": empty,
			"reason": "invalid: the file holds no rules or channels: export rules into it, or leave it out",
		}
	]


# ---------------------------------------------------------------- simulate


def test_simulate_readme_example(capsys):
	code, out, err = run(capsys, *README_EXAMPLE)
	assert code == 0
	assert err == ""
	result = json.loads(out)
	assert list(result) == ["matched", "skipped", "deliveries"]
	assert result == {"matched": ["ToDo closed"], "skipped": [], "deliveries": [ANA_DELIVERY]}


def test_simulate_leaves_out_who_muted_the_rule(capsys, tmp_path):
	directory = json.loads((EXAMPLES / "directory.json").read_text())
	directory["mutes"] = {"ana@example.com": ["rule:ToDo closed"], "ben@example.com": ["rule:Other"]}
	argv = list(README_EXAMPLE)
	argv[argv.index(DIRECTORY)] = write_json(tmp_path / "dir.json", directory)
	assert simulate(capsys, *argv[1:]) == {
		"matched": [],
		"skipped": [{"rule": "ToDo closed", "reason": "0 of 3 recipients (1 muted)"}],
		"deliveries": [],
	}


@pytest.mark.parametrize("event", ["on_update", "save", "Value Change", "on_change"])
def test_simulate_event_as_method_name_or_label(capsys, event):
	argv = list(README_EXAMPLE)
	argv[argv.index("Save")] = event
	assert simulate(capsys, *argv[1:]) == {
		"matched": ["ToDo closed"],
		"skipped": [],
		"deliveries": [ANA_DELIVERY],
	}


def test_simulate_reports_skipped_rules_and_reasons(capsys):
	# ben inserts the ToDo allocated to himself: he is the actor, so nobody is notified
	result = simulate(
		capsys,
		"--rules",
		RULES,
		"--doc",
		TODO,
		"--event",
		"after_insert",
		"--actor",
		"ben@example.com",
		"--directory",
		DIRECTORY,
	)
	assert result == {
		"matched": [],
		"skipped": [{"rule": "New ToDo for assignee", "reason": "0 of 1 recipients"}],
		"deliveries": [],
	}
	result = simulate(
		capsys,
		"--rules",
		RULES,
		"--doc",
		TODO,
		"--event",
		"New",
		"--actor",
		"ana@example.com",
		"--directory",
		DIRECTORY,
	)
	assert result["matched"] == ["New ToDo for assignee"]
	assert [(d["user"], d["subject"], d["display"]) for d in result["deliveries"]] == [
		("ben@example.com", "New ToDo from ana@example.com", "Sticky")
	]


def test_simulate_value_change_that_did_not_happen(capsys):
	result = simulate(
		capsys, "--rules", RULES, "--doc", TODO, "--before", TODO, "--event", "Save", "--directory", DIRECTORY
	)
	assert result == {
		"matched": [],
		"skipped": [{"rule": "ToDo closed", "reason": "status did not change"}],
		"deliveries": [],
	}


def test_simulate_skips_disabled_rules(capsys, tmp_path):
	rules = write_json(tmp_path / "rules.json", [rule_dict(rule_name="Off", enabled=0)])
	result = simulate(capsys, "--rules", rules, "--doc", TODO, "--event", "Save", "--directory", DIRECTORY)
	assert result == {
		"matched": [],
		"skipped": [{"rule": "Off", "reason": "the rule is disabled"}],
		"deliveries": [],
	}


def test_simulate_channel_from_the_rules_file_and_several_rules_files(capsys, tmp_path):
	channel = {
		"doctype": "Realtime Channel",
		"channel_name": "Support",
		"members": [{"member_type": "Role", "role": "Support Team"}],
	}
	rules = write_json(
		tmp_path / "channel.json",
		[
			channel,
			rule_dict(rule_name="To support", audience=[{"audience_type": "Channel", "channel": "Support"}]),
		],
	)
	result = simulate(
		capsys,
		"--rules",
		RULES,
		"--rules",
		rules,
		"--doc",
		TODO,
		"--before",
		BEFORE,
		"--event",
		"on_update",
		"--actor",
		"ana@example.com",
		"--directory",
		DIRECTORY,
	)
	assert result["matched"] == ["To support", "ToDo closed"]
	# Support Team: ben reads ToDo; cho cannot read; dan is disabled
	assert [(d["rule"], d["user"]) for d in result["deliveries"]] == [
		("To support", "ben@example.com"),
		("ToDo closed", "ben@example.com"),
	]


def test_simulate_unknown_event(capsys):
	argv = list(README_EXAMPLE)
	argv[argv.index("Save")] = "Saved"
	assert usage_error(capsys, *argv) == f"rt-studio: error: --event 'Saved' is not an event: {EVENTS_HINT}"


def test_simulate_reports_invalid_rules_in_skipped_and_goes_on(capsys, tmp_path):
	rules = write_json(
		tmp_path / "rules.json",
		[
			rule_dict(
				rule_name="Broken condition", condition="doc.status ==", audience=[{"audience_type": "Owner"}]
			),
			rule_dict(rule_name="Pink", indicator="pink"),
			rule_dict(rule_name="Good", audience=[{"audience_type": "User", "user": "ana@example.com"}]),
		],
	)
	code, out, err = run(capsys, "simulate", "--rules", rules, "--doc", TODO, "--event", "Save")
	assert code == 1, err
	result = json.loads(out)
	assert result["matched"] == ["Good"]
	assert [d["user"] for d in result["deliveries"]] == ["ana@example.com"]
	skipped = {entry["rule"]: entry["reason"] for entry in result["skipped"]}
	assert skipped["Broken condition"].startswith("invalid: condition: not a Python expression")
	assert skipped["Pink"].startswith("invalid: indicator: 'pink' is not an indicator")


def test_simulate_exits_1_when_a_rule_fails_on_the_document(capsys, tmp_path):
	rules = write_json(
		tmp_path / "rules.json",
		[
			rule_dict(
				rule_name="Runaway",
				message="{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
			),
			rule_dict(rule_name="Good", audience=[{"audience_type": "User", "user": "ana@example.com"}]),
		],
	)
	code, out, _err = run(capsys, "simulate", "--rules", rules, "--doc", TODO, "--event", "Save")
	assert code == 1
	result = json.loads(out)
	assert result["matched"] == ["Good"]
	[skipped] = result["skipped"]
	assert skipped["rule"] == "Runaway"
	# stopped by whichever limit it meets first: the loop count, or on a busy machine its 100 ms
	assert skipped["reason"].startswith("error: Runaway: message: stopped: ")
	assert (
		"loops ran more than 100,000 times" in skipped["reason"]
		or "longer than its budget" in skipped["reason"]
	)


@pytest.mark.parametrize(
	"directory, text",
	[
		(["ana@example.com"], "the directory must be a JSON object (one document)"),
		({"users": ["ana@example.com"]}, '"users" must be an object keyed by user id'),
		(
			{"users": {"ana@example.com": "admin"}},
			'users["ana@example.com"] must be an object with roles, enabled, can_read',
		),
		(
			{"users": {"ana@example.com": {"roles": "Support Team"}}},
			'users["ana@example.com"].roles must be a list',
		),
		(
			{"users": {"ana@example.com": {"can_read": "ToDo"}}},
			'users["ana@example.com"].can_read must be a list',
		),
		(
			{"users": {"ana@example.com": {"cannot_read_fields": ["priority"]}}},
			'users["ana@example.com"].cannot_read_fields must be an object like {"ToDo": ["priority"]}',
		),
		({"channels": 5}, '"channels" must be a list of channel documents or an object keyed by name'),
		(
			{"channels": [{"members": []}]},
			"channel (unnamed): channel_name: is required: give the channel a unique name",
		),
		({"follows": ["x"]}, '"follows" must be an object like {"ToDo/TD-1": ["user"]}'),
		(
			{"mutes": ["rule:x"]},
			'"mutes" must be an object like {"a@x.com": ["rule:Closed ToDo", "channel:ops"]}',
		),
		({"mutes": {"a@x.com": ["x"]}}, 'mutes["a@x.com"]: \'x\' must be "rule:NAME" or "channel:NAME"'),
	],
)
def test_simulate_directory_of_wrong_shape(capsys, tmp_path, directory, text):
	path = write_json(tmp_path / "dir.json", directory)
	argv = list(README_EXAMPLE)
	argv[argv.index(DIRECTORY)] = path
	assert usage_error(capsys, *argv) == f"rt-studio: error: {path}: {text}"


def test_simulate_document_of_wrong_shape(capsys, tmp_path):
	listed = write_json(tmp_path / "list.json", [{"doctype": "ToDo"}])
	line = usage_error(capsys, "simulate", "--rules", RULES, "--doc", listed, "--event", "Save")
	assert line == f"rt-studio: error: {listed}: the document must be a JSON object (one document)"
	nameless = write_json(tmp_path / "nodoctype.json", {"name": "TD-1"})
	line = usage_error(capsys, "simulate", "--rules", RULES, "--doc", nameless, "--event", "Save")
	assert line == f'rt-studio: error: {nameless}: the document has no "doctype" key'
	missing = str(tmp_path / "missing.json")
	line = usage_error(
		capsys, "simulate", "--rules", RULES, "--doc", TODO, "--before", missing, "--event", "Save"
	)
	assert line == f"rt-studio: error: {missing}: no such file"


@pytest.mark.parametrize(
	"argv, text",
	[
		([], "choose a command: check or simulate (rt-studio --help)"),
		(["check"], "the following arguments are required: FILE"),
		(["simulate", "--rules", RULES], "the following arguments are required: --doc, --event"),
		(["bogus"], "argument command: invalid choice: 'bogus'"),
		(["check", RULES, "--strict"], "unrecognized arguments: --strict"),
	],
)
def test_usage_errors(capsys, argv, text):
	assert usage_error(capsys, *argv).startswith(f"rt-studio: error: {text}")


def test_installed_console_script(tmp_path):
	script = shutil.which("rt-studio", path=os.path.dirname(sys.executable)) or shutil.which("rt-studio")
	command = [script] if script else [sys.executable, "-m", "rt_studio.cli"]

	def console(*argv):
		return subprocess.run(
			[*command, *argv], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
		)

	done = console(*README_EXAMPLE)
	assert done.returncode == 0, done.stderr
	assert json.loads(done.stdout) == {
		"matched": ["ToDo closed"],
		"skipped": [],
		"deliveries": [ANA_DELIVERY],
	}
	missing = str(tmp_path / "missing.json")
	failed = console("check", missing)
	assert failed.returncode == 2
	assert failed.stdout == ""
	assert failed.stderr == f"rt-studio: error: {missing}: no such file\n"


def test_simulate_without_directory_treats_named_users_as_able_to_read(capsys):
	result = simulate(
		capsys,
		"--rules",
		RULES,
		"--doc",
		str(EXAMPLES / "todo.json"),
		"--event",
		"New",
	)
	assert result["matched"] == ["New ToDo for assignee"]
	assert [d["user"] for d in result["deliveries"]] == ["ben@example.com"]


# ---------------------------------------------------------------- Filters, time events and Method offline


@pytest.fixture
def section_8_rules(tmp_path):
	to_ben = [{"audience_type": "User", "user": "ben@example.com"}]
	rules = [
		rule_dict(
			rule_name="Due soon",
			event="Days Before",
			date_changed="date",
			days_in_advance=1,
			audience=to_ben,
			subject="{{ doc.name }} is due tomorrow",
		),
		rule_dict(
			rule_name="High and closed",
			event="Save",
			condition_type="Filters",
			filters=[["ToDo", "priority", "=", "high"], ["ToDo", "status", "in", "Open,Closed"]],
			audience=to_ben,
		),
		rule_dict(
			rule_name="Low only",
			event="Save",
			condition_type="Filters",
			filters='[["ToDo","priority","=","Low",false]]',
			audience=to_ben,
		),
		rule_dict(rule_name="On validate", event="Method", method="validate", audience=to_ben),
	]
	return write_json(tmp_path / "rules.json", rules)


def test_check_accepts_filters_time_events_and_methods(capsys, section_8_rules):
	code, _out, err = run(capsys, "check", section_8_rules)
	assert code == 0 and "no problems" in err


def test_simulate_filters_name_the_failing_filter(capsys, section_8_rules):
	result = simulate(capsys, "--rules", section_8_rules, "--doc", TODO, "--event", "Save")
	assert "High and closed" in result["matched"]
	assert {"rule": "Low only", "reason": "filter 1 (priority = Low) failed: priority is 'High'"} in result[
		"skipped"
	]


def test_simulate_a_save_runs_method_rules_of_the_methods_a_save_runs(capsys, section_8_rules):
	result = simulate(capsys, "--rules", section_8_rules, "--doc", TODO, "--event", "Save")
	assert "On validate" in result["matched"]
	only = simulate(capsys, "--rules", section_8_rules, "--doc", TODO, "--event", "validate")
	assert only["matched"] == ["On validate"]
	assert (
		simulate(capsys, "--rules", section_8_rules, "--doc", TODO, "--event", "on_cancel")["matched"] == []
	)


def test_simulate_time_events_at_the_given_clock(capsys, section_8_rules, tmp_path):
	doc = write_json(tmp_path / "todo.json", {"doctype": "ToDo", "name": "TD-7", "date": "2024-05-10"})
	argv = ["--rules", section_8_rules, "--doc", doc, "--event", "Days Before"]
	due = simulate(capsys, *argv, "--now", "2024-05-09T00:02")
	assert due["matched"] == ["Due soon"]
	assert due["deliveries"][0]["subject"] == "TD-7 is due tomorrow"
	early = simulate(capsys, *argv, "--now", "2024-05-08T23:59")
	assert early["skipped"] == [{"rule": "Due soon", "reason": "not due yet: due 2024-05-09 00:00"}]
	sent = simulate(capsys, *argv, "--now", "2024-05-09T09:00", "--last-run", "2024-05-09T08:55")
	assert sent["skipped"] == [
		{"rule": "Due soon", "reason": "due 2024-05-09 00:00, to be sent by a run before 2024-05-09 08:55"}
	]


@pytest.mark.parametrize(
	"extra, text",
	[
		(["--event", "Method"], "--event Method: name the method instead, such as --event validate"),
		(
			["--event", "Save", "--now", "tomorrow"],
			"--now 'tomorrow' is not a date and time: write it as 2024-05-01T09:00",
		),
	],
)
def test_simulate_usage_errors_of_the_new_options(capsys, section_8_rules, extra, text):
	assert usage_error(capsys, "simulate", "--rules", section_8_rules, "--doc", TODO, *extra) == (
		f"rt-studio: error: {text}"
	)


def test_simulate_unknown_method_is_a_usage_error(capsys, section_8_rules):
	"""A method no site runs and no rule names is a typo: exit 2 naming it, not an empty result."""
	line = usage_error(capsys, "simulate", "--rules", section_8_rules, "--doc", TODO, "--event", "on_sneeze")
	assert line == f"rt-studio: error: --event 'on_sneeze' is not an event: {EVENTS_HINT}"


def test_simulate_method_named_by_a_rule_is_an_event(capsys, tmp_path):
	"""An app's own method (doc_events in its hooks) is simulated when a Method rule names it."""
	rules = write_json(
		tmp_path / "rules.json",
		[
			rule_dict(
				rule_name="On sneeze",
				event="Method",
				method="on_sneeze",
				audience=[{"audience_type": "User", "user": "ben@example.com"}],
			)
		],
	)
	result = simulate(
		capsys, "--rules", rules, "--doc", TODO, "--event", "on_sneeze", "--directory", DIRECTORY
	)
	assert result["matched"] == ["On sneeze"]
