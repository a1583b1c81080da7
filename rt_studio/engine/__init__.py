"""The rule engine: pure Python, no Frappe import anywhere below this package.

It decides whether a rule fires, to whom and with what text; the Frappe layer feeds it
documents and implements its interfaces, the CLI and the tests use in-memory ones.
"""

from rt_studio.engine.errors import Problem, RuleError
from rt_studio.engine.evaluate import Context, Delivery, Event, Outcome, evaluate, preview
from rt_studio.engine.events import EVENTS, events_for_action, events_for_hook, normalize_event
from rt_studio.engine.matcher import RuleIndex
from rt_studio.engine.rules import Channel, Rule, compile_rule, parse_channel, parse_rule

__all__ = [
	"EVENTS",
	"Channel",
	"Context",
	"Delivery",
	"Event",
	"Outcome",
	"Problem",
	"Rule",
	"RuleError",
	"RuleIndex",
	"compile_rule",
	"evaluate",
	"events_for_action",
	"events_for_hook",
	"normalize_event",
	"parse_channel",
	"parse_rule",
	"preview",
]
