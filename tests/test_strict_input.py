"""Strict, friendly input: every bad value is a problem line naming the field, never a traceback."""

import json

import pytest
from conftest import rule_dict, write_json

from rt_studio.cli import main
from rt_studio.engine import parse_channel, parse_rule


def problems_of(data) -> list[str]:
	rule, problems = parse_rule(data)
	assert (rule is None) == bool(problems)
	return [str(p) for p in problems]


def check(capsys, *paths) -> tuple[int, list[str], str]:
	code = main(["check", *map(str, paths)])
	out, err = capsys.readouterr()
	assert "Traceback" not in out + err
	return code, out.splitlines(), err


@pytest.mark.parametrize(
	"field, value, text",
	[
		("message", 42, "message: must be text, not a number"),
		("message", ["a", "b"], "message: must be text, not a list"),
		("message", {"text": "hi"}, "message: must be text, not an object"),
		("subject", True, "subject: must be text, not true or false"),
		("condition", 1, "condition: must be text, not a number"),
		("rate_limit_count", float("inf"), "rate_limit_count: inf is not a whole number"),
		("rate_limit_count", float("nan"), "rate_limit_count: nan is not a whole number"),
		("rate_limit_count", 1.5, "rate_limit_count: 1.5 is not a whole number"),
		("rate_limit_count", True, "rate_limit_count: True is not a whole number"),
		("rate_limit_count", 10**20, "rate_limit_count: 100000000000000000000 is too large: enter at most"),
		("alert_seconds", "soon", "alert_seconds: 'soon' is not a whole number"),
		("alert_seconds", -1, "alert_seconds: -1 is negative"),
		("enabled", [], "enabled: [] is not 0 or 1"),
		("enabled", 2, "enabled: 2 is not 0 or 1"),
		("exclude_actor", "maybe", "exclude_actor: 'maybe' is not 0 or 1"),
		("audience", "Owner", "audience: must be a list of audience rows, not text"),
		(
			"audience",
			[{"audience_type": "Owner"}, "Role"],
			"audience row 2: must be an object with the audience fields",
		),
	],
)
def test_values_of_the_wrong_kind_are_problems(field, value, text):
	problems = problems_of(rule_dict(rule_name="R", **{field: value}))
	assert any(p.startswith(f"R: {text}") for p in problems), problems


@pytest.mark.parametrize(
	"field, value",
	[
		("rate_limit_count", 3.0),
		("rate_limit_count", "3"),
		("enabled", "1"),
		("enabled", True),
		("enabled", 0),
	],
)
def test_values_people_write_for_numbers_and_checks_are_accepted(field, value):
	assert problems_of(rule_dict(rate_limit_seconds=60, **{field: value})) == []


@pytest.mark.parametrize(
	"condition, text",
	[
		("nope > 1", "name 'nope' is not defined"),
		("frappe.db.get_value('User', 'x')", "frappe.db is not available: conditions can use frappe.utils"),
		("frappe.session.user == 'x'", "frappe.session is not available"),
		("frappe.utils.no_such_helper(doc.date)", "frappe.utils.no_such_helper does not exist"),
		("[x for x in doc.items if y]", "name 'y' is not defined"),
		("+".join(["1"] * 100_000), "is 199,999 characters long; the limit is 10,000"),
		("+".join(["1"] * 4_000), "nests too deeply to compile"),
		("(" * 5000 + "1" + ")" * 5000, "is 10,001 characters long"),
		("(" * 300 + "1" + ")" * 300, "too many nested parentheses"),
		("9" * 5000 + " > 1", "not a Python expression"),
		("doc.status == 'a\x00'", "not a Python expression"),
	],
)
def test_conditions_that_cannot_work_on_a_site_are_problems(condition, text):
	[problem] = problems_of(rule_dict(rule_name="R", condition=condition))
	assert problem.startswith("R: condition: ")
	assert text in problem


def test_names_bound_inside_the_condition_and_frappe_helpers_are_known():
	condition = "any(r.qty > 1 for r in doc.items) and (lambda d: d)(frappe.utils.fmt_money(1)) and nowdate()"
	assert problems_of(rule_dict(condition=condition)) == []


@pytest.mark.parametrize(
	"template, text",
	[
		("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nests too deeply to compile"),
		("{{ " + "9" * 5000 + " }}", "template does not compile"),
		("x" * 100_001, "is 100,001 characters long; the limit is 100,000"),
		("{{ doc.name ", "template does not compile"),
	],
)
def test_templates_that_cannot_compile_are_problems(template, text):
	[problem] = problems_of(rule_dict(rule_name="R", message=template))
	assert problem.startswith("R: message: ")
	assert text in problem


@pytest.mark.parametrize(
	"data, text",
	[
		({"members": "a@example.com"}, "C: members: must be a list of member rows, not text"),
		({"publish_roles": "Sales User"}, "C: publish_roles: must be a list of publish role rows, not text"),
		({"publish_roles": [5]}, "C: publish_roles row 1: must be an object with the publish role fields"),
		({"enabled": []}, "C: enabled: [] is not 0 or 1"),
		({"rate_limit_count": float("inf")}, "C: rate_limit_count: inf is not a whole number"),
	],
)
def test_channel_values_of_the_wrong_kind_are_problems(data, text):
	channel, problems = parse_channel({"channel_name": "C", **data})
	assert channel is None
	assert text in str(problems[0])


def test_publish_roles_written_as_a_list_of_names_are_accepted():
	channel, problems = parse_channel(
		{"channel_name": "C", "publish_roles": ["Sales User", {"role": "Ops"}][:1]}
	)
	assert problems == []
	assert channel.publish_roles == ("Sales User",)


# ---------------------------------------------------------------- files


def test_check_reports_every_bad_document_of_a_file(capsys, tmp_path):
	path = write_json(
		tmp_path / "rules.json",
		[
			rule_dict(rule_name="Twice"),
			rule_dict(rule_name="Twice", subject="again"),
			{**rule_dict(rule_name="Typo"), "doctype": "Realtime rule"},
			{"doctype": "Custom Field", "name": "x"},
			{"rule_name": "No doctype"},
			"not a document",
			rule_dict(rule_name="Counts", rate_limit_count=float("inf"), message=7),
		],
	)
	code, lines, _err = check(capsys, path)
	assert code == 1
	assert lines == [
		f"{path}: Twice: name: a second Realtime Rule of this name ({path} item 2; the first is {path} item 1): rename one",
		f"{path}: item 3: doctype: 'Realtime rule' is not a DocType rt-studio reads: did you mean Realtime Rule?",
		f"{path}: item 4: doctype: 'Custom Field' is not Realtime Rule or Realtime Channel: keep other documents in a file of their own",
		f"{path}: item 5: doctype: is missing: each document needs a doctype, Realtime Rule or Realtime Channel",
		f"{path}: item 6: is not a document object: remove it",
		f"{path}: Counts: message: must be text, not a number",
		f"{path}: Counts: rate_limit_count: inf is not a whole number: enter a number such as 0",
	]


def test_check_reports_a_name_used_in_two_files(capsys, tmp_path):
	first = write_json(tmp_path / "a.json", [rule_dict(rule_name="Same")])
	second = write_json(tmp_path / "b.json", [rule_dict(rule_name="Same")])
	code, lines, _err = check(capsys, first, second)
	assert code == 1
	assert lines == [
		f"{second}: Same: name: a second Realtime Rule of this name ({second} item 1; the first is {first} item 1): rename one"
	]


def test_an_empty_file_is_a_problem(capsys, tmp_path):
	path = tmp_path / "empty.json"
	path.write_text("  \n", encoding="utf-8")
	code, lines, _err = check(capsys, path)
	assert code == 1
	assert lines == [f"{path}: the file is empty: export rules into it, or leave it out"]


def test_a_byte_order_mark_is_accepted(capsys, tmp_path):
	path = tmp_path / "bom.json"
	path.write_bytes(b"\xef\xbb\xbf" + json.dumps([rule_dict()]).encode())
	code, lines, err = check(capsys, path)
	assert (code, lines) == (0, [])
	assert err == "1 file(s) checked: no problems\n"


def test_json_nested_too_deeply_is_unreadable_input(capsys, tmp_path):
	path = tmp_path / "deep.json"
	path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
	code = main(["check", str(path)])
	out, err = capsys.readouterr()
	assert code == 2
	assert out == ""
	assert err == f"rt-studio: error: {path}: invalid JSON: nested too deeply to read\n"


def test_infinity_in_a_json_file_is_a_problem_line(capsys, tmp_path):
	path = tmp_path / "inf.json"
	path.write_text(
		json.dumps([rule_dict(rule_name="Inf")]).replace(
			'"indicator"', '"rate_limit_count": Infinity, "indicator"'
		)
	)
	code, lines, _err = check(capsys, path)
	assert code == 1
	assert lines == [f"{path}: Inf: rate_limit_count: inf is not a whole number: enter a number such as 0"]
