// Realtime Studio: preview and test-fire rules, watch the live console, read recent
// evaluations, post to channels, export and import rules.

frappe.pages["realtime-studio"].on_page_load = function (wrapper) {
	const page = frappe.ui.make_app_page({ parent: wrapper, title: __("Realtime Studio"), single_column: true });
	wrapper.realtime_studio = new RealtimeStudio(page);
};

frappe.pages["realtime-studio"].on_page_show = function (wrapper) {
	wrapper.realtime_studio?.refresh_evaluations();
	wrapper.realtime_studio?.refresh_overview();
};

//: Evaluations per page of the Recent Evaluations list.
const PAGE = 20;

class RealtimeStudio {
	constructor(page) {
		this.page = page;
		this.$body = $(`<div class="rt-studio"></div>`).appendTo(page.main);
		this.make_actions();
		this.make_preview_section();
		this.make_console_section();
		this.make_overview_section();
		this.make_evaluations_section();
		this.make_channel_section();
		this.refresh_overview();
		this.refresh_evaluations();
	}

	section(title, description) {
		const $section = $(`
			<div class="rt-section frappe-card" style="padding: var(--padding-md); margin-bottom: var(--margin-lg)">
				<div class="flex justify-between align-center" style="margin-bottom: var(--margin-sm)">
					<div><h5 style="margin: 0">${title}</h5>
					<div class="text-muted small">${description || ""}</div></div>
					<div class="rt-section-actions"></div>
				</div>
				<div class="rt-section-body"></div>
			</div>`).appendTo(this.$body);
		return { $section, $body: $section.find(".rt-section-body"), $actions: $section.find(".rt-section-actions") };
	}

	make_actions() {
		this.page.set_primary_action(__("New Rule"), () => frappe.new_doc("Realtime Rule"), "add");
		this.page.add_menu_item(__("Export all rules"), () => this.export_all());
		this.page.add_menu_item(__("Import rules"), () => this.import_rules());
		this.page.add_inner_button(__("Export"), () => this.export_all());
		this.page.add_inner_button(__("Import"), () => this.import_rules());
		this.page.add_inner_button(__("Convert a Notification"), () => this.convert_notification());
	}

	convert_notification() {
		// Frappe's Notification -> a disabled Realtime Rule, and what it could not carry over
		const dialog = new frappe.ui.Dialog({
			title: __("Convert a Notification"),
			fields: [
				{
					fieldtype: "Link",
					fieldname: "notification",
					label: __("Notification"),
					options: "Notification",
					reqd: 1,
					description: __("A disabled Realtime Rule is made from it; the Notification stays as it is."),
				},
			],
			primary_action_label: __("Convert"),
			primary_action: ({ notification }) => {
				dialog.hide();
				frappe.xcall("rt_studio.api.convert_notification", { notification }).then((result) => this.converted(result));
			},
		});
		dialog.show();
	}

	converted(result) {
		const esc = frappe.utils.escape_html;
		const list = result.not_carried.length
			? `<p>${__("Not carried over:")}</p><ul class="rt-not-carried">${result.not_carried.map((t) => `<li>${esc(t)}</li>`).join("")}</ul>`
			: `<p>${__("Everything was carried over.")}</p>`;
		const dialog = new frappe.ui.Dialog({
			title: __("Rule {0} made (disabled)", [esc(result.rule)]),
			fields: [{ fieldtype: "HTML", fieldname: "out" }],
			primary_action_label: __("Open the rule"),
			primary_action: () => {
				dialog.hide();
				frappe.set_route("Form", "Realtime Rule", result.rule);
			},
		});
		dialog.fields_dict.out.$wrapper.html(`<div class="rt-converted">${list}</div>`);
		dialog.show();
	}

	// ------------------------------------------------------------- preview and test fire

	make_preview_section() {
		const { $body } = this.section(__("Preview and Test Fire"), __("Pick a rule and a document: see who would get what, and why."));
		const $fields = $(`<div class="row"></div>`).appendTo($body);
		const column = () => $(`<div class="col-md-4"></div>`).appendTo($fields);
		this.rule_field = frappe.ui.form.make_control({
			parent: column(),
			df: {
				fieldtype: "Link",
				fieldname: "rule",
				label: __("Rule"),
				options: "Realtime Rule",
				change: () => this.rule_changed(),
			},
			render_input: true,
		});
		this.doc_field = frappe.ui.form.make_control({
			parent: column(),
			df: {
				fieldtype: "Dynamic Link",
				fieldname: "docname",
				label: __("Document"),
				get_options: () => this.rule_doctype,
			},
			render_input: true,
		});
		const $buttons = $(`<div class="col-md-4" style="padding-top: 27px"></div>`).appendTo($fields);
		$(`<button class="btn btn-primary btn-sm">${__("Preview")}</button>`).appendTo($buttons).on("click", () => this.preview());
		$(`<button class="btn btn-default btn-sm" style="margin-left: 6px">${__("Test Fire to Me")}</button>`)
			.appendTo($buttons)
			.on("click", () => this.test_fire("me"));
		$(`<button class="btn btn-default btn-sm" style="margin-left: 6px">${__("Test Fire to Audience")}</button>`)
			.appendTo($buttons)
			.on("click", () => this.test_fire("audience"));
		this.$preview = $(`<div class="rt-preview-result" style="margin-top: var(--margin-md)"></div>`).appendTo($body);
		const route_rule = frappe.get_route()[1];
		if (route_rule) this.rule_field.set_value(decodeURIComponent(route_rule));
	}

	rule_changed() {
		const rule = this.rule_field.get_value();
		this.rule_doctype = null;
		if (!rule) return;
		frappe.db.get_value("Realtime Rule", rule, "document_type").then(({ message }) => {
			this.rule_doctype = message && message.document_type;
			this.doc_field.set_label(this.rule_doctype ? __(this.rule_doctype) : __("Document"));
		});
		if (this.filter_rule && this.filter_rule.get_value() !== rule) this.filter_rule.set_value(rule);
	}

	selection() {
		const rule = this.rule_field.get_value();
		const docname = this.doc_field.get_value();
		if (!rule || !docname) {
			frappe.show_alert({ message: __("Choose a rule and a document first"), indicator: "orange" });
			return null;
		}
		return { rule, docname };
	}

	preview() {
		const args = this.selection();
		if (!args) return;
		frappe.xcall("rt_studio.api.preview", args).then((result) => this.$preview.html(rt_studio.ui.preview_html(result)));
	}

	test_fire(to) {
		const args = this.selection();
		if (!args) return;
		const fire = () =>
			frappe.xcall("rt_studio.api.test_fire", { ...args, to }).then((result) => {
				rt_studio.ui.fired_alert(result);
				// test_fire's result names no document (preview's does): add it for the summary line.
				if (!result.queued) {
					this.$preview.html(rt_studio.ui.preview_html({ doctype: this.rule_doctype, docname: args.docname, ...result }));
				}
				setTimeout(() => this.refresh_evaluations(), 500);
			});
		if (to === "me") return fire();
		frappe.xcall("rt_studio.api.audience_size", args).then((size) => {
			frappe.confirm(__("Send to {0} people now? ({1} in the audience are skipped)", [size.deliver, size.total - size.deliver]), fire);
		});
	}

	// ------------------------------------------------------------- live console

	make_console_section() {
		const { $body, $actions } = this.section(
			__("Live Console"),
			__("Every RT Studio message this browser receives, newest first.")
		);
		$(`<button class="btn btn-default btn-xs">${__("Clear")}</button>`)
			.appendTo($actions)
			.on("click", () => {
				rt_studio.runtime.console.entries.length = 0;
				this.render_console();
			});
		this.$console = $(`<div class="rt-console" style="max-height: 320px; overflow: auto"></div>`).appendTo($body);
		rt_studio.runtime.start();
		rt_studio.runtime.console.subscribe(() => this.render_console());
		this.render_console();
	}

	render_console() {
		const esc = frappe.utils.escape_html;
		const entries = rt_studio.runtime.console.entries;
		if (!entries.length) {
			this.$console.html(`<p class="text-muted">${__("Waiting for messages. Test-fire a rule to see one.")}</p>`);
			return;
		}
		const rows = entries
			.map(
				(e) => `<tr>
					<td class="text-nowrap">${esc(moment(e.at).format("HH:mm:ss"))}</td>
					<td><code>${esc(e.event)}</code></td>
					<td>${esc(e.rule || (e.channel ? "#" + e.channel : ""))}</td>
					<td>${rt_studio.describe(e.message).text}</td>
					<td><details><summary class="text-muted small">${__("payload")}</summary><pre style="white-space: pre-wrap; max-width: 520px">${esc(
						JSON.stringify(e.message, null, 1)
					)}</pre></details></td>
				</tr>`
			)
			.join("");
		this.$console.html(`<table class="table table-sm rt-console-table"><thead><tr>
			<th>${__("Time")}</th><th>${__("Event")}</th><th>${__("Rule / Channel")}</th><th>${__("Shown")}</th><th></th>
		</tr></thead><tbody>${rows}</tbody></table>`);
	}

	// ------------------------------------------------------------- rules by volume

	make_overview_section() {
		const { $body, $actions } = this.section(
			__("Rules by Volume"),
			__("Every rule and channel over the last 30 days, most delivered first: find the rule nobody reads.")
		);
		$(`<button class="btn btn-default btn-xs">${__("Refresh")}</button>`).appendTo($actions).on("click", () => this.refresh_overview());
		this.$overview = $(`<div class="rt-overview" style="max-height: 420px; overflow: auto"></div>`).appendTo($body);
	}

	refresh_overview() {
		if (!this.$overview) return;
		frappe.xcall("rt_studio.api.rules_overview", { days: 30 }).then((overview) => this.render_overview(overview.rows));
	}

	render_overview(rows) {
		const esc = frappe.utils.escape_html;
		if (!rows.length) {
			this.$overview.html(`<p class="text-muted">${__("No rules yet.")}</p>`);
			return;
		}
		const rate = (r) => (r === null ? "–" : `${Math.round(r * 1000) / 10}%`);
		const low = (row) => row.delivered >= 10 && row.read_rate !== null && row.read_rate < 0.2;
		const body = rows
			.map((row) => {
				const name = row.rule || row.channel;
				const doctype = row.rule ? "realtime-rule" : "realtime-channel";
				const label = row.rule ? esc(name) : `# ${esc(name)}`;
				const e = row.evaluations;
				const evaluations = e ? `${e.fired} / ${e.not_fired} / ${e.errors ? `<span class="text-danger">${e.errors}</span>` : 0}` : "";
				return `<tr class="rt-overview-row" data-name="${esc(name)}">
					<td><a href="/app/${doctype}/${encodeURIComponent(name)}">${label}</a>${
					row.enabled ? "" : ` <span class="indicator-pill gray">${__("disabled")}</span>`
				}</td>
					<td class="text-right">${row.delivered}</td>
					<td class="text-right">${row.read}</td>
					<td class="text-right ${low(row) ? "text-danger" : ""}">${rate(row.read_rate)}</td>
					<td class="text-right">${row.escalated}</td>
					<td class="text-right text-muted">${evaluations}</td>
				</tr>`;
			})
			.join("");
		this.$overview.html(`<table class="table table-sm table-hover rt-overview-table"><thead><tr>
			<th>${__("Rule / Channel")}</th><th class="text-right">${__("Delivered")}</th><th class="text-right">${__("Read")}</th>
			<th class="text-right">${__("Read rate")}</th><th class="text-right">${__("Emailed unread")}</th>
			<th class="text-right" title="${__("Of the evaluations kept for the rule")}">${__("Fired / not / errors")}</th>
		</tr></thead><tbody>${body}</tbody></table>`);
	}

	// ------------------------------------------------------------- recent evaluations

	make_evaluations_section() {
		const { $body, $actions } = this.section(
			__("Recent Evaluations"),
			__("What each rule decided on real events and test fires: fired, not fired and why, errors. Filtered and paged on the server.")
		);
		$(`<button class="btn btn-default btn-xs">${__("Refresh")}</button>`).appendTo($actions).on("click", () => this.refresh_evaluations());
		const $filters = $(`<div class="row rt-evaluation-filters"></div>`).appendTo($body);
		const filter = (df, width = 2) =>
			frappe.ui.form.make_control({
				parent: $(`<div class="col-md-${width}"></div>`).appendTo($filters),
				df: { ...df, change: () => this.refresh_evaluations(0) },
				render_input: true,
			});
		this.filter_rule = filter({ fieldtype: "Link", options: "Realtime Rule", fieldname: "rule", label: __("Rule") }, 3);
		const route_rule = frappe.get_route()[1];
		if (route_rule) this.filter_rule.set_value(decodeURIComponent(route_rule));
		this.filter_result = filter({
			fieldtype: "Select",
			fieldname: "result",
			label: __("Result"),
			options: ["", "fired", "not fired", "error"].join("\n"),
		});
		this.filter_doctype = filter({ fieldtype: "Link", options: "DocType", fieldname: "doctype", label: __("DocType") }, 3);
		this.filter_since = filter({ fieldtype: "Datetime", fieldname: "since", label: __("From") });
		this.filter_until = filter({ fieldtype: "Datetime", fieldname: "until", label: __("To") });
		this.$evaluations = $(`<div class="rt-evaluations"></div>`).appendTo($body);
		const $pager = $(`<div class="flex justify-between align-center rt-evaluations-pager">
			<div class="text-muted small rt-page-info"></div>
			<div><button class="btn btn-default btn-xs rt-newer">${__("Newer")}</button>
			<button class="btn btn-default btn-xs rt-older" style="margin-left: 6px">${__("Older")}</button></div>
		</div>`).appendTo($body);
		this.$page_info = $pager.find(".rt-page-info");
		this.$newer = $pager.find(".rt-newer").on("click", () => this.refresh_evaluations(Math.max(this.evaluations_start - PAGE, 0)));
		this.$older = $pager.find(".rt-older").on("click", () => this.refresh_evaluations(this.evaluations_start + PAGE));
		this.evaluations_start = 0;
	}

	refresh_evaluations(start) {
		if (!this.$evaluations) return;
		if (start !== undefined) this.evaluations_start = start;
		const args = {
			rule: this.filter_rule.get_value() || null,
			result: this.filter_result.get_value() || null,
			doctype: this.filter_doctype.get_value() || null,
			since: this.filter_since.get_value() || null,
			until: this.filter_until.get_value() || null,
			start: this.evaluations_start,
			page_length: PAGE,
		};
		const asked = JSON.stringify(args);
		this.evaluations_asked = asked;
		frappe.xcall("rt_studio.api.evaluations", args).then((page) => {
			if (this.evaluations_asked !== asked) return; // a newer request is on its way
			this.render_evaluations(page);
		});
	}

	render_evaluations(page) {
		this.$evaluations.html(rt_studio.ui.activity_table(page.entries));
		const shown = page.entries.length;
		const c = page.counts;
		this.$page_info.text(
			shown
				? __("{0}–{1} of {2} matching ({3} fired, {4} not fired, {5} errors); {6} evaluations kept", [
						page.start + 1,
						page.start + shown,
						page.total,
						c.fired,
						c.not_fired,
						c.errors,
						page.kept,
				  ])
				: __("None of the {0} kept evaluations match", [page.kept])
		);
		this.$newer.prop("disabled", page.start === 0);
		this.$older.prop("disabled", page.start + shown >= page.total);
	}

	// ------------------------------------------------------------- channels

	make_channel_section() {
		const { $body } = this.section(__("Post to a Channel"), __("Everyone who is a member when you post sees it live."));
		const $row = $(`<div class="row"></div>`).appendTo($body);
		this.channel_field = frappe.ui.form.make_control({
			parent: $(`<div class="col-md-4"></div>`).appendTo($row),
			df: { fieldtype: "Link", options: "Realtime Channel", fieldname: "channel", label: __("Channel") },
			render_input: true,
		});
		this.channel_message = frappe.ui.form.make_control({
			parent: $(`<div class="col-md-6"></div>`).appendTo($row),
			df: { fieldtype: "Data", fieldname: "message", label: __("Message") },
			render_input: true,
		});
		$(`<div class="col-md-2" style="padding-top: 27px"><button class="btn btn-primary btn-sm">${__("Post")}</button></div>`)
			.appendTo($row)
			.find("button")
			.on("click", () => {
				const channel = this.channel_field.get_value();
				const message = this.channel_message.get_value();
				if (!channel || !message) return;
				frappe.xcall("rt_studio.api.publish", { channel, message }).then((r) => {
					frappe.show_alert({ message: __("Posted to {0} member(s)", [r.sent]), indicator: "green" });
					this.channel_message.set_value("");
				});
			});
	}

	// ------------------------------------------------------------- export and import

	export_all() {
		frappe.xcall("rt_studio.api.export_rules").then((data) => {
			rt_studio.ui.download("realtime_rule.json", JSON.stringify(data, null, 1));
		});
	}

	import_rules() {
		const dialog = new frappe.ui.Dialog({
			title: __("Import Rules"),
			fields: [
				{ fieldtype: "HTML", fieldname: "picker" },
				{ fieldtype: "HTML", fieldname: "report" },
			],
			primary_action_label: __("Import"),
			primary_action: () => {
				if (!this.import_text) return;
				frappe.xcall("rt_studio.api.import_rules", { data: this.import_text }).then((r) => {
					dialog.hide();
					if (r.queued) {
						frappe.show_alert({ message: __("Importing {0} documents in the background", [r.count]), indicator: "blue" });
					} else {
						frappe.show_alert({ message: __("Imported {0} document(s)", [r.imported.length]), indicator: "green" });
					}
				});
			},
		});
		const $report = dialog.fields_dict.report.$wrapper;
		dialog.get_primary_btn().prop("disabled", true);
		$(`<input type="file" accept=".json,application/json" class="form-control">`)
			.appendTo(dialog.fields_dict.picker.$wrapper)
			.on("change", (event) => {
				const file = event.target.files[0];
				if (!file) return;
				file.text().then((text) => {
					this.import_text = text;
					frappe.xcall("rt_studio.api.validate_rules", { data: text }).then((r) => {
						const ok = !r.problems.length;
						dialog.get_primary_btn().prop("disabled", !ok);
						$report.html(rt_studio.ui.problems_html(r));
					});
				});
			});
		dialog.show();
	}
}
