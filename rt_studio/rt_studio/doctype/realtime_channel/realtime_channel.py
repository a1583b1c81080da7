# Copyright (c) 2026, RT Studio contributors
# For license information, please see license.txt

"""The Realtime Channel controller: validation (rt_studio/files/rule_checks.py shows the
problems) and what a deleted channel takes along (its mutes)."""

import frappe
from frappe import _
from frappe.model.document import Document

from rt_studio.engine.errors import Problem
from rt_studio.engine.rules import parse_channel


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

	def validate(self):
		from rt_studio.files.rule_checks import throw_problems

		throw_problems(
			self.collect_problems(),
			_("Channel {0} cannot be saved:").format(
				frappe.bold(frappe.utils.escape_html(self.channel_name))
			),
			_("Invalid Realtime Channel"),
		)

	def on_trash(self):
		from rt_studio.delivery import mutes

		# nobody has muted a channel made again under this name
		mutes.forget_target(channel=self.name)

	def collect_problems(self) -> list[Problem]:
		"""Every problem at once (also used by import)."""
		_channel, problems = parse_channel(self.as_dict())
		if self.reference_doctype and self.reference_name:
			if not frappe.db.exists("DocType", self.reference_doctype) or not frappe.db.exists(
				self.reference_doctype, self.reference_name
			):
				problems.append(
					Problem(
						self.channel_name,
						"reference_name",
						f"{self.reference_doctype} {self.reference_name} does not exist: choose an existing document",
					)
				)
		return problems
