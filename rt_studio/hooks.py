"""What Frappe calls in RT Studio: the document hook, permission hooks, the desk bundle, boot,
scheduled jobs and install/migrate steps. Read by Frappe, not imported by the app."""

app_name = "rt_studio"
app_title = "RT Studio"
app_publisher = "RT Studio contributors"
app_description = "No-code realtime notifications: rules that push live messages to the right desks"
app_email = "rt-studio@example.com"
app_license = "mit"

# Every document event of the site passes through one small handler; it returns at once for
# DocTypes without rules (see rt_studio/save/handler.py). The first seven raise the document events;
# the others are further document methods a Method rule may name (rt_studio.engine.events.HOOKS).
# An app makes any other method of its own reach Method rules by naming the same handler for it
# in its own doc_events.
doc_events = {
	"*": {
		"after_insert": "rt_studio.handler.on_document_event",
		"on_update": "rt_studio.handler.on_document_event",
		"on_submit": "rt_studio.handler.on_document_event",
		"on_cancel": "rt_studio.handler.on_document_event",
		"on_trash": [
			"rt_studio.handler.on_document_event",
			# messages leave the inbox with their document, whatever the rules (a set lookup for
			# DocTypes that never had messages: rt_studio/delivery/inbox_references.py)
			"rt_studio.delivery.inbox_references.on_trash",
		],
		# ...and follow it when it is renamed
		"after_rename": "rt_studio.delivery.inbox_references.after_rename",
		"on_update_after_submit": "rt_studio.handler.on_document_event",
		"on_change": "rt_studio.handler.on_document_event",
		"before_validate": "rt_studio.handler.on_document_event",
		"validate": "rt_studio.handler.on_document_event",
		"before_save": "rt_studio.handler.on_document_event",
		"before_submit": "rt_studio.handler.on_document_event",
		"before_cancel": "rt_studio.handler.on_document_event",
		"before_update_after_submit": "rt_studio.handler.on_document_event",
		"after_delete": "rt_studio.handler.on_document_event",
		# a form's load: the number of its room's last message, to catch up from after a reconnect
		"onload": "rt_studio.delivery.room_log.add_room_seq",
	},
	# a new time zone moves the user's quiet hours (their cached preferences are written again)
	"User": {"on_update": "rt_studio.delivery.preferences.on_user_update"},
	"Realtime Rule": {
		# when Email If Not Read Within is switched on: only messages sent from then on are emailed
		"on_update": "rt_studio.delivery.escalation.on_rule_change",
		"on_trash": "rt_studio.delivery.escalation.on_rule_change",
	},
}

has_permission = {
	"Realtime Channel": "rt_studio.people.permissions.channel_has_permission",
}

permission_query_conditions = {
	"Realtime Channel": "rt_studio.people.permissions.channel_query_conditions",
}

# The client runtime: shows RT Studio messages in every desk page.
app_include_js = "rt_studio.bundle.js"

extend_bootinfo = "rt_studio.desk.boot.boot_session"

# Evaluation traces and rate-limit counters are state, not cache: `bench clear-cache` and
# migrate keep them (a cleared counter would let a burst through).
# The same holds for batches waiting for their window to end and for the delivery log and
# counters behind `seq` (a cleared counter restarts from the clock, so it still increases).
persistent_cache_keys = [
	"rt_studio:trace:*",
	"rt_studio:rate:*",
	"rt_studio:batch*",
	"rt_studio:seq:*",
	"rt_studio:missed:*",
	"rt_studio:publish_key:*",
]

# Mutes and due logs do not stop a rule or channel from being deleted: a rule or channel takes
# its mutes (rows and Redis entries) and a rule its due logs with it (their on_trash); the daily
# clean-up removes the mutes of rules or channels deleted otherwise. Inbox items outlive their rule
# or channel: a user's inbox keeps what they received (the daily clean-up ages them out).
ignore_links_on_delete = ["Realtime Mute", "Realtime Rule Due Log", "Realtime Inbox Item"]
# a person's preference for a deleted rule or channel is left unused
ignore_links_on_delete.append("Realtime Preference")

scheduler_events = {
	"cron": {
		# digests of unread messages, each in its person's own morning (once per day or week)
		"*/10 * * * *": ["rt_studio.delivery.digest.send_due"],
		"* * * * *": [
			# rules changed without their form (set_value, a patch, SQL): every process reloads them
			"rt_studio.rule_cache.notice_outside_changes",
			# summaries of batched messages, delivered once their rate-limit window has ended
			"rt_studio.delivery.summaries.deliver_due",
			# time rules (Days/Minutes Before/After): what came due since the last run
			"rt_studio.schedule.run_time_rules",
			# unread inbox messages whose rule emails them after a while
			"rt_studio.delivery.escalation.escalate_due",
			"rt_studio.delivery.deferred.recover",  # delivery jobs a dead worker or a lost queue left
		],
	},
	"daily": [
		"rt_studio.delivery.mutes.clean_up",
		"rt_studio.schedule.clean_up",
		"rt_studio.delivery.inbox_cleanup.clean_up",
	],
}

# Rules an app ships in its module folders (realtime_rule/<rule>/<rule>.json), imported as
# Frappe imports its own standard documents (see rt_studio/files/standard_rules.py).
after_migrate = ["rt_studio.files.standard_rules.after_migrate"]
after_app_install = ["rt_studio.files.standard_rules.after_app_install"]
