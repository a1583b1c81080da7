# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

from frappe.model.document import Document


class RealtimeRule(Document):
	"""A no-code rule: on an event of a DocType, send a realtime message to an audience."""

	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from rt_studio.rt_studio.doctype.realtime_rule_audience.realtime_rule_audience import (
			RealtimeRuleAudience,
		)

		alert_seconds: DF.Int
		audience: DF.Table[RealtimeRuleAudience]
		condition: DF.Code | None
		display: DF.Literal["Alert", "Sticky", "Notification Log", "Refresh Form", "Refresh List", "Custom"]
		document_type: DF.Link
		enabled: DF.Check
		event: DF.Literal["New", "Save", "Submit", "Cancel", "Delete", "Update After Submit", "Value Change"]
		event_name: DF.Data | None
		exclude_actor: DF.Check
		fields: DF.SmallText | None
		from_value: DF.Data | None
		indicator: DF.Literal["blue", "green", "orange", "red", "gray"]
		last_error: DF.SmallText | None
		last_error_on: DF.Datetime | None
		message: DF.Code | None
		rate_limit_count: DF.Int
		rate_limit_seconds: DF.Int
		rule_name: DF.Data
		subject: DF.Data | None
		to_value: DF.Data | None
		value_changed: DF.Data | None
	# end: auto-generated types

	pass
