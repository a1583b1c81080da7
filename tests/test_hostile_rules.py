"""The hostile corpus: rules that would hang or exhaust a worker, each stopped by the budget.

Every rule of rt_studio/tests/hostile_rules.json (the Frappe suite saves the same rules on a
real site) goes through `rt-studio check`, `rt-studio simulate` and the engine beside a good
rule, in a process of its own: each path ends within a second, the process grows by less
than 200 MB over all of them, the hostile rule is reported with the limit it hit, and the
good rule still delivers.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

CORPUS = REPO / "rt_studio" / "tests" / "hostile_rules.json"
RULES = json.loads(CORPUS.read_text(encoding="utf-8"))
GOOD = RULES[0]["rule_name"]
HOSTILE = [rule["rule_name"] for rule in RULES[1:]]

#: What the acceptance asks of every path, for every rule.
SECONDS = 1.0
MEGABYTES = 200

#: Rules whose size comes from the document: an empty document (what check runs) shows nothing.
DEPENDS_ON_DATA = {name for name in HOSTILE if "description" in name and "printed" not in name}

#: The words every report must contain: it names the limit, or why the sandbox refused.
LIMIT_WORDS = ("MAX_", "budget of", "nest too deeply", "adds numbers only")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
	folder = tmp_path_factory.mktemp("hostile")
	env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
	done = subprocess.run(
		[sys.executable, str(REPO / "tests" / "hostile_harness.py"), str(CORPUS), str(folder)],
		capture_output=True,
		text=True,
		timeout=600,
		env=env,
		check=False,
	)
	assert done.returncode == 0, done.stderr[-3000:]
	return json.loads(done.stdout)


def test_the_corpus_is_large_enough():
	assert len(HOSTILE) >= 20
	assert len(set(HOSTILE)) == len(HOSTILE)


def test_memory_stays_under_200_mb_for_the_whole_corpus(report):
	worst = max(report["rules"].items(), key=lambda item: item[1]["peak_mb"])
	assert report["peak_mb"] < MEGABYTES, f"grew {report['peak_mb']:.0f} MB, most at {worst[0]}"


@pytest.mark.parametrize("name", HOSTILE)
def test_check_reports_the_rule_within_a_second(report, name):
	check = report["rules"][name]["check"]
	assert check["seconds"] < SECONDS
	if name in DEPENDS_ON_DATA:
		assert check["code"] == 0  # nothing in the rule itself is wrong; the document decides
		return
	assert check["code"] == 1
	assert check["lines"], "check printed nothing"
	assert all(f": {name}: " in line for line in check["lines"])
	assert any(word in line for line in check["lines"] for word in (*LIMIT_WORDS, "limit"))


@pytest.mark.parametrize("name", HOSTILE)
def test_simulate_skips_the_rule_and_delivers_the_good_one(report, name):
	simulate = report["rules"][name]["simulate"]
	assert simulate["seconds"] < SECONDS
	assert simulate["code"] == 1
	result = simulate["result"]
	assert result["matched"] == [GOOD]
	assert [d["user"] for d in result["deliveries"]] == ["ana@example.com"]
	[skipped] = result["skipped"]
	assert skipped["rule"] == name
	assert skipped["reason"].startswith(("error: ", "invalid: "))
	assert any(word in skipped["reason"] for word in (*LIMIT_WORDS, "limit"))


@pytest.mark.parametrize("name", HOSTILE)
def test_the_engine_records_an_error_and_the_good_rule_delivers(report, name):
	engine = report["rules"][name]["engine"]
	assert engine["seconds"] < SECONDS
	assert engine[name]["error"]
	assert engine[name]["delivered"] == []
	assert engine[GOOD] == {"error": None, "delivered": ["ana@example.com"]}
