// node --test tests/js : catching up with a document room's messages (Document Viewers) after a reconnect.
import assert from "node:assert/strict";
import { test } from "node:test";

import { RoomSeqs, formRoom, muteTargetOf } from "../../rt_studio/public/js/runtime/logic.js";

const ROOM = "doc:ToDo/TD-1";
const viewerMessage = (seq, room = ROOM) => ({ seq, room, rule: "R", display: "Alert", subject: `S${seq}`, doctype: "ToDo", docname: "TD-1" });

test("a form asks from the number its room had when it loaded and shows each message once", () => {
	const rooms = new RoomSeqs();
	rooms.open(ROOM, 500);
	assert.equal(rooms.since(ROOM), 500);
	assert.equal(rooms.accept(ROOM, 501), true, "live");
	assert.equal(rooms.accept(ROOM, 501), false, "twice");
	// socket down: 502 and 503 were published meanwhile; 504 arrived live after the reconnect
	assert.equal(rooms.accept(ROOM, 504), true);
	assert.equal(rooms.since(ROOM), 501, "the gap is asked for");
	const fresh = rooms.caughtUp(ROOM, [viewerMessage(502), viewerMessage(503), viewerMessage(504)]);
	assert.deepEqual(fresh.map((m) => m.seq), [502, 503], "504 was shown live");
	assert.equal(rooms.since(ROOM), 504);
	assert.deepEqual(rooms.caughtUp(ROOM, [viewerMessage(503), viewerMessage(504)]), [], "a second answer shows nothing");
});

test("reopening a form keeps the room's numbers; rooms are apart from each other", () => {
	const rooms = new RoomSeqs();
	rooms.open(ROOM, 10);
	rooms.accept(ROOM, 11);
	rooms.open(ROOM, 5); // the form loaded again with an older number: what was shown stays shown
	assert.equal(rooms.accept(ROOM, 11), false);
	rooms.open("doc:ToDo/TD-2", 100);
	assert.equal(rooms.accept("doc:ToDo/TD-2", 11), false, "below the other room's start");
	assert.equal(rooms.accept("doc:ToDo/TD-2", 101), true);
});

test("a room whose start is unknown is not asked from 0; a live message gives its start", () => {
	const rooms = new RoomSeqs();
	rooms.open(ROOM, undefined); // the form loaded before the DocType had rules: no number
	assert.equal(rooms.since(ROOM), null, "not asked: from 0 it would replay messages from before the form was open");
	assert.deepEqual(rooms.caughtUp(ROOM, [viewerMessage(3)]), []);
	assert.equal(rooms.accept(ROOM, 42), true);
	assert.equal(rooms.since(ROOM), 42);
	assert.equal(rooms.accept(ROOM, 42), false);
});

test("the form on screen names its room as the server does", () => {
	assert.equal(formRoom(["Form", "Sales Order", "SO-0001"]), "doc:Sales Order/SO-0001");
	assert.equal(formRoom(["List", "ToDo", "List"]), null);
	assert.equal(formRoom([]), null);
});

test("a room message offers no mute: a mute does not hold back a document's viewers", () => {
	assert.equal(muteTargetOf(viewerMessage(7)), null);
	assert.deepEqual(muteTargetOf({ seq: 7, rule: "R" }), { rule: "R", label: "Mute this rule" });
});
