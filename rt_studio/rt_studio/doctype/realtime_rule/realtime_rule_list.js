// Enabled, disabled and failing rules at a glance.
frappe.listview_settings["Realtime Rule"] = {
	add_fields: ["enabled", "last_error", "document_type", "event"],
	get_indicator(doc) {
		if (doc.last_error) return [__("Error"), "red", "last_error,is,set"];
		if (!doc.enabled) return [__("Disabled"), "gray", "enabled,=,0"];
		return [__("Enabled"), "green", "enabled,=,1"];
	},
	onload(listview) {
		listview.page.add_inner_button(__("Realtime Studio"), () => frappe.set_route("realtime-studio"));
		// rules changed without their form (set_value, a patch, SQL) apply within a minute; this applies them now
		if (frappe.user.has_role("System Manager")) {
			listview.page.add_inner_button(__("Reload Rules"), () =>
				frappe
					.xcall("rt_studio.rt_studio.doctype.realtime_rule.realtime_rule.reload_rules")
					.then(() => frappe.show_alert({ message: __("Every process uses the rules as saved now"), indicator: "green" })),
			);
		}
	},
};
