// Helpers shared by replay_socket.js, replay_desk.js and mute_dashboard.js (CommonJS, needs
// playwright-core on NODE_PATH): options, PASS/FAIL lines, REST calls, the test user, the desk.
"use strict";

const { chromium, request } = require("playwright-core");

/** The value after `--name` on the command line, or `fallback`. */
function arg(name, fallback) {
	const i = process.argv.indexOf(`--${name}`);
	return i > 0 ? process.argv[i + 1] : fallback;
}

const BASE = arg("url", "http://127.0.0.1:8000");
const PASSWORD = arg("password", "admin");
/** A desk user with no permissions of their own: a ToDo allocated to them is theirs to read. */
const USER = "rt.replay@example.com";
const USER_PASSWORD = "Rt-Replay-check-2026!";
const VIEWER_ROLE = "RT Viewer";

let failures = 0;
function check(label, ok, detail) {
	console.log(`${ok ? "PASS" : "FAIL"} ${label}${detail ? ` (${detail})` : ""}`);
	if (!ok) failures++;
}

/** Print the verdict and exit 1 if any check failed. */
function finish() {
	console.log(failures ? `${failures} CHECK(S) FAILED` : "ALL CHECKS PASSED");
	process.exit(failures ? 1 : 0);
}

const resource = (doctype, name) => `/api/resource/${encodeURIComponent(doctype)}${name ? `/${encodeURIComponent(name)}` : ""}`;

/** The response's `data`, or an error naming the URL and the server's answer. */
async function must(response) {
	if (!response.ok()) throw new Error(`${response.url()}: HTTP ${response.status()} ${(await response.text()).slice(0, 300)}`);
	return (await response.json()).data;
}

/** An HTTP client logged in as `usr` (cookies kept). */
async function session(usr, pwd) {
	const ctx = await request.newContext({ baseURL: BASE });
	const r = await ctx.post("/api/method/login", { form: { usr, pwd } });
	if (!r.ok()) throw new Error(`login as ${usr}: HTTP ${r.status()} ${await r.text()}`);
	return ctx;
}

/** Make (or reset) USER with only VIEWER_ROLE, as Administrator. */
async function ensureUser(admin) {
	if ((await admin.get(resource("Role", VIEWER_ROLE))).status() === 404) {
		await must(await admin.post(resource("Role"), { data: { role_name: VIEWER_ROLE, desk_access: 1 } }));
	}
	const user = {
		email: USER,
		first_name: "RT Replay",
		enabled: 1,
		send_welcome_email: 0,
		new_password: USER_PASSWORD,
		roles: [{ role: VIEWER_ROLE }],
	};
	if ((await admin.get(resource("User", USER))).status() === 404) await must(await admin.post(resource("User"), { data: user }));
	else await must(await admin.put(resource("User", USER), { data: user }));
}

/** (Re)create ToDo rules named by the keys of `rules`, each with the fields given. */
async function makeRules(admin, rules) {
	for (const [name, fields] of Object.entries(rules)) {
		await admin.delete(resource("Realtime Rule", name));
		await must(
			await admin.post(resource("Realtime Rule"), {
				data: { rule_name: name, document_type: "ToDo", subject: "{{ doc.description }}", alert_seconds: 30, ...fields },
			})
		);
	}
}

async function launch() {
	return chromium.launch({
		executablePath: arg("chromium", "/usr/bin/chromium"),
		args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
	});
}

/**
 * A browser context logged in as USER. A bench without a proxy serves socket.io on its own
 * port only: then the desk is told to go there (window.dev_server), as `bench start` does.
 */
async function deskAsUser(browser, admin) {
	const direct = !(await admin.get("/socket.io/?EIO=4&transport=polling")).ok();
	const ctx = await browser.newContext({ viewport: { width: 1300, height: 900 } });
	if (direct) {
		await ctx.addInitScript(() => Object.defineProperty(window, "dev_server", { configurable: true, get: () => 1, set: () => {} }));
	}
	await ctx.request.post(`${BASE}/api/method/login`, { form: { usr: USER, pwd: USER_PASSWORD } });
	return ctx;
}

module.exports = { BASE, PASSWORD, USER, USER_PASSWORD, arg, check, deskAsUser, ensureUser, finish, launch, makeRules, must, resource, session };
