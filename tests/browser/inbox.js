// The Realtime inbox in a real desk: one user in two tabs. Messages raise the unread badge in both
// tabs live; reading in one tab lowers it in the other within a second; the drop-down lists newest
// first, loads older pages as it scrolls, opens the document and marks the message read; opened
// again it marks what it shows seen; a tab picked while a page loads shows that tab's messages only; a rule
// marked "Browser Notification" raises a system notification in the hidden tab only (Chromium with
// the permission granted), and clicking it opens the document.
// Needs playwright-core on NODE_PATH (dev/test installs it). Usage:
//   node tests/browser/inbox.js --url http://rt.localhost:8000 --password ADMIN_PASSWORD [--out DIR]
// Makes the rule rt-test-inbox and ToDos of the test user; removes them at the end. Exit 1 when a
// check failed.
"use strict";

const fs = require("fs");
const path = require("path");
const { BASE, PASSWORD, USER, arg, check, deskAsUser, ensureUser, finish, launch, makeRules, must, resource, session } = require("./lib");

const OUT = arg("out", "/tmp/rt-inbox");
const RULE = "rt-test-inbox";
// How soon the other tab must agree (the promise).
const AGREE_MS = 1000;

const badge = (page) => page.evaluate(() => Number($(".rt-inbox").attr("data-unread") || 0));

/** Milliseconds until the tab's badge shows `n` (throws after `timeout`). */
async function untilBadge(page, n, timeout = 10000) {
	const start = Date.now();
	await page.waitForFunction((want) => Number($(".rt-inbox").attr("data-unread")) === want, n, { timeout, polling: 20 });
	return Date.now() - start;
}

/** Open the drop-down with a click (unless it is open already). */
async function openInbox(page) {
	if (!(await page.evaluate(() => $(".rt-inbox").hasClass("show")))) await page.click(".rt-inbox-toggle", { timeout: 10000 });
	await page.waitForSelector(".rt-inbox-menu.show", { timeout: 10000 });
}

const closeInbox = (page) => page.evaluate(() => $(".rt-inbox-toggle").dropdown("hide"));

/** Record, in the page, when its badge last changed (page clock: both tabs share the machine's). */
const watchBadge = (page) =>
	page.evaluate(() => {
		window.rt_badge_changes = [];
		new MutationObserver(() => window.rt_badge_changes.push([Date.now(), Number($(".rt-inbox").attr("data-unread"))])).observe($(".rt-inbox")[0], {
			attributes: true,
			attributeFilter: ["data-unread"],
		});
	});

/** When the page sends its next call of `method` (page clock). */
const watchCall = (page, method) =>
	page.evaluate((method) => {
		const xcall = frappe.xcall;
		frappe.xcall = function (m, ...rest) {
			if (m === method && !window.rt_call_sent) window.rt_call_sent = Date.now();
			return xcall.call(this, m, ...rest);
		};
	}, method);

/** Milliseconds from tab `a`'s call to tab `b`'s badge showing `n`. */
async function agreement(a, b, n) {
	await untilBadge(b, n, 5000);
	const sent = await a.evaluate(() => window.rt_call_sent);
	const changed = await b.evaluate((n) => window.rt_badge_changes.filter(([, v]) => v === n).map(([t]) => t).pop(), n);
	await a.evaluate(() => (window.rt_call_sent = null));
	return changed - sent;
}

/** The message about ToDo `name`'s seen_at on the server, once set (null after `timeout`). */
async function untilSeen(page, name, timeout = 5000) {
	const start = Date.now();
	while (Date.now() - start < timeout) {
		const item = await page.evaluate((n) => frappe.xcall("rt_studio.api.inbox", { limit: 20 }).then((r) => r.items.find((i) => i.docname === n)), name);
		if (item && item.seen_at) return item.seen_at;
		await new Promise((r) => setTimeout(r, 200));
	}
	return null;
}

/** Pick "Unread" with its answer held back 1.5 s in the page, then "Realtime" at once: once the
 * late answer has come too, the list must show the Realtime tab's messages, not the unread ones. */
async function switchTabWhileLoading(page) {
	await page.evaluate(() => {
		const xcall = frappe.xcall;
		window.rt_held = 0;
		window.rt_late = false;
		frappe.xcall = function (method, args) {
			const answer = xcall.call(this, method, args);
			if (method !== "rt_studio.api.inbox" || !args || args.status !== "unread") return answer;
			window.rt_held += 1;
			return answer.then((r) => new Promise((resolve) => setTimeout(() => resolve(r) || (window.rt_late = true), 1500)));
		};
		window.rt_restore_xcall = () => (frappe.xcall = xcall);
	});
	// clicks in the page, 100 ms apart (Playwright's own click waits for the page to settle)
	await page.evaluate(() => {
		document.querySelector('.rt-inbox-tab[data-status="unread"]').click();
		setTimeout(() => document.querySelector('.rt-inbox-tab[data-status="all"]').click(), 100);
	});
	await page.waitForFunction(() => window.rt_late, null, { timeout: 10000 });
	await page.waitForTimeout(500);
	const held = await page.evaluate(() => window.rt_restore_xcall() && window.rt_held);
	const shown = await page.$$eval(".rt-inbox-item", (items) => items.map((i) => Number(i.dataset.seq)));
	const all = await page.evaluate(() => frappe.xcall("rt_studio.api.inbox", { limit: 20 }).then((r) => r.items.map((i) => i.seq)));
	const tab = await page.evaluate(() => $(".rt-inbox-tab.active").data("status"));
	await page.screenshot({ path: path.join(OUT, "inbox-switched.png") });
	check(
		"switching tab while a page loads shows the new tab's messages only",
		held === 1 && tab === "all" && all.length > 1 && JSON.stringify(shown) === JSON.stringify(all),
		`${held} answer held back; tab ${tab}: shows ${shown.length}, the server lists ${all.length}`,
	);
}

async function openDesk(ctx) {
	const page = await ctx.newPage();
	await page.goto(`${BASE}/app/todo`);
	await page.waitForFunction(() => window.frappe && frappe.realtime && frappe.realtime.socket && frappe.realtime.socket.connected && $(".rt-inbox").length, null, { timeout: 30000 });
	return page;
}

/** Insert a ToDo allocated to the test user, as Administrator (whose ToDos the demo rule skips). */
async function makeTodo(admin, description) {
	return (await must(await admin.post(resource("ToDo"), { data: { description, allocated_to: USER } }))).name;
}

/** The server's unread count for the test user, asked from the tab. */
const serverUnread = (page) => page.evaluate(() => frappe.xcall("rt_studio.api.inbox_count").then((b) => b.unread));

/** Record system notifications made in the page, and make it look hidden when `hidden`. */
function watchNotifications(page, hidden) {
	return page.evaluate((hidden) => {
		if (hidden) Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
		const Original = window.Notification;
		window.rt_shown = [];
		window.Notification = class extends Original {
			static get permission() {
				return Original.permission;
			}
			constructor(title, options) {
				super(title, options);
				window.rt_shown.push({ title, body: options && options.body, notification: this });
			}
		};
	}, hidden);
}

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	const admin = await session("Administrator", PASSWORD);
	await ensureUser(admin);
	await makeRules(admin, {
		[RULE]: {
			event: "New",
			audience: [{ audience_type: "User", user: USER }],
			exclude_actor: 0,
			condition: '"inbox-" in (doc.description or "")',
			browser_notification: 1,
		},
	});
	const browser = await launch();
	const ctx = await deskAsUser(browser, admin);
	await ctx.grantPermissions(["notifications"], { origin: BASE });
	const todos = [];
	let tabA, tabB;
	try {
		tabA = await openDesk(ctx);
		tabB = await openDesk(ctx);
		await tabA.evaluate(() => frappe.xcall("rt_studio.api.mark_read", { seqs: "all" }));
		await untilBadge(tabA, 0);
		await untilBadge(tabB, 0);
		check("both tabs show the Realtime inbox with no unread badge", true);

		// two messages arrive: both tabs count them, live
		for (const n of [1, 2]) todos.push(await makeTodo(admin, `inbox-${n} ${Date.now()}`));
		const rose = Math.max(await untilBadge(tabA, 2), await untilBadge(tabB, 2));
		check("a new message raises the badge in both tabs", (await serverUnread(tabA)) === 2, `2 in both and on the server, ${rose} ms after the second save returned`);

		// open the drop-down in tab A: newest first
		await openInbox(tabA);
		await tabA.waitForSelector(".rt-inbox-item", { timeout: 10000 });
		const titles = await tabA.$$eval(".rt-inbox-item", (items) => items.map((i) => i.innerText));
		check("the drop-down lists the messages newest first", titles.length >= 2 && titles[0].includes("inbox-2") && titles[1].includes("inbox-1"), titles.slice(0, 2).map((t) => t.split("\n")[0]).join(" | "));
		await tabA.screenshot({ path: path.join(OUT, "inbox.png") });

		// opening a message: document opens, read in tab A, and tab B agrees within a second
		await watchBadge(tabB);
		await watchCall(tabA, "rt_studio.api.mark_read");
		await tabA.click(".rt-inbox-item >> nth=0");
		const agreed = await agreement(tabA, tabB, 1);
		await tabA.waitForFunction((name) => frappe.get_route_str() === `Form/ToDo/${name}`, todos[1], { timeout: 10000 });
		check("opening a message opens its document", true, await tabA.evaluate(() => frappe.get_route_str()));
		check(`the other tab's badge agrees within ${AGREE_MS} ms after a read`, agreed <= AGREE_MS, `${agreed} ms from the call to the other tab's badge`);

		// mark all as read in tab A: tab B goes to 0 within a second
		await openInbox(tabA);
		await tabA.click(".rt-inbox-read-all");
		const allRead = await agreement(tabA, tabB, 0);
		check(`"Mark all as read" reaches the other tab within ${AGREE_MS} ms`, allRead <= AGREE_MS, `${allRead} ms from the call to the other tab's badge`);
		await closeInbox(tabA);

		// opened again, the drop-down marks what it shows as seen (the list is loaded already)
		const seenTodo = await makeTodo(admin, `inbox-seen ${Date.now()}`);
		todos.push(seenTodo);
		await untilBadge(tabA, 1);
		await openInbox(tabA);
		const seenAt = await untilSeen(tabA, seenTodo);
		check("opening the drop-down again marks the new message seen", Boolean(seenAt), `seen_at ${seenAt}`);

		// switching tab while a page loads: the answer for the tab left behind is dropped
		await switchTabWhileLoading(tabA);
		await tabA.evaluate(() => frappe.xcall("rt_studio.api.mark_read", { seqs: "all" }));
		await untilBadge(tabA, 0);
		await closeInbox(tabA);

		// infinite scroll: 22 more messages, the first page shows 20, scrolling loads the rest
		for (let n = 0; n < 22; n++) todos.push(await makeTodo(admin, `inbox-page-${n}`));
		await untilBadge(tabA, 22, 20000);
		// 22 live alerts stack up to the navbar: dismiss them, as a user would, to reach the inbox
		await tabA.evaluate(() => $("#alert-container").empty());
		await tabA.evaluate(() => rt_studio.runtime.inbox.reload());
		const first = await tabA.$$eval(".rt-inbox-item", (items) => items.length);
		await openInbox(tabA);
		await tabA.evaluate(() => {
			const list = $(".rt-inbox-list")[0];
			list.scrollTop = list.scrollHeight;
		});
		await tabA.waitForFunction((n) => $(".rt-inbox-item").length > n, first, { timeout: 10000 });
		const after = await tabA.$$eval(".rt-inbox-item", (items) => items.length);
		// (the user may have older messages of earlier runs: two pages hold at most 40)
		const listed = await tabA.evaluate(() => frappe.xcall("rt_studio.api.inbox", { limit: 100 }).then((r) => r.items.length));
		check("scrolling to the end loads the next page", first === 20 && after === Math.min(listed, 40) && after >= 24, `${first} then ${after}`);
		await tabA.screenshot({ path: path.join(OUT, "inbox-scrolled.png") });
		await closeInbox(tabA);

		// a system notification in the hidden tab only, and its click opens the document
		await watchNotifications(tabA, true);
		await watchNotifications(tabB, false);
		const permission = await tabA.evaluate(() => Notification.permission);
		const name = await makeTodo(admin, `inbox-notify ${Date.now()}`);
		todos.push(name);
		await tabA.waitForFunction(() => window.rt_shown.length > 0, null, { timeout: 10000 });
		const shown = await tabA.evaluate(() => window.rt_shown.map((s) => s.title));
		const inVisibleTab = await tabB.evaluate(() => window.rt_shown.length);
		check("the hidden tab raises a system notification (permission granted)", permission === "granted" && shown.length === 1 && shown[0].startsWith("inbox-notify"), `${permission}: ${shown.join(" | ")}`);
		check("the visible tab raises none (its alert is enough)", inVisibleTab === 0, String(inVisibleTab));
		await tabA.evaluate(() => window.rt_shown[0].notification.onclick());
		await tabA.waitForFunction((n) => frappe.get_route_str() === `Form/ToDo/${n}`, name, { timeout: 10000 });
		check("clicking the system notification opens the document", true, await tabA.evaluate(() => frappe.get_route_str()));
	} catch (e) {
		check("inbox", false, String(e).split("\n").slice(0, 8).join(" / "));
		if (tabA) await tabA.screenshot({ path: path.join(OUT, "FAIL-inbox.png") }).catch(() => {});
	} finally {
		for (const todo of todos) await admin.delete(resource("ToDo", todo)).catch(() => {});
		await admin.delete(resource("Realtime Rule", RULE)).catch(() => {});
		await browser.close();
	}
	finish();
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
