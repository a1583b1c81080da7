import { describe } from "./runtime/logic.js";

// Desk helpers shared by the rule form, the channel form and the Realtime Studio page.

export const ui = {

	field_options(doctype) {
		const esc = frappe.utils.escape_html;
		const meta_fields = frappe.get_meta(doctype).fields;
		const option = (df, table) => ({
			value: table ? `${table}.${df.fieldname}` : df.fieldname,
			label: `${table ? table + "." : ""}${df.fieldname} (${esc(__(df.label || df.fieldname))})`,
		});
		const has_value = (df) => !frappe.model.no_value_type.includes(df.fieldtype);
		const value_fields = meta_fields
			.filter(has_value)
			.map((df) => option(df))
			.concat([{ value: "docstatus", label: "docstatus" }, { value: "owner", label: "owner" }]);
		const is_user = (df) => (df.fieldtype === "Link" && df.options === "User") || df.options === "Email";
		let user_fields = [{ value: "owner", label: `owner (${__("Created By")})` }];
		// Value Change also watches a field of a child table's rows (table.field)
		let change_fields = [...value_fields];
		for (const df of meta_fields) {
			if (is_user(df)) user_fields.push(option(df));
			if (frappe.model.table_fields.includes(df.fieldtype)) {
				for (const child of frappe.get_meta(df.options)?.fields || []) {
					if (is_user(child)) user_fields.push(option(child, df.fieldname));
					if (has_value(child)) change_fields.push(option(child, df.fieldname));
				}
			}
		}
		// time rules count from a Date or Datetime field, as Notification's Days Before/After
		const stamps = [
			{ value: "creation", label: `creation (${__("Created On")})` },
			{ value: "modified", label: `modified (${__("Last Modified On")})` },
		];
		const of_type = (...types) => meta_fields.filter((df) => types.includes(df.fieldtype)).map((df) => option(df));
		return {
			value_fields,
			user_fields,
			change_fields,
			date_fields: of_type("Date", "Datetime").concat(stamps),
			datetime_fields: of_type("Datetime").concat(stamps),
		};
	},

	stored_filters(text, doctype) {
		// the rule's filters as the editor takes them ([doctype, field, operator, value]), from any
		// shape a file may hold; unreadable text shows as no filters (the live check names it)
		let filters;
		try {
			filters = JSON.parse(text || "[]");
		} catch (e) {
			return [];
		}
		if (filters && !Array.isArray(filters) && typeof filters === "object") {
			filters = Object.entries(filters).map(([field, v]) => (Array.isArray(v) ? [field, ...v] : [field, "=", v]));
		}
		if (!Array.isArray(filters)) return [];
		return filters
			.filter((f) => Array.isArray(f) && f.length >= 3)
			.map((f) => (f.length === 3 ? [doctype, ...f] : [f[0] || doctype, f[1], f[2], f[3]]));
	},

	show_problems(frm, problems) {
		frm.set_intro("");
		if (!problems.length) return;
		const items = problems
			.map((p) => `<li><b>${frappe.utils.escape_html(p.field)}</b>: ${frappe.utils.escape_html(p.problem)}</li>`)
			.join("");
		frm.set_intro(`${__("This rule will not save yet:")}<ul>${items}</ul>`, "red");
	},

	verdict_pill(verdict) {
		const color = verdict === "deliver" ? "green" : verdict === "batched" ? "orange" : "gray";
		return `<span class="indicator-pill ${color}">${frappe.utils.escape_html(__(verdict))}</span>`;
	},

	preview_html(result) {
		const esc = frappe.utils.escape_html;
		const condition =
			result.condition === null || result.condition === undefined
				? __("no condition")
				: result.condition
				? __("true")
				: __("false");
		const head = `
			<div class="rt-preview-summary">
				<p><b>${__("Document")}</b>: ${esc(result.doctype)} ${esc(result.docname)} &middot; <b>${__("Event")}</b>: ${esc(result.event)}</p>
				<p><b>${__("Condition")}</b>: ${esc(condition)} &middot; <b>${__("Result")}</b>:
					<span class="indicator-pill ${result.fired ? "green" : "gray"}">${
						result.sent !== undefined
							? __("test fire: sent to {0}", [result.sent])
							: result.fired
							? __("would fire")
							: __("would not fire")
					}</span>
					${esc(result.reason || "")}</p>
				${result.error ? `<p class="text-danger"><b>${__("Error")}</b>: ${esc(result.error.field)}: ${esc(result.error.problem)}</p>` : ""}
				${ui.due_html(result.due)}
			</div>`;
		const rows = (result.recipients || [])
			.map(
				(r) => `<tr>
					<td>${esc(r.user || r.room)}${r.preference ? `<div class="text-muted small rt-preference">${esc(__(r.preference))}</div>` : ""}</td>
					<td>${esc(__(r.source))}</td>
					<td>${ui.verdict_pill(r.verdict)}</td>
					<td><div class="rt-subject">${describe(r).title}</div>
						<div class="text-muted small">${describe(r).body}</div></td>
				</tr>`
			)
			.join("");
		const shown = (result.recipients || []).length;
		const sample =
			result.total > shown
				? `<p class="text-muted rt-preview-sample">${__("Showing {0} of {1} recipients, those who would get it first. In all: {2}", [
						shown,
						result.total,
						Object.entries(result.counts || {})
							.map(([verdict, n]) => `${n} ${esc(__(verdict))}`)
							.join(", "),
				  ])}</p>`
				: "";
		const table = rows
			? sample +
			  `<table class="table table-bordered table-sm rt-recipients"><thead><tr>
				<th>${__("Recipient")}</th><th>${__("Audience")}</th><th>${__("Verdict")}</th><th>${__("Subject and message")}</th>
			</tr></thead><tbody>${rows}</tbody></table>`
			: `<p class="text-muted">${__("No recipients.")}</p>`;
		return head + table;
	},

	due_html(due) {
		// a time rule: when this document's message is due, and when the send window lets it out
		if (!due) return "";
		const esc = frappe.utils.escape_html;
		if (!due.due_at) return `<p class="text-muted">${__("The document's date is empty: no message is due.")}</p>`;
		const held = due.send_at && due.send_at !== due.due_at;
		return `<p><b>${__("Due")}</b>: ${esc(due.due_at)}${
			held ? ` &middot; <b>${__("held by the send window until")}</b> ${esc(due.send_at)}` : ""
		}</p>`;
	},

	show_preview(result) {
		const dialog = new frappe.ui.Dialog({
			title: __("Preview of {0}", [frappe.utils.escape_html(result.rule)]),
			size: "extra-large",
			fields: [{ fieldtype: "HTML", fieldname: "out" }],
		});
		dialog.fields_dict.out.$wrapper.html(ui.preview_html(result));
		dialog.show();
	},

	backtest_html(report) {
		// what the rule would have sent: the totals, per day, per recipient, a few messages,
		// and what history could not tell
		const esc = frappe.utils.escape_html;
		const table = (head, rows) =>
			rows.length
				? `<table class="table table-bordered table-sm"><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead>
					<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`
				: "";
		const summary = `<p class="rt-backtest-summary">${__(
			"From {0} to {1}: {2} event(s) replayed, the rule fired {3} time(s), {4} message(s) to {5} recipient(s).",
			[
				esc(moment(report.from).format("YYYY-MM-DD HH:mm")),
				esc(moment(report.to).format("YYYY-MM-DD HH:mm")),
				report.events,
				report.fired,
				report.deliveries,
				report.recipients,
			]
		)}${report.summaries ? " " + __("({0} of them summaries of batched messages)", [report.summaries]) : ""} ${__("Nothing was sent.")}</p>`;
		const notes = (report.notes || []).concat(report.errors || []);
		const notes_html = notes.length ? `<div class="alert alert-warning">${notes.map((n) => `<div>${esc(n)}</div>`).join("")}</div>` : "";
		const days = table(
			[__("Day"), __("Events"), __("Fired"), __("Messages")],
			report.per_day.map((d) => [esc(d.date), d.events, d.fired, d.deliveries])
		);
		const people = table(
			[__("Recipient"), __("Messages")],
			report.per_recipient.map((r) => [esc(r.recipient), r.deliveries])
		);
		const not_fired = table(
			[__("Not fired because"), __("Times")],
			report.not_fired.map((r) => [esc(r.reason), r.count])
		);
		const samples = table(
			[__("When"), __("Document"), __("To"), __("Subject and message")],
			report.samples.map((m) => {
				const text = describe(m);
				return [esc(m.time), esc(m.docname), esc(m.recipient), `<div>${text.title}</div><div class="text-muted small">${text.body}</div>`];
			})
		);
		return summary + notes_html + days + people + not_fired + samples;
	},

	fired_alert(result) {
		if (result.error) {
			frappe.msgprint({
				title: __("Rule failed"),
				indicator: "red",
				message: frappe.utils.escape_html(`${result.error.field}: ${result.error.problem}`),
			});
			return;
		}
		if (result.queued) {
			frappe.show_alert({ message: __("Sending in the background; a progress bar follows"), indicator: "blue" });
			return;
		}
		frappe.show_alert({ message: __("Sent to {0} recipient(s)", [result.sent]), indicator: result.sent ? "green" : "orange" });
	},

	activity_table(entries) {
		const esc = frappe.utils.escape_html;
		if (!entries.length) return `<p class="text-muted">${__("No evaluations yet.")}</p>`;
		const rows = entries
			.map(
				(e) => `<tr>
					<td class="text-nowrap">${esc(moment(e.time).format("YYYY-MM-DD HH:mm:ss"))}</td>
					<td>${esc(e.rule || "")}</td>
					<td>${esc(e.doctype)} <a href="/app/${esc(frappe.router.slug(e.doctype))}/${encodeURIComponent(e.docname)}">${esc(e.docname)}</a></td>
					<td>${esc(e.event)}${e.test ? ` <span class="indicator-pill blue">${__("test")}</span>` : ""}</td>
					<td>${this.result_pill(e)}</td>
					<td>${esc(e.error || e.reason || "")}${this.activity_notes(e)}</td>
					<td class="text-right">${esc(e.recipients)}</td>
				</tr>`
			)
			.join("");
		return `<table class="table table-sm table-hover rt-activity"><thead><tr>
			<th>${__("Time")}</th><th>${__("Rule")}</th><th>${__("Document")}</th><th>${__("Event")}</th><th>${__("Result")}</th><th>${__("Why")}</th><th class="text-right">${__("Recipients")}</th>
		</tr></thead><tbody>${rows}</tbody></table>`;
	},

	result_pill(e) {
		const [color, label] = e.error
			? ["red", __("error")]
			: e.fired
			? ["green", __("fired")]
			: e.deferred
			? ["blue", __("to a job")]
			: ["gray", __("not fired")];
		return `<span class="indicator-pill ${color}">${label}</span>`;
	},

	activity_notes(e) {
		// what a large audience's delivery job reports, and values that name no user
		const esc = frappe.utils.escape_html;
		const notes = [];
		if (e.job) {
			const p = e.progress;
			const state = !p ? __("queued") : p.error ? __("stopped") : p.done ? __("done") : __("running");
			notes.push(
				p
					? __("Delivery job {0}: {1} delivered, {2} recipients decided", [state, p.delivered, p.decided])
					: __("Delivery job {0}", [state])
			);
		}
		if (e.unknown_users && e.unknown_users.length) {
			notes.push(__("No such user: {0}", [e.unknown_users.join(", ")]));
		}
		return notes.map((note) => `<br><small class="text-muted">${esc(note)}</small>`).join("");
	},

	problems_html(result) {
		const esc = frappe.utils.escape_html;
		if (!result.problems.length) {
			return `<p class="text-success">${__("{0} document(s) are valid and ready to import.", [result.count])}</p>`;
		}
		const rows = result.problems
			.map((p) => `<tr><td>${esc(p.rule)}</td><td>${esc(p.field)}</td><td>${esc(p.problem)}</td></tr>`)
			.join("");
		return `<p class="text-danger">${__("Nothing will be imported until every problem is fixed:")}</p>
			<table class="table table-sm"><thead><tr><th>${__("Rule")}</th><th>${__("Field")}</th><th>${__("Problem")}</th></tr></thead>
			<tbody>${rows}</tbody></table>`;
	},

	download(filename, text) {
		const blob = new Blob([text], { type: "application/json" });
		const link = document.createElement("a");
		link.href = URL.createObjectURL(blob);
		link.download = filename;
		document.body.appendChild(link);
		link.click();
		setTimeout(() => {
			URL.revokeObjectURL(link.href);
			link.remove();
		}, 100);
	},
};
