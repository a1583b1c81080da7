// node --test tests/js : replay after a reconnect, mutes and dashboards in the client runtime.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
	GAP_MS,
	MUTE_CHOICES,
	SeqTracker,
	chooseAction,
	muteLinks,
	muteTargetOf,
	planReplay,
	reconnectDelay,
	roomsToRejoin,
	slug,
	summaryOf,
	widgetsToRefresh,
} from "../../rt_studio/public/js/runtime/logic.js";

const alert = (seq, extra = {}) => ({ seq, rule: "R", display: "Alert", subject: `S${seq}`, doctype: "ToDo", docname: `TD-${seq}`, ...extra });

test("each number is shown once, live or replayed, in any order", () => {
	const seq = new SeqTracker(100);
	assert.equal(seq.accept(101), true);
	assert.equal(seq.accept(101), false, "a repeat is not shown again");
	assert.equal(seq.accept(100), false, "the boot number and below were shown before");
	assert.equal(seq.accept(103), true, "out of order: shown");
	assert.equal(seq.since(), 101, "102 is still missing");
	assert.equal(seq.accept(102), true);
	assert.equal(seq.since(), 103);
	assert.equal(seq.accept(undefined), true, "a message without a number is always shown");
});

test("a missed answer shows only what was not shown and moves past what the log dropped", () => {
	const seq = new SeqTracker(10);
	seq.accept(11);
	seq.accept(14); // live, out of order: 12 and 13 missing
	const fresh = seq.caughtUp([alert(12), alert(14), alert(15)]);
	assert.deepEqual(fresh.map((m) => m.seq), [12, 15], "14 was shown live; 13 is no longer kept");
	assert.equal(seq.since(), 15);
	assert.equal(seq.accept(13), false, "the log's answer covered it");
	assert.deepEqual(seq.caughtUp([]), []);
	assert.equal(seq.since(), 15);
	// a live message that came while the answer was on its way stays shown
	seq.accept(17);
	assert.deepEqual(seq.caughtUp([alert(16), alert(17)]).map((m) => m.seq), [16]);
	assert.equal(seq.since(), 17);
});

test("a gap is open until the missing number comes, live or from a missed answer", () => {
	const seq = new SeqTracker(10);
	seq.accept(11);
	assert.equal(seq.hasGap(), false);
	seq.accept(13); // 12 published out of order, or its publish failed
	assert.equal(seq.hasGap(), true);
	seq.accept(12);
	assert.equal(seq.hasGap(), false, "it came live");
	seq.accept(15);
	assert.deepEqual(seq.caughtUp([alert(14), alert(15)]).map((m) => m.seq), [14]);
	assert.equal(seq.hasGap(), false, "the answer filled it");
	assert.ok(GAP_MS >= 500, "out-of-order publishes of two commits are not taken for a loss");
});

test("numbers that jumped (Redis lost the counter) close after one missed answer, even an empty one", () => {
	const seq = new SeqTracker(500);
	seq.accept(501);
	seq.accept(1733000000001); // the counter starts again from the clock
	assert.equal(seq.hasGap(), true);
	assert.deepEqual(seq.caughtUp([]), [], "the log lost the old entries too");
	assert.equal(seq.hasGap(), false);
	assert.equal(seq.since(), 1733000000001);
	assert.equal(seq.accept(1733000000002), true);
	assert.equal(seq.hasGap(), false);
});

test("a gap that never fills does not grow the memory without bound", () => {
	const seq = new SeqTracker(0, 5);
	for (let n = 2; n <= 10; n++) seq.accept(n); // 1 never comes
	assert.ok(seq.seen.size <= 5);
	assert.equal(seq.accept(10), false);
	assert.equal(seq.accept(11), true);
});

test("several missed messages become one summary; refreshes happen once", () => {
	const view = { route: ["List", "ToDo", "List"] };
	const messages = [
		alert(1),
		alert(2, { display: "Sticky", indicator: "red" }),
		alert(3, { display: "Refresh List" }),
		alert(4, { display: "Refresh List" }),
		alert(5, { display: "Refresh List", doctype: "Note" }), // not on screen
		alert(6, { display: "Custom" }),
	];
	const plan = planReplay(messages, view);
	assert.equal(plan.single, null);
	assert.deepEqual(plan.summary.map((m) => m.seq), [1, 2]);
	assert.deepEqual(plan.refreshes.map((r) => [r.action, r.message.seq]), [["refresh_list", 3]]);
	const one = planReplay([alert(7), alert(8, { display: "Refresh List" })], view);
	assert.equal(one.single.action, "alert");
	assert.equal(one.single.message.seq, 7);
	assert.deepEqual(planReplay([], view), { single: null, summary: [], refreshes: [] });
});

test("the summary lists the messages safely and links each to its document", () => {
	const messages = [
		alert(1, { subject: "<img src=x onerror=alert(1)>" }),
		alert(2, { display: "Sticky", indicator: "orange" }),
		{ seq: 3, rule: "R", subject: "27 more Sales Order changes", doctype: "Sales Order", docname: null, batch_count: 27 },
		{ seq: 4, channel: "ops", subject: "ops", message: "deploy" },
	];
	const summary = summaryOf(messages);
	assert.equal(summary.title, "4 notifications while you were offline");
	assert.ok(summary.html.includes('<a href="/app/todo/TD-1">&lt;img src=x onerror=alert(1)&gt;</a>'));
	assert.ok(summary.html.includes('<a href="/app/sales-order">27 more Sales Order changes</a>'));
	assert.ok(summary.html.includes("<li><b>#ops</b>: deploy</li>"));
	assert.ok(!summary.html.includes("<img"));
	assert.equal(summary.indicator, "orange");
	assert.equal(summary.sticky, true);
	const many = summaryOf(Array.from({ length: 25 }, (_, i) => alert(i + 1)), 10);
	assert.equal((many.html.match(/<li>/g) || []).length, 11);
	assert.ok(many.html.endsWith("<li>… and 15 more</li></ul>"));
	assert.equal(many.sticky, false);
	assert.equal(slug("Sales Order"), "sales-order");
});

test("a reconnect re-joins the document rooms, list rooms and the open form", () => {
	const events = roomsToRejoin(new Set(["ToDo:TD-1", "Sales Order:SO:0001"]), new Set(["ToDo"]), ["Form", "ToDo", "TD-1"]);
	assert.deepEqual(events, [
		["doc_subscribe", "ToDo", "TD-1"],
		["doc_subscribe", "Sales Order", "SO:0001"],
		["doctype_subscribe", "ToDo"],
		["doc_open", "ToDo", "TD-1"],
	]);
	assert.deepEqual(roomsToRejoin(undefined, undefined), []);
});

test("connecting again backs off up to 30 seconds", () => {
	assert.deepEqual([0, 1, 2, 3, 4, 10].map(reconnectDelay), [2000, 4000, 8000, 16000, 30000, 30000]);
});

test("mute is offered for rules and channels, never for a critical rule", () => {
	assert.deepEqual(muteTargetOf({ rule: "R", seq: 7 }), { rule: "R", label: "Mute this rule" });
	assert.deepEqual(muteTargetOf({ channel: "ops", seq: 7 }), { channel: "ops", label: "Mute this channel" });
	assert.equal(muteTargetOf({ rule: "R", seq: 7, critical: true }), null);
	assert.equal(muteTargetOf({ seq: 7 }), null);
	assert.equal(muteTargetOf({ rule: "R", seq: null }), null, "a message without a number is not in the log the server mutes from");
	assert.equal(muteLinks({ rule: "R", seq: 7, critical: true }), "");
	const links = muteLinks({ rule: "<b>R</b>", seq: 7 });
	assert.ok(links.startsWith('<span class="rt-studio-mute text-muted small">Mute this rule: '));
	assert.equal((links.match(/data-action="rt_mute_\d"/g) || []).length, MUTE_CHOICES.length);
	assert.ok(!links.includes("<b>R</b>"), "the rule's name is not in the markup");
	assert.deepEqual(MUTE_CHOICES.map((c) => c.minutes), [60, 1440, null]);
});

test("Refresh Dashboard acts on workspaces and dashboards, for widgets of the message's DocType", () => {
	const msg = { display: "Refresh Dashboard", doctype: "ToDo" };
	assert.deepEqual(chooseAction(msg, { route: ["Workspaces", "Home"] }), { action: "refresh_dashboard" });
	assert.deepEqual(chooseAction(msg, { route: ["dashboard-view", "Projects"] }), { action: "refresh_dashboard" });
	assert.deepEqual(chooseAction(msg, { route: ["List", "ToDo", "List"] }), { action: "none" });
	const widgets = [
		{ doctype: "ToDo", connected: true, id: 1 },
		{ doctype: "ToDo", connected: false, id: 2 },
		{ doctype: "Note", connected: true, id: 3 },
		{ doctype: null, connected: true, id: 4 },
	];
	assert.deepEqual(widgetsToRefresh(widgets, "ToDo").map((w) => w.id), [1]);
});

test("a batch summary of Refresh Form reloads a form it names", () => {
	const summary = { display: "Refresh Form", doctype: "ToDo", docname: null, docnames: ["TD-1", "TD-2"], batch_count: 5 };
	assert.deepEqual(chooseAction(summary, { route: ["Form", "ToDo", "TD-2"] }), { action: "reload_form" });
	assert.deepEqual(chooseAction(summary, { route: ["Form", "ToDo", "TD-3"] }), { action: "none" });
	assert.deepEqual(chooseAction({ ...summary, docnames: undefined }, { route: ["Form", "ToDo", "null"] }), { action: "none" });
});
