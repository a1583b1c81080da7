# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

"""Child table of Realtime Rule: one audience row (who receives the message)."""

from frappe.model.document import Document


class RealtimeRuleAudience(Document):
	"""One row of a rule's audience: who receives the message."""

	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		audience_type: DF.Literal[
			"Owner",
			"Actor",
			"Assignees",
			"Followers",
			"User Field",
			"Role",
			"User",
			"Channel",
			"Document Viewers",
			"Everyone",
		]
		channel: DF.Link | None
		condition: DF.Code | None
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		role: DF.Link | None
		user: DF.Link | None
		user_field: DF.Data | None
	# end: auto-generated types

	pass
