"""The whitelisted API under the paths the desk and other apps call (`rt_studio.api.<name>`).

Nothing is defined here: System Managers' endpoints live in rt_studio/desk/authoring.py, a
desk user's in desk/personal.py (channel posts), desk/muting.py (`mute`, `unmute`,
`my_notifications`), delivery/delivery_log.py (`missed`), delivery/room_log.py (`missed_room`)
and desk/inbox.py (`inbox`, `inbox_count`, `mark_seen`, `mark_read`, `archive`), the conversion
of a Frappe Notification in desk/notifications.py. Each endpoint checks permission first.
"""

from rt_studio.delivery.delivery_log import missed
from rt_studio.delivery.room_log import missed_room
from rt_studio.desk.analytics import evaluations, rule_analytics, rules_overview
from rt_studio.desk.authoring import (
	audience_size,
	backtest,
	check_rule,
	export_rules,
	import_rules,
	preview,
	test_fire,
	test_fire_job,
	trace,
	validate_rules,
)
from rt_studio.desk.inbox import archive, inbox, inbox_count, mark_read, mark_seen
from rt_studio.desk.muting import mute, my_notifications, unmute
from rt_studio.desk.notifications import convert_notification
from rt_studio.desk.personal import publish
from rt_studio.desk.preferences import (
	my_critical_rules,
	my_preferences,
	set_digest,
	set_preference,
	set_quiet_hours,
)

__all__ = [
	"archive",
	"audience_size",
	"backtest",
	"check_rule",
	"convert_notification",
	"evaluations",
	"export_rules",
	"import_rules",
	"inbox",
	"inbox_count",
	"mark_read",
	"mark_seen",
	"missed",
	"missed_room",
	"mute",
	"my_critical_rules",
	"my_notifications",
	"my_preferences",
	"preview",
	"publish",
	"rule_analytics",
	"rules_overview",
	"set_digest",
	"set_preference",
	"set_quiet_hours",
	"test_fire",
	"test_fire_job",
	"trace",
	"unmute",
	"validate_rules",
]
