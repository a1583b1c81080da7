"""Preview of a rule whose audience is Everyone, on a site of 50 and of 5,000 users (never asserted).

Run it with the bench's Python from the bench's `sites` folder:

    cd ~/.rt-studio/bench/sites && PYTHONPATH=/work/main ../env/bin/python /work/main/benchmarks/preview.py --site SITE

The users are inserted straight into the User table (`rt_studio.tests.crowd`: enabled System
Users with no role, so most verdicts are "no read permission"), the rule and its ToDo as
documents; everything is committed so the preview sees it, and deleted at the end, also when the
run fails. For each size, cold (nobody's roles or User Permissions cached) and warm, it prints
what `rt_studio.api.preview` (the desk's Preview) costs inside the web request: milliseconds,
DB queries, Redis round trips, the size of its JSON answer and how many recipients it returns,
and each as a ratio of the 50-user site.
"""

import argparse
import json
import os
import time

import frappe

from rt_studio.tests.counting import RoundTrips
from rt_studio.tests.crowd import Member, crowd_names, forget_cached, insert_crowd, remove_crowd

RULE = "rt-bench-preview-everyone"
#: Users on the site: a few (the baseline) and a large site.
SIZES = (50, 5000)


def measure(rule: str, todo: str, counts: RoundTrips) -> dict:
	from rt_studio.desk.authoring import preview

	frappe.local.cache = {}
	counts.queries = counts.redis = 0
	counts.on = True
	started = time.perf_counter()
	result = preview(rule, todo)
	elapsed = time.perf_counter() - started
	counts.on = False
	return {
		"ms": elapsed * 1000,
		"queries": counts.queries,
		"redis": counts.redis,
		"bytes": len(json.dumps(result, default=str)),
		"returned": len(result["recipients"]),
		"total": result["total"],
		"counts": result["counts"],
	}


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--sites-path", default=os.getcwd())
	args = parser.parse_args()
	frappe.init(site=args.site, sites_path=args.sites_path)
	frappe.connect()
	frappe.set_user("Administrator")
	users: list[str] = []
	todo = None
	counts = RoundTrips()
	rows = []
	try:
		todo = frappe.get_doc({"doctype": "ToDo", "description": "Preview benchmark"}).insert().name
		frappe.get_doc(
			{
				"doctype": "Realtime Rule",
				"rule_name": RULE,
				"enabled": 0,
				"document_type": "ToDo",
				"event": "Save",
				"audience": [{"audience_type": "Everyone"}],
				"exclude_actor": 0,
				"subject": "{{ doc.description }}",
				"message": "{{ doc.status }}: {{ doc.description }}",
				"display": "Alert",
			}
		).insert()
		frappe.db.commit()
		counts.install()
		for size in SIZES:
			added = insert_crowd([Member(name) for name in crowd_names(size - len(users))])
			users += added
			frappe.db.commit()
			measure(RULE, todo, counts)  # site-wide caches (metadata, settings) warm, as on a live site
			for label in ("cold", "warm"):
				if label == "cold":
					forget_cached(users)
				rows.append({"size": size, "label": label, **measure(RULE, todo, counts)})
	finally:
		counts.remove()
		frappe.db.rollback()
		remove_crowd(users)
		if frappe.db.exists("Realtime Rule", RULE):
			frappe.delete_doc("Realtime Rule", RULE, force=True)
		if todo:
			frappe.delete_doc("ToDo", todo, force=True)
		frappe.db.commit()
		frappe.destroy()
	base = {row["label"]: row for row in rows if row["size"] == SIZES[0]}
	print("users  run   ms       queries  redis  bytes    returned / total  vs 50 users (ms, queries, bytes)")
	for row in rows:
		b = base[row["label"]]
		print(
			f"{row['size']:>5,}  {row['label']:<4}  {row['ms']:>7.1f}  {row['queries']:>7}  {row['redis']:>5}"
			f"  {row['bytes']:>7,}  {row['returned']:>4} / {row['total']:<6,}"
			f"    {row['ms'] / b['ms']:.1f}x, {row['queries'] / max(b['queries'], 1):.1f}x,"
			f" {row['bytes'] / b['bytes']:.1f}x   {row['counts']}"
		)


if __name__ == "__main__":
	main()
