# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

"""Child table of Realtime Channel: one member, a user or a role."""

from frappe.model.document import Document


class RealtimeChannelMember(Document):
	"""A user, or every user with a role, belonging to a channel."""

	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		member_type: DF.Literal["User", "Role"]
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		role: DF.Link | None
		user: DF.Link | None
	# end: auto-generated types

	pass
