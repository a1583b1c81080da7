"""A second Frappe process for the integration tests (see factories.SiteProcess).

Run as `python -m rt_studio.tests.worker SITE SITES_PATH`. Reads one JSON command per line on
stdin and answers one line starting with ANSWER on stdout. Every command starts like a new
web request (fresh transaction, empty request cache); RT Studio's per-process rule cache
survives between commands, as it does in a real worker, except in `run_job`, which runs a
background job as a freshly forked work horse would.
"""

import json
import sys
import traceback

ANSWER = "RT-ANSWER "


def new_request() -> None:
	import frappe

	frappe.db.rollback()
	frappe.local.cache = {}
	frappe.local.rt_studio_index = None
	frappe.local.rt_studio_fired = None


def rules(prefix: str = "") -> dict:
	"""The rule names this process would match against, and whether it had to rebuild."""
	import frappe

	from rt_studio import rule_cache as cache

	before = BUILDS["count"]
	index = cache.get_index()
	shared = cache._process_indexes.get(frappe.local.site)
	return {
		"rules": sorted(name for name in index.rules if name.startswith(prefix)),
		"rebuilt": BUILDS["count"] > before,
		"shared": shared is not None and shared[1] is index,
	}


def save(doctype: str, name: str, times: int = 1) -> dict:
	"""Save the document `times` times, each in its own committed request."""
	import frappe

	for _i in range(times):
		new_request()
		doc = frappe.get_doc(doctype, name)
		doc.qty = (doc.qty or 0) + 1
		doc.save()
		frappe.db.commit()
	return {"saved": times}


def run_time_rules(now: str) -> dict:
	"""One scheduler run of the time rules at the clock `now` (ISO)."""
	from datetime import datetime

	from rt_studio import schedule

	return {"sent": schedule.run_time_rules(datetime.fromisoformat(now))["sent"]}


def run_job(method: str, arguments: str = "", user: str = "Administrator", job_chunk: int = 0) -> dict:
	"""Run one job as a freshly forked RQ work horse runs it, counting its DB queries and Redis
	round trips. `arguments`: the job's keyword arguments pickled and base64-encoded (as RQ keeps
	them); `job_chunk`: the delivery job's chunk size, when not its own."""
	import base64
	import pickle
	from unittest.mock import patch

	from frappe.utils.background_jobs import get_redis_connection_without_auth

	from rt_studio.delivery import deferred
	from rt_studio.tests.counting import RoundTrips, run_as_work_horse

	kwargs = pickle.loads(base64.b64decode(arguments)) if arguments else {}
	get_redis_connection_without_auth()  # the worker opened it before forking the work horse
	counts = RoundTrips()
	counts.install()
	try:
		with counts.counting(), patch.object(deferred, "JOB_CHUNK", job_chunk or deferred.JOB_CHUNK):
			run_as_work_horse(method, kwargs, user)
	finally:
		counts.remove()
	return {"queries": counts.queries, "redis": counts.redis}


COMMANDS = {"rules": rules, "save": save, "run_time_rules": run_time_rules, "run_job": run_job}
BUILDS = {"count": 0}


def _count_builds() -> None:
	from rt_studio import rule_cache as cache

	original = cache.build_index

	def counting_build_index():
		BUILDS["count"] += 1
		return original()

	cache.build_index = counting_build_index


def main(site: str, sites_path: str) -> None:
	import frappe

	frappe.init(site, sites_path=sites_path)
	frappe.connect()
	frappe.set_user("Administrator")
	_count_builds()
	print(ANSWER + json.dumps({"ready": True}), flush=True)
	for line in sys.stdin:
		command = json.loads(line)
		if command["cmd"] == "quit":
			break
		try:
			new_request()
			answer = COMMANDS[command["cmd"]](**command.get("args", {}))
		except Exception:
			answer = {"error": traceback.format_exc()}
		print(ANSWER + json.dumps(answer, default=str), flush=True)
	frappe.db.rollback()
	frappe.destroy()


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2])
