"""On the site: Filters conditions, Method events, child-row Value Change, and what saving checks."""

import json

import frappe

from rt_studio import api
from rt_studio.tests.factories import (
	ORDER,
	ORDER_ITEM,
	RULE_PREFIX,
	TESTER,
	RTTestCase,
	make_rule,
	make_users,
	new_order,
	unique,
)


class TestNoCode(RTTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.reader = cls.enterClassContext(make_users({"reader": {"roles": [TESTER]}}))["reader"]

	def rule(self, **fields):
		if isinstance(fields.get("filters"), list):
			fields["filters"] = json.dumps(fields["filters"])  # a JSON field holds text
		return self.enterContext(make_rule([{"audience_type": "User", "user": self.reader}], **fields))

	def invalid(self, **fields) -> str:
		"""The message a rule with these fields fails to save with."""
		with self.assertRaises(frappe.ValidationError) as caught:
			self.rule(**fields)
		return str(caught.exception)

	# ------------------------------------------------------------ Filters

	def test_filters_compare_as_the_list_view_does(self):
		rule = self.rule(
			condition_type="Filters",
			# qty is an Int field: 10 > 9 as numbers (as text "10" < "9"); status compared without case
			filters=[[ORDER, "qty", ">", "9"], [ORDER, "status", "in", ["open", "approved"]]],
		)
		doc = new_order(qty=10, status="Draft").insert()
		self.assertIn(doc.name, frappe.get_all(ORDER, filters=[[ORDER, "qty", ">", "9"]], pluck="name"))
		with self.action() as save:
			doc.status = "Open"
			doc.save()
		self.assertEqual(save.rules(), {rule.name: 1})
		with self.action() as small:
			doc.qty = 5
			doc.save()
		self.assertEqual(small.rules(), {})
		entry = frappe.local.rt_studio_trace[-1]  # written to Redis when the transaction ends
		self.assertEqual((entry["rule"], entry["fired"]), (rule.name, False))
		self.assertEqual(entry["reason"], "filter 1 (qty > 9) failed: qty is '5'")

	def test_the_rule_fires_for_exactly_the_documents_the_list_view_shows(self):
		filters = [
			[ORDER, "title", "like", "%bike%"],
			[ORDER, "remarks", "is", "not set"],
			[ORDER_ITEM, "qty", ">=", 3],
		]
		self.rule(event="New", condition_type="Filters", filters=filters)
		fired = set()
		for title, remarks, qtys in [
			("Red Bike", None, [1, 4]),
			("BIKE rack", None, [3]),
			("Bike", "urgent", [5]),
			("Car", None, [9]),
			("Mountain bike", "", []),
			("bike", None, [1, 2]),
		]:
			with self.action() as insert:
				doc = new_order(title=title, remarks=remarks, items=[{"qty": q} for q in qtys]).insert()
			if insert.rules():
				fired.add(doc.name)
		shown = set(frappe.get_all(ORDER, filters=filters, pluck="name", distinct=True))
		self.assertEqual(len(fired), 2)
		self.assertEqual(fired, shown)

	def test_preview_shows_which_filter_failed(self):
		rule = self.rule(
			condition_type="Filters", filters=[[ORDER, "qty", "<", 100], [ORDER, "status", "=", "Closed"]]
		)
		doc = new_order(qty=3).insert()
		result = api.preview(rule.name, doc.name)
		self.assertFalse(result["fired"])
		self.assertIs(result["condition"], False)
		self.assertEqual(result["reason"], "filter 2 (status = Closed) failed: status is 'Draft'")

	def test_filters_must_name_fields_of_the_doctype_or_its_child_tables(self):
		self.assertIn(
			"filter 1: RT Test Order has no field colour: pick the field again",
			self.invalid(condition_type="Filters", filters=[[ORDER, "colour", "=", "red"]]),
		)
		self.assertIn(
			"filter 1: ToDo is neither RT Test Order nor one of its child tables",
			self.invalid(condition_type="Filters", filters=[["ToDo", "status", "=", "Open"]]),
		)
		self.assertIn(
			"filter 1: &apos;equals&apos; is not an operator",
			self.invalid(condition_type="Filters", filters=[[ORDER, "qty", "equals", 1]]),
		)

	def test_a_file_written_by_hand_with_filters_as_a_list_imports(self):
		name = unique(RULE_PREFIX + "import")
		rule = {
			"doctype": "Realtime Rule",
			"rule_name": name,
			"document_type": ORDER,
			"event": "Save",
			"condition_type": "Filters",
			"filters": [[ORDER, "qty", ">", 1]],
			"audience": [{"audience_type": "Owner"}],
		}
		self.assertEqual(api.import_rules(json.dumps([rule])), {"imported": [name]})
		self.assertEqual(json.loads(frappe.db.get_value("Realtime Rule", name, "filters")), rule["filters"])
		[exported] = api.export_rules([name])
		self.assertEqual(json.loads(exported["filters"]), rule["filters"])

	# ------------------------------------------------------------ Method

	def test_a_method_rule_fires_once_for_each_call_of_its_method(self):
		rule = self.rule(event="Method", method="validate", subject="{{ doc.title }} validated")
		with self.action() as insert:
			doc = new_order(title="Checked").insert()
		self.assertEqual(insert.rules(), {rule.name: 1})
		self.assertEqual(insert.sent[0].message["event"], "Method")
		with self.action() as save:
			doc.qty = 2
			doc.save()
		self.assertEqual(save.rules(), {rule.name: 1})
		with self.action() as cancel_free:
			doc.db_set("remarks", "no validate runs for db_set")
		self.assertEqual(cancel_free.rules(), {})
		# two saves in one transaction (a script, an API client) are two calls: two messages
		with self.action() as twice:
			doc.qty = 3
			doc.save()
			doc.qty = 4
			doc.save()
		self.assertEqual(twice.rules(), {rule.name: 2})

	def test_a_method_rule_on_submit_and_on_trash(self):
		submit = self.rule(event="Method", method="before_submit")
		trash = self.rule(event="Method", method="on_trash")
		doc = new_order().insert()
		with self.action() as submitting:
			doc.submit()
		self.assertEqual(submitting.rules(), {submit.name: 1})
		draft = new_order().insert()
		with self.action() as deleting:
			frappe.delete_doc(ORDER, draft.name)
		self.assertEqual(deleting.rules(), {trash.name: 1})

	def test_a_method_nobody_calls_rt_studio_for_cannot_be_chosen(self):
		message = self.invalid(event="Method", method="on_payment_authorized")
		self.assertIn(
			"RT Studio does not hear on_payment_authorized on RT Test Order: choose one of", message
		)
		self.assertIn("validate", message)
		self.assertIn("rt_studio.handler.on_document_event", message)
		self.assertIn(
			"runs before the document has a name", self.invalid(event="Method", method="before_insert")
		)

	def test_preview_of_a_method_rule(self):
		rule = self.rule(event="Method", method="on_update", subject="{{ doc.title }}")
		doc = new_order(title="Seen").insert()
		result = api.preview(rule.name, doc.name)
		self.assertTrue(result["fired"])
		self.assertEqual([r["subject"] for r in result["recipients"]], ["Seen"])

	# ------------------------------------------------------------ child rows

	def test_value_change_of_a_child_table_field(self):
		rule = self.rule(
			event="Value Change",
			value_changed="items.qty",
			message="{% for c in changed_rows %}{{ c.change }}:{{ c.old }}>{{ c.new }} {% endfor %}",
		)
		doc = new_order(items=[{"qty": 1}, {"qty": 2}]).insert()
		with self.action() as change:
			doc.items[1].qty = 5
			doc.save()
		self.assertEqual(change.rules(), {rule.name: 1})
		self.assertEqual(change.sent[0].message["message"], "changed:2>5 ")
		with self.action() as add_and_remove:
			doc.remove(doc.items[0])
			doc.append("items", {"qty": 7})
			doc.save()
		self.assertEqual(add_and_remove.sent[0].message["message"], "added:>7 removed:1> ")
		with self.action() as other_field:
			doc.items[0].user = self.reader
			doc.save()
		self.assertEqual(other_field.rules(), {})

	def test_preview_of_a_child_table_value_change(self):
		rule = self.rule(event="Value Change", value_changed="items.qty", to_value="4")
		doc = new_order(items=[{"qty": 4}, {"qty": 1}]).insert()
		result = api.preview(rule.name, doc.name)
		self.assertTrue(result["fired"])
		self.assertEqual(result["simulated_before"], {"items.qty": [None, None]})

	def test_value_changed_must_name_a_field_of_rows_for_a_table(self):
		self.assertIn(
			"items is a table: name a field of its rows, such as items.user",
			self.invalid(event="Value Change", value_changed="items"),
		)
		self.assertIn(
			"RT Test Order Item has no field price",
			self.invalid(event="Value Change", value_changed="items.price"),
		)

	# ------------------------------------------------------------ time rules: what they count from

	def test_time_rules_count_from_a_date_field(self):
		self.assertIn(
			"title is a Data field: choose a Date or Datetime field (or creation, modified)",
			self.invalid(event="Days Before", date_changed="title"),
		)
		self.assertIn(
			"RT Test Order has no field due: choose a Datetime field",
			self.invalid(event="Minutes After", datetime_changed="due"),
		)
		rule = self.rule(event="Days After", date_changed="creation", days_in_advance=3)
		self.assertEqual(rule.date_changed, "creation")


class TestFiltersAgainstTheListView(RTTestCase):
	"""Differential: for every filter, the engine picks exactly the documents `frappe.get_all`
	(what a list view runs) returns, over orders made to hit the edges."""

	ORDERS = [
		{
			"title": "Red Bike",
			"qty": 4,
			"status": "Open",
			"due_date": -3,
			"starts_at": (0, 9),
			"items": [1, 4],
		},
		{
			"title": "BIKE rack",
			"qty": 0,
			"status": "Draft",
			"due_date": 0,
			"starts_at": (0, 23),
			"items": [3],
		},
		{"title": "bike   ", "qty": 5, "status": "Closed", "remarks": "urgent", "due_date": 40, "items": [5]},
		{"title": "Émile's ebike", "qty": 12, "status": "Approved", "remarks": "", "starts_at": (-1, 10)},
		{"title": "Car", "qty": 1, "status": "Open", "due_date": -35, "starts_at": (2, 0), "items": [0, 0]},
		{"title": "", "qty": 9, "status": "Draft", "remarks": "Urgent!", "due_date": 7},
		{"title": None, "qty": 2, "status": "Open", "due_date": 1, "starts_at": (0, 0), "items": [9]},
		{"title": "100% off", "qty": 100, "status": "Closed", "due_date": -1, "items": [2, 5]},
	]
	FILTERS = [
		["title", "=", "red bike"],
		["title", "=", "bike"],
		["title", "!=", "Car"],
		["title", "like", "%bike%"],
		["title", "like", "bike"],
		["title", "like", "%EBIKE"],
		["title", "like", "100\\%%"],
		["title", "like", "_ar"],
		["title", "not like", "%bike%"],
		["title", "in", ["red bike", "car", ""]],
		["title", "not in", "Car, Red Bike"],
		["title", "is", "set"],
		["title", "is", "not set"],
		["title", ">", "c"],
		["title", "<=", "bike"],
		["status", "=", "open"],
		["status", "!=", "Draft"],
		["status", "in", "Open,Closed"],
		["qty", ">", "5"],
		["qty", ">=", 5],
		["qty", "<", 3],
		["qty", "=", 0],
		["qty", "!=", 0],
		["qty", "in", ["1", "5", "100"]],
		["qty", "not in", ["0"]],
		["qty", "is", "set"],
		["qty", "is", "not set"],
		["remarks", "is", "set"],
		["remarks", "is", "not set"],
		["remarks", "=", ""],
		["remarks", "!=", "urgent"],
		["remarks", "like", "%URG%"],
		["due_date", "=", 0],
		["due_date", "!=", 0],
		["due_date", ">", 0],
		["due_date", "<", 0],
		["due_date", ">=", -3],
		["due_date", "<=", 1],
		["due_date", "between", [-3, 1]],
		["due_date", "is", "set"],
		["due_date", "is", "not set"],
		["due_date", "timespan", "this month"],
		["due_date", "timespan", "last month"],
		["due_date", "timespan", "this week"],
		["due_date", "timespan", "next week"],
		["due_date", "timespan", "today"],
		["due_date", "timespan", "yesterday"],
		["due_date", "timespan", "tomorrow"],
		["due_date", "timespan", "this year"],
		["starts_at", ">", (0, 8)],
		["starts_at", "<", (0, 9)],
		["starts_at", "between", [0, 0]],
		["starts_at", "between", [-1, 1]],
		["starts_at", "timespan", "today"],
		["starts_at", "is", "set"],
		["starts_at", "is", "not set"],
		[ORDER_ITEM, "qty", ">", 3],
		[ORDER_ITEM, "qty", "=", 0],
		[ORDER_ITEM, "qty", "!=", 5],
		[ORDER_ITEM, "qty", "in", ["2", "9"]],
		["docstatus", "=", 0],
		["creation", "timespan", "today"],
	]

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		today = frappe.utils.getdate()
		cls.names = []
		for spec in cls.ORDERS:
			fields = dict(spec)
			if "due_date" in fields:
				fields["due_date"] = frappe.utils.add_days(today, fields["due_date"])
			if "starts_at" in fields:
				days, hour = fields["starts_at"]
				fields["starts_at"] = f"{frappe.utils.add_days(today, days)} {hour:02d}:30:00"
			fields["items"] = [{"qty": qty} for qty in fields.get("items", [])]
			cls.names.append(new_order(**fields).insert().name)
		frappe.db.commit()
		cls.addClassCleanup(cls.remove_orders)

	@classmethod
	def remove_orders(cls):
		from rt_studio.tests.factories import purge_order

		for name in cls.names:
			purge_order(name)
		frappe.db.commit()

	def concrete(self, f: list) -> list:
		"""The filter with relative dates (days from today, (days, hour)) made real."""
		today = frappe.utils.getdate()

		def real(value):
			if isinstance(value, tuple):
				return f"{frappe.utils.add_days(today, value[0])} {value[1]:02d}:00:00"
			if isinstance(value, int) and not isinstance(value, bool):
				return str(frappe.utils.add_days(today, value))
			return value

		doctype, rest = (f[0], f[1:]) if len(f) == 4 else (ORDER, f)
		fieldname, operator, value = rest
		if fieldname in ("due_date", "starts_at"):
			value = [real(v) for v in value] if isinstance(value, list) else real(value)
		return [doctype, fieldname, operator, value]

	def test_the_engine_and_the_list_view_pick_the_same_documents(self):
		from rt_studio.engine.filters import failing_filter, parse_filters
		from rt_studio.people.site import FrappeMeta, site_now

		meta, today = FrappeMeta(), site_now().date()
		docs = {name: frappe.get_doc(ORDER, name).as_dict(convert_dates_to_str=False) for name in self.names}
		differences = []
		for spec in self.FILTERS:
			f = self.concrete(spec)
			listed = set(frappe.get_all(ORDER, filters=[f], pluck="name", distinct=True)) & set(self.names)
			filters = parse_filters([f], ORDER)
			picked = {
				name for name, doc in docs.items() if failing_filter(filters, doc, ORDER, today, meta) is None
			}
			if listed != picked:
				titles = lambda names: sorted(str(docs[n].title) for n in names)  # noqa: E731
				differences.append(f"{f}: list view {titles(listed)}, engine {titles(picked)}")
		self.assertEqual(differences, [], "\n" + "\n".join(differences))
