"""The dotted paths of the delivery job before rt_studio/delivery/: a job queued by an earlier
version (`rt_studio.deferred.deliver`, its failure callback `rt_studio.deferred.job_failed`)
still runs after an update. The job lives in rt_studio/delivery/deferred.py.
"""

from rt_studio.delivery.deferred import deliver, job_failed

__all__ = ["deliver", "job_failed"]
