# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

"""Child table of Realtime Channel: a role that may post to it."""

from frappe.model.document import Document


class RealtimeChannelPublishRole(Document):
	"""A role allowed to post to a channel through the API."""

	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		role: DF.Link
	# end: auto-generated types

	pass
