// Realtime Rule form: field pickers for the chosen DocType, Frappe's filter editor for
// Filters conditions, live checks, Preview, Test Fire, Backtest, Export and the rule's recent
// activity.

frappe.ui.form.on("Realtime Rule", {
	setup(frm) {
		frm.set_query("document_type", () => ({ filters: { istable: 0 } }));
	},

	refresh(frm) {
		frm.trigger("setup_field_pickers");
		frm.trigger("render_filters");
		frm.trigger("show_status");
		frm.trigger("standard_rule");
		if (frm.is_new()) return;
		frm.add_custom_button(__("Preview"), () => frm.trigger("preview"));
		frm.add_custom_button(__("To Me"), () => frm.trigger("test_fire_me"), __("Test Fire"));
		frm.add_custom_button(__("To Audience"), () => frm.trigger("test_fire_audience"), __("Test Fire"));
		frm.add_custom_button(__("Backtest"), () => frm.trigger("backtest"));
		frm.add_custom_button(__("Export"), () => frm.trigger("export_rule"));
		frm.add_custom_button(__("Realtime Studio"), () => frappe.set_route("realtime-studio"));
		frm.trigger("render_recent_activity");
		frm.trigger("render_analytics");
	},

	document_type(frm) {
		frm.set_value("value_changed", "");
		frm.set_value("date_changed", "");
		frm.set_value("datetime_changed", "");
		if (frm.doc.filters && frm.doc.filters !== "[]") frm.set_value("filters", "[]");
		frm.trigger("setup_field_pickers");
		frm.trigger("render_filters");
	},

	condition_type: (frm) => frm.trigger("render_filters"),
	filters: (frm) => frm.trigger("live_check"),
	event: (frm) => frm.trigger("live_check"),
	method: (frm) => frm.trigger("live_check"),
	value_changed: (frm) => frm.trigger("live_check"),

	condition: (frm) => frm.trigger("live_check"),
	subject: (frm) => frm.trigger("live_check"),
	message: (frm) => frm.trigger("live_check"),
	fields: (frm) => frm.trigger("live_check"),

	standard_rule(frm) {
		// As Notification: Is Standard is for app developers; a shipped rule is read-only
		// on a site (the server refuses changes too), except for enabling or disabling it.
		frm.toggle_display("is_standard", !!frappe.boot.developer_mode);
		if (!frm.doc.is_standard || frappe.boot.developer_mode) return;
		frm.set_intro(
			__("This rule is shipped by module {0}: you can enable or disable it. To change it, duplicate it.", [
				frappe.utils.escape_html(frm.doc.module),
			]),
			"blue"
		);
		for (const df of frm.meta.fields) {
			if (df.fieldname !== "enabled" && !frappe.model.layout_fields.includes(df.fieldtype)) {
				frm.set_df_property(df.fieldname, "read_only", 1);
			}
		}
	},

	show_status(frm) {
		if (frm.doc.last_error) {
			frm.page.set_indicator(__("Error"), "red");
		} else if (!frm.is_new() && !frm.doc.enabled) {
			frm.page.set_indicator(__("Disabled"), "gray");
		}
	},

	setup_field_pickers(frm) {
		const doctype = frm.doc.document_type;
		if (!doctype) return;
		frappe.model.with_doctype(doctype, () => {
			const pickers = rt_studio.ui.field_options(doctype);
			frm.set_df_property("value_changed", "options", pickers.change_fields);
			// as Notification's form: the date fields to count days or minutes from
			frm.set_df_property("date_changed", "options", [""].concat(pickers.date_fields));
			frm.set_df_property("datetime_changed", "options", [""].concat(pickers.datetime_fields));
			frm.fields_dict.audience.grid.update_docfield_property("user_field", "options", pickers.user_fields);
			frm.set_df_property(
				"fields",
				"description",
				__("Comma-separated fieldnames. Readable fields of {0}: {1}", [
					__(doctype),
					pickers.value_fields
						.slice(0, 40)
						.map((f) => `<code>${frappe.utils.escape_html(f.value)}</code>`)
						.join(", "),
				])
			);
		});
	},

	render_filters(frm) {
		// Frappe's own filter editor (the list view's), inline: what it holds is the rule's filters
		const $area = frm.fields_dict.filters_editor.$wrapper;
		const doctype = frm.doc.document_type;
		if (frm.doc.condition_type !== "Filters" || !doctype) {
			$area.empty();
			frm._rt_filters = null;
			return;
		}
		if (frm._rt_filters && frm._rt_filters.doctype === doctype && frm._rt_filters.docname === frm.doc.name) return;
		frappe.model.with_doctype(doctype, () => {
			$area.html(
				`<p class="text-muted small">${__("All filters must hold, as in the list view of {0}.", [
					frappe.utils.escape_html(__(doctype)),
				])}</p>`
			);
			const group = new frappe.ui.FilterGroup({
				parent: $('<div class="rt-filter-editor"></div>').appendTo($area),
				doctype,
				on_change: () => {
					// the editor adds its own "hidden" flag as a fifth item: a rule keeps four
					const filters = group.get_filters().map((f) => f.slice(0, 4));
					const text = JSON.stringify(filters);
					if (text !== (frm.doc.filters || "[]")) frm.set_value("filters", text);
				},
			});
			frm._rt_filters = { doctype, docname: frm.doc.name, group };
			group.add_filters_to_filter_group(rt_studio.ui.stored_filters(frm.doc.filters, doctype));
			frm.toggle_display("filters_editor", true);
		});
	},

	live_check(frm) {
		// Checks the unsaved rule on the server (same checks as save) and shows problems inline.
		clearTimeout(frm._rt_check_timer);
		frm._rt_check_timer = setTimeout(() => {
			if (!frm.doc.document_type || !frm.doc.rule_name) return;
			frappe
				.xcall("rt_studio.api.check_rule", { doc: frm.doc })
				.then((problems) => rt_studio.ui.show_problems(frm, problems));
		}, 600);
	},

	pick_document(frm, title, primary_label, action) {
		const dialog = new frappe.ui.Dialog({
			title,
			fields: [
				{
					fieldtype: "Link",
					fieldname: "docname",
					label: __(frm.doc.document_type),
					options: frm.doc.document_type,
					reqd: 1,
					default: frm._rt_last_docname,
				},
			],
			primary_action_label: primary_label,
			primary_action({ docname }) {
				frm._rt_last_docname = docname;
				dialog.hide();
				action(docname);
			},
		});
		dialog.show();
	},

	preview(frm) {
		frm.events.pick_document(frm, __("Preview {0}", [frappe.utils.escape_html(frm.doc.rule_name)]), __("Preview"), (docname) => {
			frappe
				.xcall("rt_studio.api.preview", { rule: frm.doc.name, docname })
				.then((result) => rt_studio.ui.show_preview(result));
		});
	},

	test_fire_me(frm) {
		frm.events.pick_document(frm, __("Test Fire to me"), __("Send"), (docname) => {
			frappe
				.xcall("rt_studio.api.test_fire", { rule: frm.doc.name, docname, to: "me" })
				.then((result) => rt_studio.ui.fired_alert(result));
		});
	},

	test_fire_audience(frm) {
		frm.events.pick_document(frm, __("Test Fire to the audience"), __("Continue"), (docname) => {
			frappe.xcall("rt_studio.api.audience_size", { rule: frm.doc.name, docname }).then((size) => {
				frappe.confirm(
					__("Send this rule's message about {0} to {1} people now? ({2} more in the audience are skipped)", [
						frappe.utils.escape_html(docname),
						size.deliver,
						size.total - size.deliver,
					]),
					() =>
						frappe
							.xcall("rt_studio.api.test_fire", {
								rule: frm.doc.name,
								docname,
								to: "audience",
							})
							.then((result) => rt_studio.ui.fired_alert(result))
				);
			});
		});
	},

	backtest(frm) {
		const dialog = new frappe.ui.Dialog({
			title: __("Backtest {0}", [frappe.utils.escape_html(frm.doc.rule_name)]),
			size: "extra-large",
			fields: [
				{
					fieldtype: "Int",
					fieldname: "days",
					label: __("Days of history"),
					default: 7,
					description: __("Replays the last days of this DocType's history through the rule as it is now. Nothing is sent."),
				},
				{ fieldtype: "HTML", fieldname: "report" },
			],
			primary_action_label: __("Run"),
			primary_action({ days }) {
				const $report = dialog.fields_dict.report.$wrapper.html(`<p class="text-muted">${__("Replaying...")}</p>`);
				frappe
					.xcall("rt_studio.api.backtest", { rule: frm.doc.name, days })
					.then((report) => $report.html(rt_studio.ui.backtest_html(report)))
					.catch(() => $report.empty());
			},
		});
		dialog.show();
	},

	export_rule(frm) {
		frappe.xcall("rt_studio.api.export_rules", { names: [frm.doc.name] }).then((data) => {
			rt_studio.ui.download(`${frappe.scrub(frm.doc.name)}.json`, JSON.stringify(data, null, 1));
		});
	},

	render_recent_activity(frm) {
		const wrapper = frm.fields_dict.recent_activity.$wrapper;
		frappe.xcall("rt_studio.api.trace", { rule: frm.doc.name, limit: 20 }).then((entries) => {
			wrapper.html(rt_studio.ui.activity_table(entries));
		});
	},
});

// What the rule's messages did in the last 30 days (rt_studio.api.rule_analytics): the figures and a
// chart of deliveries and reads per day, in the form's dashboard (cleared by Frappe on each refresh).
frappe.ui.form.on("Realtime Rule", {
	render_analytics(frm) {
		const rule = frm.doc.name;
		frappe.xcall("rt_studio.api.rule_analytics", { rule, days: 30 }).then((figures) => {
			if (frm.doc.name !== rule) return;
			frm.dashboard.parent.find(".rt-analytics").remove();
			const $body = frm.dashboard.add_section(
				`${rt_studio.rule_form.analytics.figures_html(figures)}<div class="rt-analytics-chart"></div>`,
				__("Last 30 days"),
				"custom rt-analytics"
			);
			frm.dashboard.show();
			if (!figures.delivered) return;
			new frappe.Chart($body.find(".rt-analytics-chart")[0], {
				type: "bar",
				height: 200,
				colors: ["blue", "green"],
				axisOptions: { xIsSeries: 1, shortenYAxisNumbers: 1 },
				data: {
					labels: figures.per_day.map((day) => moment(day.date).format("MMM D")),
					datasets: [
						{ name: __("Delivered"), values: figures.per_day.map((day) => day.delivered) },
						{ name: __("Read"), values: figures.per_day.map((day) => day.read) },
					],
				},
			});
		});
	},
});

frappe.provide("rt_studio.rule_form");
rt_studio.rule_form.analytics = {
	figures_html(f) {
		const percent = (rate) => (rate === null ? "–" : `${Math.round(rate * 1000) / 10}%`);
		const median = f.median_minutes_to_read === null ? "–" : this.duration(f.median_minutes_to_read);
		const figures = [
			[__("Delivered"), f.delivered],
			[__("Seen"), f.seen],
			[__("Read"), f.read],
			[__("Read rate"), percent(f.read_rate)],
			[__("Median time to read"), median],
			[__("Archived"), f.archived],
			[__("Emailed unread"), f.escalated],
			[__("Muted by"), __("{0} people", [f.muted])],
		];
		const cells = figures
			.map(
				([label, value]) => `<div class="col-sm-3 col-6" style="margin-bottom: var(--margin-sm)">
					<div class="text-muted small">${label}</div><div class="rt-figure" style="font-size: var(--text-lg); font-weight: 600">${frappe.utils.escape_html(String(value))}</div>
				</div>`
			)
			.join("");
		const empty = f.delivered ? "" : `<p class="text-muted small">${__("No message of this rule was delivered in the last 30 days.")}</p>`;
		return `<div class="row rt-analytics-figures">${cells}</div>${empty}`;
	},

	duration(minutes) {
		if (minutes < 1) return __("under a minute");
		if (minutes < 90) return __("{0} min", [Math.round(minutes)]);
		if (minutes < 48 * 60) return __("{0} h", [Math.round(minutes / 6) / 10]);
		return __("{0} days", [Math.round(minutes / 144) / 10]);
	},
};

frappe.ui.form.on("Realtime Rule Audience", {
	audience_type(frm) {
		frm.trigger("setup_field_pickers");
	},
});
