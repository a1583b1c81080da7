// node --test tests/js : the client runtime's pure logic.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
	ConsoleLog,
	chooseAction,
	createCoalescer,
	describe,
	escapeHtml,
	eventNames,
	indicatorOf,
	sanitizeHtml,
	secondsOf,
} from "../../rt_studio/public/js/runtime/logic.js";

const XSS = "<img src=x onerror=alert(1)>";

test("escapeHtml shows markup as text", () => {
	assert.equal(escapeHtml(XSS), "&lt;img src=x onerror=alert(1)&gt;");
	assert.equal(escapeHtml(`"a" & 'b'`), "&quot;a&quot; &amp; &#39;b&#39;");
	assert.equal(escapeHtml(null), "");
	assert.equal(escapeHtml(42), "42");
});

test("sanitizeHtml keeps author markup and neutralises everything else", () => {
	assert.equal(sanitizeHtml("<b>Closed</b> by <i>ana</i>"), "<b>Closed</b> by <i>ana</i>");
	assert.equal(sanitizeHtml(XSS), "&lt;img src=x onerror=alert(1)&gt;");
	assert.equal(sanitizeHtml("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
	assert.equal(sanitizeHtml('<b onclick="x()">hi</b>'), "<b>hi</b>");
	assert.equal(sanitizeHtml('<span style="x" onmouseover="y">s</span>'), "<span>s</span>");
});

test("sanitizeHtml keeps safe links only", () => {
	assert.equal(sanitizeHtml('<a href="/app/todo/TD-1">open</a>'), '<a href="/app/todo/TD-1" rel="noopener noreferrer">open</a>');
	assert.equal(sanitizeHtml('<a href="javascript:alert(1)">x</a>'), "<a>x</a>");
	assert.equal(sanitizeHtml('<a href="java&#58;script:alert(1)">x</a>'), "<a>x</a>");
	assert.equal(sanitizeHtml("<a href=' JAVASCRIPT:alert(1)'>x</a>"), "<a>x</a>");
	assert.equal(sanitizeHtml('<a href="https://example.com/?a=1&b=2">x</a>'), '<a href="https://example.com/?a=1&amp;b=2" rel="noopener noreferrer">x</a>');
});

test("sanitizeHtml leaves the server's escaping intact and escapes stray brackets", () => {
	// the server sends document values already escaped: they must not be double-escaped
	assert.equal(sanitizeHtml("&lt;img src=x&gt;"), "&lt;img src=x&gt;");
	assert.equal(sanitizeHtml("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
	assert.equal(sanitizeHtml(undefined), "");
});

test("describe builds a safe title and text, with the channel's name for channel posts", () => {
	const rule = describe({ rule: "R", subject: `ToDo ${XSS}`, message: "<b>done</b>" });
	assert.equal(rule.title, "ToDo &lt;img src=x onerror=alert(1)&gt;");
	assert.equal(rule.text, "ToDo &lt;img src=x onerror=alert(1)&gt;: <b>done</b>");
	const channel = describe({ channel: `ops${XSS}`, subject: "ops", message: "deploy at 5" });
	assert.equal(channel.title, "<b>#ops&lt;img src=x onerror=alert(1)&gt;</b>");
	assert.ok(channel.text.endsWith(": deploy at 5"));
	assert.equal(describe({ rule: `<i>${XSS}</i>` }).title, "&lt;i&gt;&lt;img src=x onerror=alert(1)&gt;&lt;/i&gt;");
});

test("indicator and seconds fall back to safe values", () => {
	assert.equal(indicatorOf({ indicator: "red" }), "red");
	assert.equal(indicatorOf({ indicator: "red onload=x" }), "blue");
	assert.equal(secondsOf({ alert_seconds: 9 }), 9);
	assert.equal(secondsOf({ alert_seconds: "x" }), 5);
	assert.equal(secondsOf({ alert_seconds: 0 }), 5);
	assert.equal(secondsOf({ alert_seconds: 10000 }), 120);
});

test("chooseAction follows the display and what is on screen", () => {
	const msg = (display) => ({ display, doctype: "ToDo", docname: "TD-1" });
	const form = { route: ["Form", "ToDo", "TD-1"] };
	assert.deepEqual(chooseAction(msg("Alert"), {}), { action: "alert" });
	assert.deepEqual(chooseAction(msg("Sticky"), {}), { action: "sticky" });
	assert.deepEqual(chooseAction(msg("Notification Log"), {}), { action: "bell" });
	assert.deepEqual(chooseAction(msg("Custom"), form), { action: "none" });
	assert.deepEqual(chooseAction(msg("Refresh Form"), form), { action: "reload_form" });
	assert.deepEqual(chooseAction(msg("Refresh Form"), { ...form, dirty: true }), { action: "form_banner" });
	assert.deepEqual(chooseAction(msg("Refresh Form"), { route: ["Form", "ToDo", "TD-2"] }), { action: "none" });
	assert.deepEqual(chooseAction(msg("Refresh List"), { route: ["List", "ToDo", "List"] }), { action: "refresh_list" });
	assert.deepEqual(chooseAction(msg("Refresh List"), { route: ["List", "Note", "List"] }), { action: "none" });
	assert.deepEqual(chooseAction(msg("Bogus"), {}), { action: "alert" });
});

function fakeTimers() {
	let now = 0;
	const queue = [];
	return {
		now: () => now,
		setTimeout: (fn, ms) => queue.push({ at: now + ms, fn }),
		clearTimeout: () => {},
		advance(ms) {
			now += ms;
			for (const item of queue.splice(0).sort((a, b) => a.at - b.at)) {
				if (item.at <= now) item.fn();
				else queue.push(item);
			}
		},
	};
}

test("a burst of 100 saves refreshes a list at most a few times", () => {
	const timers = fakeTimers();
	let refreshes = 0;
	const trigger = createCoalescer(() => refreshes++, 2000, timers);
	for (let i = 0; i < 100; i++) {
		trigger();
		timers.advance(10); // 100 events over one second
	}
	timers.advance(5000);
	assert.equal(refreshes, 2, "one at once, one trailing");
});

test("coalescer runs again after a quiet period and never loses the last event", () => {
	const timers = fakeTimers();
	let refreshes = 0;
	const trigger = createCoalescer(() => refreshes++, 1000, timers);
	trigger();
	assert.equal(refreshes, 1);
	timers.advance(300);
	trigger();
	assert.equal(refreshes, 1, "folded into a trailing run");
	timers.advance(700);
	assert.equal(refreshes, 2, "trailing run happened");
	timers.advance(5000);
	trigger();
	assert.equal(refreshes, 3, "after a quiet period it runs at once");
});

test("console log is bounded, newest first, and notifies subscribers", () => {
	const log = new ConsoleLog(3);
	const seen = [];
	const unsubscribe = log.subscribe((entry) => seen.push(entry.rule));
	for (const rule of ["a", "b", "c", "d"]) log.add("rt_studio", { rule });
	assert.deepEqual(log.entries.map((e) => e.rule), ["d", "c", "b"]);
	assert.deepEqual(seen, ["a", "b", "c", "d"]);
	unsubscribe();
	log.add("rt_studio", { rule: "e" });
	assert.equal(seen.length, 4);
});

test("eventNames adds configured names and rejects junk", () => {
	assert.deepEqual(eventNames(["orders_live", "rt_studio", "bad name!", 7]), ["rt_studio", "rt_studio_channel", "orders_live"]);
	assert.deepEqual(eventNames(undefined), ["rt_studio", "rt_studio_channel"]);
});
