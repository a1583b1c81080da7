// Realtime Channel form: members and System Managers post from here; everyone who is a
// member when the message is sent sees it live.

frappe.ui.form.on("Realtime Channel", {
	refresh(frm) {
		if (frm.is_new() || !frm.doc.enabled) return;
		frm.add_custom_button(__("Post Message"), () => frm.trigger("post_message"));
	},

	post_message(frm) {
		const dialog = new frappe.ui.Dialog({
			title: __("Post to {0}", [frappe.utils.escape_html(frm.doc.channel_name)]),
			fields: [{ fieldtype: "Small Text", fieldname: "message", label: __("Message"), reqd: 1 }],
			primary_action_label: __("Post"),
			primary_action({ message }) {
				frappe.xcall("rt_studio.api.publish", { channel: frm.doc.name, message }).then((r) => {
					dialog.hide();
					frappe.show_alert({ message: __("Posted to {0} member(s)", [r.sent]), indicator: "green" });
				});
			},
		});
		dialog.show();
	},
});
