// The README's "Try it" promise, in a browser: on a site dev/bench-up made, the demo user logs
// in, creates a ToDo allocated to themselves through the desk form, and the demo rule "Demo: new ToDo" alerts them live.
// Needs playwright-core on NODE_PATH (dev/test installs it). Usage:
//   node tests/browser/demo_alert.js --url http://rt.localhost:8000 --user alice@example.com \
//       --user-password PASSWORD [--out DIR]
// The ToDo it made is deleted at the end (by the same user). Exit 1 when a check failed.
"use strict";

const fs = require("fs");
const path = require("path");
const { BASE, arg, check, finish, launch } = require("./lib");

const USER = arg("user", "alice@example.com");
const USER_PASSWORD = arg("user-password", "");
const OUT = arg("out", "/tmp/rt-demo-alert");

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	const browser = await launch();
	const ctx = await browser.newContext({ viewport: { width: 1300, height: 900 } });
	// no proxy in front of the bench: the desk goes to socket.io's own port, as with `bench start`
	await ctx.addInitScript(() => Object.defineProperty(window, "dev_server", { configurable: true, get: () => 1, set: () => {} }));
	const page = await ctx.newPage();
	const text = `Try it ${Date.now()}`;
	let todo = null;
	try {
		await page.goto(`${BASE}/login`);
		await page.fill("#login_email", USER);
		await page.fill("#login_password", USER_PASSWORD);
		await page.click(".btn-login");
		await page.waitForURL(/\/app/, { timeout: 20000 });
		check(`${USER} logs in to the desk`, true);
		await page.goto(`${BASE}/app/todo/new`);
		await page.waitForFunction(() => window.frappe && frappe.realtime && frappe.realtime.socket && frappe.realtime.socket.connected, null, { timeout: 20000 });
		check("the desk is connected to socket.io", true);
		const editor = page.locator('.frappe-control[data-fieldname="description"] .ql-editor:visible').first();
		await editor.click();
		await editor.type(text);
		// the text editor hands its value to the form after a short debounce
		await page.waitForFunction((t) => (cur_frm.doc.description || "").includes(t), text, { timeout: 10000 });
		// Frappe lets a user without a ToDo role create only a ToDo allocated to themselves
		await page.evaluate((u) => cur_frm.set_value("allocated_to", u), USER);
		await page.keyboard.press("Control+s");
		const alert = page.locator("#alert-container .alert", { hasText: `New ToDo: ${text}` });
		await alert.first().waitFor({ timeout: 15000 });
		check("the demo rule's alert shows live", true, await alert.first().innerText());
		todo = await page.evaluate(() => cur_frm && cur_frm.doc.name);
		await page.screenshot({ path: path.join(OUT, "demo-alert.png") });
	} catch (e) {
		check("demo alert", false, String(e).split("\n")[0]);
		await page.screenshot({ path: path.join(OUT, "FAIL-demo-alert.png") }).catch(() => {});
	} finally {
		if (todo && !todo.startsWith("new-")) {
			await page.evaluate((name) => frappe.xcall("frappe.client.delete", { doctype: "ToDo", name }), todo).catch(() => {});
		}
		await browser.close();
	}
	finish();
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
