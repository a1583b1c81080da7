// RT Studio client runtime, included in every desk page (hooks.app_include_js).
// Listens for RT Studio's realtime events and shows each as its rule's `display` asks; after
// every socket reconnect it re-joins the page's rooms and shows what it missed, once: the user's
// messages and those to the open form's viewers.
// Decisions and escaping live in ./runtime/logic.js (tested with node); this file is glue.

import {
	ConsoleLog,
	GAP_MS,
	MUTE_CHOICES,
	RoomSeqs,
	SeqTracker,
	chooseAction,
	createCoalescer,
	describe,
	escapeHtml,
	eventNames,
	formRoom,
	indicatorOf,
	muteLinks,
	muteTargetOf,
	planReplay,
	reconnectDelay,
	roomsToRejoin,
	secondsOf,
	summaryOf,
	widgetsToRefresh,
} from "./runtime/logic.js";
import { ui } from "./desk_ui.js";
import { add_menu_item, mute, my_notifications } from "./my_notifications.js";
import { Inbox } from "./inbox.js";

frappe.provide("rt_studio");

const LIST_REFRESH_MS = 2000;
const DASHBOARD_REFRESH_MS = 2000;
// A summary of missed messages stays longer than a single alert: it lists several.
const SUMMARY_SECONDS = 15;

class RealtimeRuntime {
	constructor() {
		this.console = new ConsoleLog(200);
		this.list_refreshers = {};
		this.dashboard_refreshers = {};
		this.events = [];
		// Number Card and Dashboard Chart widgets made on this page (see track_widgets)
		this.widgets = new Set();
		// list rooms this page joined: Frappe's client forgets them when the socket reconnects
		this.doctype_rooms = new Set();
		this.reconnect_attempts = 0;
		this.inbox = new Inbox();
		// numbers of the document rooms' messages (Document Viewers) shown on this page
		this.room_seqs = new RoomSeqs();
	}

	start() {
		if (this.started || !frappe.realtime) return;
		this.started = true;
		const boot = frappe.boot.rt_studio || {};
		this.seq = new SeqTracker(boot.seq || 0);
		this.listen(eventNames(boot.events));
		this.watch_socket();
		add_menu_item();
		this.inbox.start();
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
		if (message.room) {
			this.form_room(); // start from the form's number if the message is for the form on screen
			if (!this.room_seqs.accept(message.room, message.seq)) return;
		} else if (this.seq && !this.seq.accept(message.seq)) {
			return; // shown already (replayed or twice)
		} else if (this.seq && this.seq.hasGap()) {
			this.catch_up_gap();
		}
		this.console.add(event, message);
		this.show(chooseAction(message, this.view()).action, message);
		this.inbox.delivered(message);
	}

	view() {
		const route = frappe.get_route() || [];
		const dirty = !!(window.cur_frm && cur_frm.doc && cur_frm.is_dirty && cur_frm.is_dirty());
		return { route, dirty };
	}

	show(action, message) {
		const handler = this[`show_${action}`];
		if (handler) handler.call(this, message);
	}

	// ------------------------------------------------------------ reconnect and replay

	watch_socket() {
		const socket = frappe.realtime.socket;
		if (!socket) return;
		socket.on("connect", () => {
			this.reconnect_attempts = 0;
			this.rejoin_rooms();
			this.catch_up();
			this.catch_up_room();
		});
		// socket.io gives up after 3 attempts (Frappe's setting): keep trying, more slowly
		socket.io.on("reconnect_failed", () => this.connect_later());
		window.addEventListener("online", () => this.connect_now());
		document.addEventListener("visibilitychange", () => {
			if (document.visibilityState === "visible") this.connect_now();
		});
		if (socket.connected) this.catch_up(); // what came between the page's boot and now
	}

	connect_now() {
		const socket = frappe.realtime.socket;
		if (socket && !socket.connected) socket.connect();
	}

	connect_later() {
		clearTimeout(this.reconnect_timer);
		this.reconnect_timer = setTimeout(() => this.connect_now(), reconnectDelay(this.reconnect_attempts++));
	}

	rejoin_rooms() {
		const socket = frappe.realtime.socket;
		for (const [event, ...args] of roomsToRejoin(frappe.realtime.open_docs, this.doctype_rooms, frappe.get_route() || [])) {
			socket.emit(event, ...args);
		}
	}

	async catch_up() {
		if (this.fetching) {
			this.fetch_again = true;
			return;
		}
		this.fetching = true;
		try {
			const messages = await frappe.xcall("rt_studio.api.missed", { since: this.seq.since() });
			this.replay(this.seq.caughtUp(messages));
		} catch (e) {
			console.warn("RT Studio: could not fetch the messages missed while offline", e);
		} finally {
			this.fetching = false;
			if (this.fetch_again) {
				this.fetch_again = false;
				this.catch_up();
			}
		}
	}

	/** A number below this message's is missing: ask `missed` for it unless it comes within GAP_MS. */
	catch_up_gap() {
		if (this.gap_timer) return;
		this.gap_timer = setTimeout(() => {
			this.gap_timer = null;
			if (this.seq.hasGap()) this.catch_up();
		}, GAP_MS);
	}

	/** The open form's room, followed from the number it had when the form loaded; null if none. */
	form_room() {
		const route = frappe.get_route() || [];
		const room = formRoom(route);
		const frm = window.cur_frm;
		if (!room || !frm || !frm.doc || frm.doctype !== route[1] || frm.docname !== route[2]) return null;
		this.room_seqs.open(room, (frm.doc.__onload || {}).rt_studio_room_seq);
		return { room, doctype: route[1], docname: route[2] };
	}

	/** What was sent to the open form's viewers while the socket was down, shown once. */
	async catch_up_room() {
		const form = this.form_room();
		const since = form && this.room_seqs.since(form.room);
		if (since === null || since === undefined) return;
		try {
			const messages = await frappe.xcall("rt_studio.api.missed_room", {
				doctype: form.doctype,
				docname: form.docname,
				since,
			});
			this.replay(this.room_seqs.caughtUp(form.room, messages));
		} catch (e) {
			console.warn("RT Studio: could not fetch the form's messages missed while offline", e);
		}
	}

	replay(messages) {
		if (!messages.length) return;
		for (const message of messages) {
			this.console.add("missed", message);
			this.inbox.delivered(message, false);
		}
		const plan = planReplay(messages, this.view());
		if (plan.single) {
			// Frappe's own bell event was missed too: show the message instead
			this.show(plan.single.action === "bell" ? "alert" : plan.single.action, plan.single.message);
		}
		if (plan.summary.length) this.show_summary(plan.summary);
		for (const refresh of plan.refreshes) this.show(refresh.action, refresh.message);
	}

	show_summary(messages) {
		const summary = summaryOf(messages);
		const title = __("{0} notifications while you were offline", [messages.length]);
		if (summary.sticky) {
			const dialog = new frappe.ui.Dialog({ title, fields: [{ fieldtype: "HTML", fieldname: "body" }] });
			dialog.fields_dict.body.$wrapper.html(summary.html);
			dialog.show();
		} else {
			frappe.show_alert({ message: `<b>${escapeHtml(title)}</b>`, body: summary.html, indicator: summary.indicator }, SUMMARY_SECONDS);
		}
	}

	// ------------------------------------------------------------ displays

	mute_actions(message) {
		const target = muteTargetOf(message);
		if (!target) return {};
		return Object.fromEntries(MUTE_CHOICES.map((choice, i) => [`rt_mute_${i}`, () => mute(target, choice)]));
	}

	show_alert(message) {
		const { text } = describe(message);
		frappe.show_alert(
			{ message: text, indicator: indicatorOf(message), subtitle: muteLinks(message, __) },
			secondsOf(message),
			this.mute_actions(message)
		);
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
		const $body = dialog.fields_dict.body.$wrapper.html(
			`<div class="rt-studio-sticky indicator-pill ${indicatorOf(message)}" style="margin-bottom: var(--margin-sm)">${title}</div>` +
				`<div class="rt-studio-sticky-body">${body}</div>` +
				`<div style="margin-top: var(--margin-md)">${muteLinks(message, __)}</div>`
		);
		for (const [action, handler] of Object.entries(this.mute_actions(message))) {
			$body.find(`[data-action=${action}]`).on("click", () => {
				dialog.hide();
				handler();
			});
		}
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

	show_refresh_dashboard(message) {
		const doctype = message.doctype;
		if (!this.dashboard_refreshers[doctype]) {
			this.dashboard_refreshers[doctype] = createCoalescer(() => this.refresh_widgets(doctype), DASHBOARD_REFRESH_MS);
		}
		this.dashboard_refreshers[doctype]();
	}

	/** Re-run, as this user, every Number Card and Dashboard Chart on screen built on `doctype`. */
	refresh_widgets(doctype) {
		const widgets = [...this.widgets].map((widget) => ({
			widget,
			doctype: widget_doctype(widget),
			connected: !!(widget.widget && document.body.contains(widget.widget[0])),
		}));
		for (const entry of widgets) if (!entry.connected) this.widgets.delete(entry.widget);
		for (const { widget } of widgetsToRefresh(widgets, doctype)) refresh_widget(widget);
	}

	// ------------------------------------------------------------ what Frappe does not track

	/** Remember the Number Card and Chart widgets Frappe makes (workspaces and Dashboards). */
	track_widgets() {
		const make = frappe.widget && frappe.widget.make_widget;
		if (!make || make.rt_studio) return;
		const widgets = this.widgets;
		const tracking = function (opts) {
			const widget = make.apply(this, arguments);
			if (widget && opts && (opts.widget_type === "number_card" || opts.widget_type === "chart")) widgets.add(widget);
			return widget;
		};
		tracking.rt_studio = true;
		frappe.widget.make_widget = tracking;
	}

	/** Remember the list rooms the page joins, to join them again after a reconnect. */
	track_doctype_rooms() {
		const realtime = frappe.realtime;
		if (!realtime || realtime.doctype_subscribe.rt_studio) return;
		const rooms = this.doctype_rooms;
		const subscribe = realtime.doctype_subscribe;
		const unsubscribe = realtime.doctype_unsubscribe;
		realtime.doctype_subscribe = function (doctype, ...rest) {
			if (!rest.length) rooms.add(doctype);
			return subscribe.call(this, doctype, ...rest);
		};
		realtime.doctype_subscribe.rt_studio = true;
		realtime.doctype_unsubscribe = function (doctype) {
			rooms.delete(doctype);
			return unsubscribe.call(this, doctype);
		};
	}
}

/** The DocType a widget counts or charts (None for report and custom widgets). */
function widget_doctype(widget) {
	const card = widget.card_doc;
	if (card) return (card.type || "Document Type") === "Document Type" ? card.document_type : null;
	const chart = widget.chart_doc;
	if (chart && chart.chart_type !== "Report" && chart.chart_type !== "Custom") return chart.document_type;
	return null;
}

function refresh_widget(widget) {
	if (widget.card_doc) {
		// the card's own steps without its "Loading..." placeholder, so the number does not flicker
		if (widget.settings && widget.get_data && widget.render_number) {
			widget.get_data().then(() => {
				widget.render_number();
				if (widget.render_stats) widget.render_stats();
			});
		} else if (widget.render_card) {
			widget.render_card();
		}
	} else if (widget.fetch_and_update_chart) {
		widget.fetch_and_update_chart();
	}
}

rt_studio.runtime = new RealtimeRuntime();
// before the first route renders a workspace or a list: both are made before app_ready
rt_studio.runtime.track_widgets();
rt_studio.runtime.track_doctype_rooms();
rt_studio.escape_html = escapeHtml;
rt_studio.describe = describe;
rt_studio.ui = ui;
rt_studio.my_notifications = my_notifications;

$(document).on("app_ready", () => rt_studio.runtime.start());
if (window.frappe && frappe.boot && frappe.boot.user && document.readyState === "complete") {
	rt_studio.runtime.start();
}
