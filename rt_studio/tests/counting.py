"""Counting what a block of code asks of the database and of Redis."""

import pickle
import time
from contextlib import contextmanager

import frappe


class QueryCounter:
	"""Counts SQL statements run inside the block, and the rows they touched (as Frappe's
	`assertRowsRead` counts them)."""

	def __enter__(self):
		self.count = self.rows = 0
		self.queries = []
		self._sql = frappe.db.__class__.sql

		def counting(db, *args, **kwargs):
			self.count += 1
			self.queries.append(str(args[0])[:200])
			result = self._sql(db, *args, **kwargs)
			self.rows += max(db._cursor.rowcount or 0, 0)
			return result

		frappe.db.__class__.sql = counting
		return self

	def __exit__(self, *exc):
		frappe.db.__class__.sql = self._sql


class QueriesIn:
	"""Counts SQL statements run inside one function of a module."""

	def __init__(self, module, name: str):
		self.module, self.name, self.count = module, name, 0

	def __enter__(self):
		original = getattr(self.module, self.name)
		sql = frappe.db.__class__.sql

		def counting_sql(db, *args, **kwargs):
			self.count += 1
			return sql(db, *args, **kwargs)

		def wrapped(*args, **kwargs):
			frappe.db.__class__.sql = counting_sql
			try:
				return original(*args, **kwargs)
			finally:
				frappe.db.__class__.sql = sql

		self._original = original
		setattr(self.module, self.name, wrapped)
		return self

	def __exit__(self, *exc):
		setattr(self.module, self.name, self._original)


class RoundTrips:
	"""DB queries and Redis round trips of this process (a pipeline counts once), counted while `on`.

	Patched on the classes, so they also count inside a new Frappe context (a job's `execute_job`),
	and for every Redis server (cache and queue).
	"""

	def __init__(self):
		self.on = False
		self.queries = self.redis = 0

	def install(self) -> None:
		import redis.client

		db_class = type(frappe.local.db)
		self._patched = [
			(db_class, "sql", db_class.sql),
			(redis.client.Redis, "execute_command", redis.client.Redis.execute_command),
			(redis.client.Pipeline, "execute", redis.client.Pipeline.execute),
		]
		counts = self

		def sql(db, *args, _original=db_class.sql, **kwargs):
			if counts.on:
				counts.queries += 1
			return _original(db, *args, **kwargs)

		def command(client, *args, _original=redis.client.Redis.execute_command, **kwargs):
			if counts.on and not isinstance(client, redis.client.Pipeline):
				counts.redis += 1
			return _original(client, *args, **kwargs)

		def execute(pipe, *args, _original=redis.client.Pipeline.execute, **kwargs):
			if counts.on and pipe.command_stack:  # an empty pipeline sends nothing
				counts.redis += 1
			return _original(pipe, *args, **kwargs)

		db_class.sql, redis.client.Redis.execute_command, redis.client.Pipeline.execute = (
			sql,
			command,
			execute,
		)

	def remove(self) -> None:
		for owner, name, original in getattr(self, "_patched", ()):
			setattr(owner, name, original)
		self._patched = []

	@contextmanager
	def counting(self):
		self.queries = self.redis = 0
		self.on = True
		try:
			yield self
		finally:
			self.on = False


def run_as_work_horse(method: str, arguments: dict, user: str) -> float:
	"""Run a job as an RQ work horse does: its arguments through pickle, then Frappe's own
	`execute_job` (init, connect, the method, commit, destroy) with RT Studio's and Frappe's
	process caches empty, as in a freshly forked process. Its wall time. This process's Frappe
	context is set up again afterwards. Open the queue's connection first
	(`get_redis_connection_without_auth`), as the worker did before forking, to leave its
	first PING out of what you count."""
	import frappe.utils.caching
	from frappe.utils.background_jobs import execute_job

	from rt_studio import rule_cache as cache

	site, sites_path = frappe.local.site, frappe.local.sites_path
	arguments = pickle.loads(pickle.dumps(arguments))  # what the worker unpickles
	cache._process_indexes.clear()
	cache._compiled.clear()
	frappe.utils.caching._SITE_CACHE.clear()
	frappe.destroy()
	try:
		start = time.perf_counter()
		execute_job(site, method, None, method, arguments, user)
		return time.perf_counter() - start
	finally:
		frappe.init(site=site, sites_path=sites_path, force=True)
		frappe.connect()
