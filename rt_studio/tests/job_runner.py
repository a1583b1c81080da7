"""Runs this site's queued background jobs in a real RQ work horse, for the integration tests
(see factories.run_background_jobs). Run as `python -m rt_studio.tests.job_runner SITE QUEUES
SECONDS` from the bench's sites folder.

`bench worker --burst` would run every job of every site of the bench until the queues are
empty: on a lived-in bench (the scheduler on, other sites busy) that may never happen within
a test's wait, and jobs of other apps would run in the middle of a test. This runs only RT
Studio's jobs of SITE (Frappe names every job `SITE::<id>`; RT Studio's ids name the app:
`rt-studio-delivery:...`, `scheduled_job::rt_studio....`), each the way RQ's own worker does (claimed from the queue, forked, unpickled in
the work horse, callbacks and registries as usual). A job of SITE that another worker of the
bench took first is waited for. It ends when no such job is queued or running, and exits
1 if that did not happen within SECONDS.

Its worker is registered as listening to a queue of its own, which nobody fills: it takes only
RT Studio's jobs, so a job that asks what else waits for its worker (the summary timer steps
aside for other jobs) sees nothing, however long the bench's queues are.
"""

import sys
import time


def main(site: str, queue_types: str, seconds: float) -> int:
	import frappe
	from frappe.utils.background_jobs import generate_qname, get_redis_conn
	from rq import Queue, Worker
	from rq.job import Job
	from rq.registry import StartedJobRegistry

	frappe.init(site=site, sites_path=".")
	conn = get_redis_conn()
	queues = [Queue(generate_qname(q.strip()), connection=conn) for q in queue_types.split(",")]
	prefix = f"{site}::"

	def ours(job_id: str) -> bool:
		return job_id.startswith(prefix) and ("rt_studio" in job_id or "rt-studio" in job_id)

	name = f"rt-studio-test-{time.time_ns()}"
	worker = Worker([Queue(name, connection=conn)], connection=conn, name=name)
	worker.register_birth()
	try:
		deadline = time.monotonic() + seconds
		while time.monotonic() < deadline:
			waiting = [(q, job_id) for q in queues for job_id in q.get_job_ids() if ours(job_id)]
			running = [
				job_id for q in queues for job_id in StartedJobRegistry(queue=q).get_job_ids() if ours(job_id)
			]
			if not waiting and not running:
				return 0
			for queue, job_id in waiting:
				if not queue.remove(job_id):  # another worker of the bench claimed it
					continue
				job = Job.fetch(job_id, connection=conn)
				print(f"running {job_id}", file=sys.stderr, flush=True)
				worker.execute_job(job, queue)
			time.sleep(0.1)
		print(f"RT Studio jobs of {site} still queued or running after {seconds} s", file=sys.stderr)
		return 1
	finally:
		worker.register_death()


if __name__ == "__main__":
	sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
