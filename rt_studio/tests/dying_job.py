"""Runs one delivery job as a work horse does, and kills its own process with SIGKILL while a chunk
commits: after the replay log numbered the chunk's messages and the inbox rows were written, before
the COMMIT (the window where a worker killed from outside leaves numbers for messages never sent).
For the integration tests of rt_studio/delivery/delivery_jobs.py.

Run as `python -m rt_studio.tests.dying_job SITE ARGUMENTS CHUNK` from the bench's sites folder:
ARGUMENTS are the job's keyword arguments pickled and base64-encoded (as RQ keeps them), CHUNK the
number of the chunk (from 1) whose commit it dies in.
"""

import base64
import os
import pickle
import signal
import sys


def main(site: str, arguments: str, chunk: int) -> None:
	import frappe

	from rt_studio.delivery import deferred, delivery_jobs
	from rt_studio.tests.counting import run_as_work_horse

	committing = delivery_jobs.chunk_committing

	def dying(run, *args, **kwargs):
		committing(run, *args, **kwargs)
		if run.chunks_done == chunk:
			# the last step before the COMMIT: armed after the numbering and the inbox write
			frappe.db.before_commit.add(lambda: os.kill(os.getpid(), signal.SIGKILL))

	delivery_jobs.chunk_committing = dying
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	run_as_work_horse(deferred.METHOD, pickle.loads(base64.b64decode(arguments)), "Administrator")


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
