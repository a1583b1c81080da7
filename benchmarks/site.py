"""RT Studio on a live Frappe v15 site: timings printed as numbers and ratios (never asserted).

Run it with the bench's Python from the bench's `sites` folder:

    cd frappe-bench/sites && ../env/bin/python ../apps/rt_studio/benchmarks/site.py --site SITE

It needs MariaDB and both Redis servers up; the web and socket.io servers are not used, nor the
workers (but `--worker`). It stops by itself in a few minutes and measures:

1. (`per_save.py`) one ToDo save (load, change, save, commit) as an ordinary System User, with
   no rules, 50 rules on other DocTypes, 10 Save rules whose condition is false, 10 whose
   condition is true (an Alert to `allocated_to`), and 10 equivalent Frappe Notifications,
   interleaved round by round: medians, overheads and the ratio of Notification's overhead to
   the rules'; what a false rule costs against a dict lookup plus its condition; and where the
   true case's microseconds go, stage by stage (`--per-save-rounds`, `--per-save-ops`,
   `--only-per-save`);
2. (`large_audiences.py`) one rule on ToDo New whose audience is a role of 1,000 and of 10,000
   users, cold and warm: the save, the delivery job and commit-to-last-delivery (`--only-large`;
   `--worker` adds a run through the bench's RQ worker);
3. the bell display for 1,000 recipients: Frappe's Notification Log inserted per document (what
   RT Studio did before rt_studio/delivery/bell.py) against the bulk write, time and queries each
   (`--only-bell`). In one transaction that is rolled back;
4. the inbox write for 1,000 recipients (rt_studio/delivery/inbox.py `keep`: what a delivery
   job's chunk of 1,000 adds before its commit), time and queries, against the budget of the job
   it runs in: RQ's timeout of the "short" queue that delivery jobs use (`--only-inbox`; rolled
   back).

Parts 1 and 2 commit (a commit is part of a save's cost, and a job only sees committed data) and
delete everything they made when they end, also after an error.
"""

import argparse
import os
import sys
import time

import frappe
import large_audiences
import per_save

from rt_studio.tests.crowd import Member, forget_cached, insert_crowd

OWNER = "rt.bench.owner@example.com"


def as_admin():
	frappe.set_user("Administrator")


def now_str():
	return frappe.utils.now()


# --------------------------------------------------------------------------- part 3: the bell

#: Recipients of the bell case (issue 16: "bell display for 1,000 recipients").
BELL_RECIPIENTS = 1000


def per_document_bell(user: str, message: dict) -> None:
	"""The bell as RT Studio made it before the bulk path: one Frappe insert per recipient."""
	frappe.get_doc(
		{
			"doctype": "Notification Log",
			"subject": message.get("subject") or message.get("message"),
			"email_content": message.get("message"),
			"for_user": user,
			"type": "Alert",
			"document_type": message.get("doctype"),
			"document_name": message.get("docname"),
			"from_user": message.get("actor"),
		}
	).insert(ignore_permissions=True)


def bell_case() -> None:
	"""Part 3: Notification Logs for BELL_RECIPIENTS users, per document and in bulk."""
	from rt_studio.delivery import bell
	from rt_studio.tests.counting import QueryCounter

	print(f"\n3. Bell display (Notification Log) for {BELL_RECIPIENTS:,} recipients")
	as_admin()
	users = insert_crowd([Member(f"rt.bench.bell.{i:05d}@example.com") for i in range(BELL_RECIPIENTS)])
	message = {
		"subject": "rt bench <b>bell</b>",
		"message": "qty changed",
		"display": "Notification Log",
		"doctype": "ToDo",
		"docname": "rt-bench-bell",
		"actor": "Administrator",
	}
	try:
		with QueryCounter() as old:
			started = time.perf_counter()
			for user in users:
				per_document_bell(user, message)
			old_s = time.perf_counter() - started
		with QueryCounter() as bulk:
			started = time.perf_counter()
			bell.write([(user, {**message, "docname": "rt-bench-bell-bulk"}) for user in users])
			bulk_s = time.perf_counter() - started
		made = {
			name: frappe.db.count("Notification Log", {"document_name": name})
			for name in ("rt-bench-bell", "rt-bench-bell-bulk")
		}
		print(
			f"   per document: {old_s * 1000:.0f} ms, {old.count} queries ({old.count / len(users):.1f} per"
			f" recipient); bulk: {bulk_s * 1000:.1f} ms, {bulk.count} queries; time ratio"
			f" {old_s / bulk_s:.0f}x, query ratio {old.count / max(bulk.count, 1):.0f}x; rows made {made}"
		)
	finally:
		frappe.db.rollback()
		forget_cached(users)


# --------------------------------------------------------------------------- part 4: the inbox

#: Recipients of the inbox case (issue 16: "inbox write for 1,000 recipients in one job").
INBOX_RECIPIENTS = 1000


def inbox_case() -> None:
	"""Part 4: inbox rows for INBOX_RECIPIENTS users, as one delivery chunk writes them."""
	from frappe.utils.background_jobs import get_queues_timeout

	from rt_studio.delivery import inbox
	from rt_studio.tests.counting import QueryCounter

	print(f"\n4. Inbox write for {INBOX_RECIPIENTS:,} recipients")
	as_admin()
	message = {
		"rule": "rt-bench-inbox",
		"channel": None,
		"subject": "rt bench <b>inbox</b>",
		"message": "qty changed to 7",
		"display": "Alert",
		"doctype": "ToDo",
		"docname": "rt-bench-inbox",
		"event": "Save",
		"fields": {},
		"actor": "Administrator",
		"sent_at": now_str(),
	}
	entries = [
		(f"rt.bench.inbox.{i:05d}@example.com", {**message, "seq": 10**12 + i})
		for i in range(INBOX_RECIPIENTS)
	]
	try:
		with QueryCounter() as counted:
			started = time.perf_counter()
			inbox.keep(entries)
			took = time.perf_counter() - started
		made = frappe.db.count(inbox.DOCTYPE, {"reference_name": "rt-bench-inbox"})
		budget = get_queues_timeout()["short"]
		print(
			f"   {took * 1000:.1f} ms, {counted.count} queries, {made:,} rows; {took / budget * 100:.3f}% of a"
			f" delivery job's budget (the short queue's timeout, {budget} s); {took / len(entries) * 1e6:.0f} us"
			f" per recipient"
		)
	finally:
		frappe.db.rollback()


# --------------------------------------------------------------------------- main


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--sites-path", default=os.getcwd())
	parser.add_argument(
		"--per-save-rounds", type=int, default=6, help="part 1: interleaved rounds (default 6)"
	)
	parser.add_argument(
		"--per-save-ops",
		type=int,
		default=30,
		help="part 1: measured saves per variant and round (default 30)",
	)
	parser.add_argument("--only-per-save", action="store_true", help="run part 1 (one save's cost) only")
	parser.add_argument("--only-large", action="store_true", help="run part 2 (large audiences) only")
	parser.add_argument("--only-bell", action="store_true", help="run part 3 (the bell display) only")
	parser.add_argument("--only-inbox", action="store_true", help="run part 4 (the inbox write) only")
	parser.add_argument(
		"--worker", action="store_true", help="part 2 once more through the bench's RQ worker"
	)
	args = parser.parse_args()

	frappe.init(site=args.site, sites_path=args.sites_path)
	frappe.connect()
	started = time.perf_counter()
	load_at_start = os.getloadavg()
	print(
		f"RT Studio site benchmark: site {args.site}, Frappe {frappe.__version__},"
		f" Python {sys.version.split()[0]}, flags in_test={bool(frappe.flags.in_test)}"
		f" in_import={bool(frappe.flags.in_import)} mute_emails={bool(frappe.flags.mute_emails)}"
	)
	only = [name for name in ("per_save", "large", "bell", "inbox") if getattr(args, f"only_{name}")]
	try:
		if not only or "per_save" in only:
			per_save.run(args)
		if not only or "large" in only:
			large_audiences.run(args, OWNER)
		if not only or "bell" in only:
			bell_case()
		if not only or "inbox" in only:
			inbox_case()
	finally:
		print(
			f"Total time {time.perf_counter() - started:.1f} s; load average at start"
			f" {load_at_start[0]:.2f}, at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
		)
		frappe.destroy()


if __name__ == "__main__":
	main()
