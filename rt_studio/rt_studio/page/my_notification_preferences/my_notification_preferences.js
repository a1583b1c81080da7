// My Notification Preferences: how each rule and channel reaches me (live alert, browser
// notification, email), my default for everything else, quiet hours in my own time zone and the
// digest email of unread messages. Every change is the session user's own (rt_studio.api.set_preference and friends).

frappe.pages["my-notification-preferences"].on_page_load = function (wrapper) {
	const page = frappe.ui.make_app_page({ parent: wrapper, title: __("My Notification Preferences"), single_column: true });
	wrapper.preferences_page = new MyNotificationPreferences(page);
};

frappe.pages["my-notification-preferences"].on_page_show = function (wrapper) {
	wrapper.preferences_page?.load();
};

const EMAIL_CHOICES = ["When Unread", "Never", "Digest"];

class MyNotificationPreferences {
	constructor(page) {
		this.page = page;
		this.$body = $(`<div class="rt-preferences"></div>`).appendTo(page.main);
	}

	load() {
		Promise.all([frappe.xcall("rt_studio.api.my_preferences"), frappe.xcall("rt_studio.api.my_critical_rules")]).then(
			([preferences, critical]) => {
				this.preferences = preferences;
				this.critical = new Set(critical);
				this.render();
			}
		);
	}

	card(title, description) {
		return $(`<div class="frappe-card rt-preferences-card" style="padding: var(--padding-md); margin-bottom: var(--margin-lg)">
			<h5 style="margin: 0">${title}</h5><div class="text-muted small" style="margin-bottom: var(--margin-sm)">${description}</div>
			<div class="rt-card-body"></div></div>`).appendTo(this.$body);
	}

	render() {
		const p = this.preferences;
		this.$body.empty();
		this.render_quiet_hours(p);
		const $table = this.card(
			__("Rules and channels"),
			__(
				"What reaches you, and how. A rule's or channel's own choice wins over your default. Email when unread: if the rule emails messages left unread after a while. Critical rules reach you as they are."
			)
		).find(".rt-card-body");
		const rows = [
			this.row({ label: __("Default (everything else)"), kind: "default" }, p.default),
			...Object.entries(p.rules).map(([rule, pref]) => this.row({ label: rule, kind: "rule", name: rule }, pref)),
			...Object.entries(p.channels).map(([channel, pref]) => this.row({ label: `# ${channel}`, kind: "channel", name: channel }, pref)),
		];
		$table.html(`<table class="table table-sm rt-preferences-table"><thead><tr>
			<th>${__("Rule / Channel")}</th><th class="text-center">${__("Live alert")}</th>
			<th class="text-center">${__("Browser notification")}</th><th>${__("Email")}</th>
		</tr></thead><tbody></tbody></table>`);
		$table.find("tbody").append(rows);
	}

	row(target, pref) {
		const esc = frappe.utils.escape_html;
		const critical = target.kind === "rule" && this.critical.has(target.name);
		const $row = $(`<tr class="rt-preference-row" data-kind="${target.kind}" data-name="${esc(target.name || "")}">
			<td>${esc(target.label)}${critical ? ` <span class="indicator-pill red">${__("critical: always delivered")}</span>` : ""}</td>
			<td class="text-center"><input type="checkbox" data-field="alert" ${pref.alert ? "checked" : ""}></td>
			<td class="text-center"><input type="checkbox" data-field="browser" ${pref.browser ? "checked" : ""}></td>
			<td><select class="form-control input-xs" data-field="email" style="max-width: 200px">${[...new Set([...EMAIL_CHOICES, pref.email])].map(
				(choice) => `<option value="${choice}" ${pref.email === choice ? "selected" : ""}>${__(this.email_label(choice))}</option>`
			).join("")}</select></td>
		</tr>`);
		if (critical) {
			$row.find("input, select").prop("disabled", true);
			return $row;
		}
		$row.find("input").on("change", (e) => this.save(target, { [e.target.dataset.field]: e.target.checked ? 1 : 0 }));
		$row.find("select").on("change", (e) => this.save(target, { email: e.target.value }));
		return $row;
	}

	email_label(choice) {
		return { "When Unread": "When unread", Never: "Never", Digest: "In the digest" }[choice] || choice;
	}

	save(target, change) {
		const args = { ...change };
		if (target.kind === "rule") args.rule = target.name;
		if (target.kind === "channel") args.channel = target.name;
		frappe.xcall("rt_studio.api.set_preference", args).then(() => {
			frappe.show_alert({ message: __("Saved: {0}", [frappe.utils.escape_html(target.label)]), indicator: "green" }, 3);
			this.load();
		});
	}

	render_quiet_hours(p) {
		const $card = this.card(
			__("Quiet hours and digest"),
			__("In your time zone, {0}. During quiet hours alerts and browser notifications are held: messages wait in your inbox.", [
				frappe.utils.escape_html(p.time_zone),
			])
		);
		const $row = $(`<div class="row"></div>`).appendTo($card.find(".rt-card-body"));
		const control = (df, width) =>
			frappe.ui.form.make_control({ parent: $(`<div class="col-md-${width}"></div>`).appendTo($row), df, render_input: true });
		this.quiet_start = control({ fieldtype: "Data", fieldname: "quiet_start", label: __("Quiet from"), placeholder: "22:00" }, 2);
		this.quiet_end = control({ fieldtype: "Data", fieldname: "quiet_end", label: __("Quiet until"), placeholder: "07:00" }, 2);
		this.quiet_start.set_value(p.quiet_hours ? p.quiet_hours.start : "");
		this.quiet_end.set_value(p.quiet_hours ? p.quiet_hours.end : "");
		const $buttons = $(`<div class="col-md-3" style="padding-top: 27px"></div>`).appendTo($row);
		$(`<button class="btn btn-default btn-sm rt-save-quiet">${__("Save quiet hours")}</button>`)
			.appendTo($buttons)
			.on("click", () => {
				const start = this.quiet_start.get_value() || null;
				const end = this.quiet_end.get_value() || null;
				frappe.xcall("rt_studio.api.set_quiet_hours", { start, end }).then((quiet) => {
					frappe.show_alert({ message: quiet ? __("Quiet from {0} to {1}", [quiet.start, quiet.end]) : __("No quiet hours"), indicator: "green" }, 3);
					this.load();
				});
			});
		this.digest = control(
			{
				fieldtype: "Select",
				fieldname: "digest",
				label: __("Digest email of unread messages"),
				options: ["Off", "Daily", "Weekly"].join("\n"),
				description: __("From 08:00 your time, once a day or once a week (from Monday), and only when something is unread."),
				change: () => {
					const frequency = this.digest.get_value();
					if (frequency && frequency !== this.preferences.digest) {
						frappe.xcall("rt_studio.api.set_digest", { frequency }).then(() => {
							frappe.show_alert({ message: __("Digest: {0}", [__(frequency)]), indicator: "green" }, 3);
							this.load();
						});
					}
				},
			},
			3
		);
		this.digest.set_value(p.digest);
	}
}
