"""What the desk asks for: the whitelisted API split by audience, and what it shows.

`authoring` is for System Managers who build rules (preview, test fire, backtest, files,
conversion, traces); `personal` for every desk user (channel posts); mutes and `missed` live
beside their state in rt_studio/delivery. `rt_studio.api` names all of them under the paths
the desk calls. `boot` adds what the runtime needs to every page load; `backtest` loads the
document history a backtest replays; `notifications` converts a Frappe Notification.
"""
