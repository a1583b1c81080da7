"""Counting what a block of code asks of the database."""

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
