app_name = "rt_studio"
app_title = "RT Studio"
app_publisher = "RT Studio contributors"
app_description = "No-code realtime notifications: rules that push live messages to the right desks"
app_email = "rt-studio@example.com"
app_license = "mit"

# Every document event of the site passes through one small handler; it returns at once for
# DocTypes without rules (see rt_studio/handler.py).
doc_events = {
	"*": {
		"after_insert": "rt_studio.handler.on_document_event",
		"on_update": "rt_studio.handler.on_document_event",
		"on_submit": "rt_studio.handler.on_document_event",
		"on_cancel": "rt_studio.handler.on_document_event",
		"on_trash": "rt_studio.handler.on_document_event",
		"on_update_after_submit": "rt_studio.handler.on_document_event",
		"on_change": "rt_studio.handler.on_document_event",
	}
}

has_permission = {
	"Realtime Channel": "rt_studio.permissions.channel_has_permission",
}

permission_query_conditions = {
	"Realtime Channel": "rt_studio.permissions.channel_query_conditions",
}

# The client runtime: shows RT Studio messages in every desk page.
app_include_js = "rt_studio.bundle.js"

extend_bootinfo = "rt_studio.boot.boot_session"

# Evaluation traces and rate-limit counters are state, not cache: `bench clear-cache` and
# migrate keep them (a cleared counter would let a burst through).
persistent_cache_keys = ["rt_studio:trace:*", "rt_studio:rate:*"]
