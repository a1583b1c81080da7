// RT Studio client runtime, included in every desk page (hooks.app_include_js).
// Listens for RT Studio's realtime events and shows each as its rule's `display` asks.
// Decisions and escaping live in ./runtime/logic.js (tested with node); this file is glue.

import {
	ConsoleLog,
	chooseAction,
	createCoalescer,
	describe,
	escapeHtml,
	eventNames,
	indicatorOf,
	secondsOf,
} from "./runtime/logic.js";
import { ui } from "./desk_ui.js";

frappe.provide("rt_studio");

const LIST_REFRESH_MS = 2000;

class RealtimeRuntime {
	constructor() {
		this.console = new ConsoleLog(200);
		this.list_refreshers = {};
		this.events = [];
	}

	start() {
		if (this.started || !frappe.realtime) return;
		this.started = true;
		this.listen(eventNames((frappe.boot.rt_studio || {}).events));
	}

	listen(names) {
		for (const name of names) {
			if (this.events.includes(name)) continue;
			this.events.push(name);
			frappe.realtime.on(name, (message) => this.receive(name, message));
		}
	}

	receive(event, message) {
		if (!message || typeof message !== "object") return;
		this.console.add(event, message);
		const route = frappe.get_route() || [];
		const dirty = !!(window.cur_frm && cur_frm.doc && cur_frm.is_dirty && cur_frm.is_dirty());
		const { action } = chooseAction(message, { route, dirty });
		const handler = this[`show_${action}`];
		if (handler) handler.call(this, message);
	}

	show_alert(message) {
		const { text } = describe(message);
		frappe.show_alert({ message: text, indicator: indicatorOf(message) }, secondsOf(message));
	}

	show_sticky(message) {
		const { title, body } = describe(message);
		const dialog = new frappe.ui.Dialog({
			title: __("Notification"),
			fields: [{ fieldtype: "HTML", fieldname: "body" }],
			primary_action_label: message.doctype && message.docname ? __("Open {0}", [__(message.doctype)]) : __("Close"),
			primary_action: () => {
				dialog.hide();
				if (message.doctype && message.docname) frappe.set_route("Form", message.doctype, message.docname);
			},
		});
		dialog.fields_dict.body.$wrapper.html(
			`<div class="rt-studio-sticky indicator-pill ${indicatorOf(message)}" style="margin-bottom: var(--margin-sm)">${title}</div>` +
				`<div class="rt-studio-sticky-body">${body}</div>`
		);
		dialog.show();
	}

	show_bell() {
		// Frappe's Notification Log publishes its own "notification" event after commit: the
		// bell updates by itself. Nothing else to show.
	}

	show_reload_form(message) {
		cur_frm.reload_doc();
		frappe.show_alert({ message: describe(message).text, indicator: indicatorOf(message) }, 3);
	}

	show_form_banner(message) {
		const who = message.actor ? escapeHtml(message.actor) : __("someone");
		cur_frm.dashboard.set_headline_alert(
			`${__("This document was changed by {0} while you were editing. Save or reload to see it.", [who])}`,
			"yellow"
		);
	}

	show_refresh_list(message) {
		const doctype = message.doctype;
		if (!this.list_refreshers[doctype]) {
			this.list_refreshers[doctype] = createCoalescer(() => {
				const list = window.cur_list;
				if (list && list.doctype === doctype && list.refresh) list.refresh();
			}, LIST_REFRESH_MS);
		}
		this.list_refreshers[doctype]();
	}
}

rt_studio.runtime = new RealtimeRuntime();
rt_studio.escape_html = escapeHtml;
rt_studio.describe = describe;
rt_studio.ui = ui;

$(document).on("app_ready", () => rt_studio.runtime.start());
if (window.frappe && frappe.boot && frappe.boot.user && document.readyState === "complete") {
	rt_studio.runtime.start();
}
