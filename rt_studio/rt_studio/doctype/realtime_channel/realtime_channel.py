# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

from frappe.model.document import Document


class RealtimeChannel(Document):
	"""A named group of users that rules and the publish API can send to."""

	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from rt_studio.rt_studio.doctype.realtime_channel_member.realtime_channel_member import (
			RealtimeChannelMember,
		)
		from rt_studio.rt_studio.doctype.realtime_channel_publish_role.realtime_channel_publish_role import (
			RealtimeChannelPublishRole,
		)

		channel_name: DF.Data
		description: DF.SmallText | None
		enabled: DF.Check
		event_name: DF.Data | None
		members: DF.Table[RealtimeChannelMember]
		publish_roles: DF.TableMultiSelect[RealtimeChannelPublishRole]
		rate_limit_count: DF.Int
		rate_limit_seconds: DF.Int
		reference_doctype: DF.Link | None
		reference_name: DF.DynamicLink | None
	# end: auto-generated types

	pass
