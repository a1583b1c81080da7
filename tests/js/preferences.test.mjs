// The recipient's preferences on the desk: a message marked `alert: false` (live alert off, or quiet
// hours) pops up nowhere, live or replayed, and still counts in the inbox.
import test from "node:test";
import assert from "node:assert/strict";

import { chooseAction, keptInInbox, planReplay } from "../../rt_studio/public/js/runtime/logic.js";

const message = (extra = {}) => ({ rule: "r", display: "Alert", doctype: "ToDo", docname: "T1", seq: 7, ...extra });

test("a held message shows nothing, an ordinary one alerts", () => {
	assert.deepEqual(chooseAction(message({ alert: false })), { action: "none" });
	assert.deepEqual(chooseAction(message({ alert: false, display: "Sticky" })), { action: "none" });
	assert.deepEqual(chooseAction(message()), { action: "alert" });
});

test("a held message is still counted in the inbox", () => {
	assert.equal(keptInInbox(message({ alert: false })), true);
});

test("replayed after a reconnect, held messages stay out of the summary", () => {
	const plan = planReplay([message({ alert: false }), message({ seq: 8 }), message({ seq: 9, alert: false })]);
	assert.equal(plan.single.message.seq, 8);
	assert.deepEqual(plan.summary, []);
});
