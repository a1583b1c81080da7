// node --test tests/js : the inbox's pure logic (badge, merging pages, changes from other tabs).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
	UnreadCounter,
	applyChange,
	keptInInbox,
	mergeItems,
	plainText,
	wantsSystemNotification,
} from "../../rt_studio/public/js/runtime/logic.js";

const message = (seq, extra = {}) => ({ seq, rule: "R", display: "Alert", ...extra });

test("keptInInbox mirrors the server: numbered rule or channel messages meant to be read", () => {
	assert.equal(keptInInbox(message(5)), true);
	assert.equal(keptInInbox(message(5, { rule: null, channel: "ops" })), true);
	assert.equal(keptInInbox(message(5, { display: "Notification Log" })), true);
	assert.equal(keptInInbox(message(5, { display: "Refresh List" })), false);
	assert.equal(keptInInbox(message(5, { display: "Custom" })), false);
	assert.equal(keptInInbox(message(null)), false); // one Redis could not number
	assert.equal(keptInInbox(message(5, { room: "doc:ToDo/1" })), false); // to a document's viewers
	assert.equal(keptInInbox(message(5, { rule: null })), false);
});

test("UnreadCounter counts each new message once and takes the server's count", () => {
	const counter = new UnreadCounter(2, 8);
	assert.equal(counter.delivered(message(10)), true);
	assert.equal(counter.delivered(message(10)), false); // the same message again (a replay)
	assert.equal(counter.delivered(message(11, { display: "Refresh Form" })), false);
	assert.equal(counter.delivered(message(7)), false); // in the count it started from
	assert.equal(counter.unread, 3);
	assert.equal(counter.delivered(message(12)), true);
	// another tab read two; the server counted when its newest was 10: 12 came after, so it adds
	counter.set({ unread: 1, latest: 10 });
	assert.equal(counter.unread, 2);
	assert.equal(counter.label(), "2");
	counter.set({ unread: 0, latest: 12 });
	assert.equal(counter.label(), "");
	counter.set({ unread: 150, latest: 12 });
	assert.equal(counter.label(), "99+");
});

test("mergeItems keeps newest first and each seq once", () => {
	const items = mergeItems([message(5), message(3)], [message(4), message(5, { read_at: "x" })]);
	assert.deepEqual(items.map((i) => i.seq), [5, 4, 3]);
	assert.equal(items[0].read_at, "x");
});

test("applyChange marks read (and seen), seen, and drops archived items", () => {
	const items = [message(3), message(2), message(1)];
	const read = applyChange(items, { read: [2] }, "T");
	assert.deepEqual(read.map((i) => [i.seq, i.read_at ?? null, i.seen_at ?? null]), [[3, null, null], [2, "T", "T"], [1, null, null]]);
	const all = applyChange(items, { read: "all" }, "T");
	assert.ok(all.every((i) => i.read_at === "T"));
	assert.deepEqual(applyChange(items, { archived: [3, 1] }, "T").map((i) => i.seq), [2]);
	assert.deepEqual(applyChange(items, { seen: [1] }, "T")[2].seen_at, "T");
});

test("a system notification only for a hidden tab, a rule that asks and a user who allowed it", () => {
	const asks = message(1, { browser_notification: true });
	assert.equal(wantsSystemNotification(asks, "hidden", "granted"), true);
	assert.equal(wantsSystemNotification(asks, "visible", "granted"), false);
	assert.equal(wantsSystemNotification(asks, "hidden", "default"), false);
	assert.equal(wantsSystemNotification(asks, "hidden", "denied"), false);
	assert.equal(wantsSystemNotification(message(1), "hidden", "granted"), false);
});

test("plainText shows server markup as the text it stands for", () => {
	assert.equal(plainText("<b>Order &lt;1&gt;</b> &amp; co"), "Order <1> & co");
	assert.equal(plainText(null), "");
});
