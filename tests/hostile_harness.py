"""Runs every rule of the hostile corpus through `check`, `simulate` and the engine, each
beside a good rule, and prints what happened as JSON: run in a process of its own by
test_hostile_rules.py, so its peak memory (ru_maxrss) belongs to this work alone.

Usage: python hostile_harness.py CORPUS.json OUT_DIR
"""

import contextlib
import io
import json
import resource
import sys
import time
from pathlib import Path

from rt_studio.cli import main
from rt_studio.engine import Context, Event, parse_rule
from rt_studio.engine.evaluate import evaluate
from rt_studio.engine.memory import InMemoryDirectory
from rt_studio.engine.ratelimit import InMemoryRateLimiter

#: The ToDo every rule meets: its description also drives the rules whose size depends on data.
DOCUMENT = {
	"doctype": "ToDo",
	"name": "TD-HOSTILE",
	"owner": "ana@example.com",
	"status": "Open",
	"priority": "Medium",
	"description": "1000000000000",
}


def rss_mb() -> float:
	"""The process's peak resident memory so far, in MB (Linux reports kilobytes)."""
	return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cli(*argv) -> tuple[int, str, float]:
	out, err = io.StringIO(), io.StringIO()
	start = time.perf_counter()
	with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
		code = main(list(argv))
	return code, out.getvalue(), time.perf_counter() - start


def engine(good: dict, hostile: dict) -> dict:
	"""The save path without a site: the good rule and the hostile one evaluated for one event."""
	directory = InMemoryDirectory(open_world=True)
	ctx = Context(directory, InMemoryRateLimiter())
	event = Event("ToDo", DOCUMENT["name"], "Save", DOCUMENT, dict(DOCUMENT), "ben@example.com")
	start = time.perf_counter()
	results = {}
	for data in (hostile, good):
		rule, problems = parse_rule(data)
		if rule is None:
			results[data["rule_name"]] = {"error": str(problems[0]), "delivered": []}
			continue
		outcome = evaluate(rule, event, ctx)
		results[rule.name] = {
			"error": str(outcome.error) if outcome.error else None,
			"delivered": [d.user for d in outcome.deliveries],
		}
	return {"seconds": time.perf_counter() - start, **results}


def run(corpus_path: str, out_dir: str) -> dict:
	corpus = json.loads(Path(corpus_path).read_text(encoding="utf-8"))
	good, hostile_rules = corpus[0], corpus[1:]
	folder = Path(out_dir)
	doc = folder / "todo.json"
	doc.write_text(json.dumps(DOCUMENT), encoding="utf-8")
	cli("check", corpus_path)  # warm up imports and caches before the baseline
	baseline = rss_mb()
	report = {"baseline_mb": baseline, "rules": {}}
	for index, hostile in enumerate(hostile_rules):
		rules = folder / f"rules-{index}.json"
		rules.write_text(json.dumps([good, hostile]), encoding="utf-8")
		check_code, check_out, check_seconds = cli("check", str(rules))
		sim_code, sim_out, sim_seconds = cli(
			"simulate", "--rules", str(rules), "--doc", str(doc), "--event", "Save"
		)
		report["rules"][hostile["rule_name"]] = {
			"check": {"code": check_code, "lines": check_out.splitlines(), "seconds": check_seconds},
			"simulate": {"code": sim_code, "result": json.loads(sim_out), "seconds": sim_seconds},
			"engine": engine(good, hostile),
			"peak_mb": rss_mb() - baseline,
		}
	report["peak_mb"] = rss_mb() - baseline
	return report


if __name__ == "__main__":
	print(json.dumps(run(sys.argv[1], sys.argv[2])))
