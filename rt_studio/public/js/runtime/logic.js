// Pure logic of the RT Studio client runtime: no DOM, no frappe, so node's test runner
// covers it (tests/js). The desk glue lives in ../rt_studio.bundle.js.

export const DEFAULT_EVENTS = ["rt_studio", "rt_studio_channel"];
export const DISPLAYS = [
	"Alert",
	"Sticky",
	"Notification Log",
	"Refresh Form",
	"Refresh List",
	"Refresh Dashboard",
	"Custom",
];
export const INDICATORS = ["blue", "green", "orange", "red", "gray"];

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** Text as HTML that shows exactly that text. */
export function escapeHtml(value) {
	if (value === null || value === undefined) return "";
	return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

// Tags a rule author may use in subject and message; attributes are dropped except a safe href.
const ALLOWED_TAGS = new Set(["b", "strong", "i", "em", "u", "br", "p", "ul", "ol", "li", "code", "span", "small", "a"]);
const TAG = /<\/?([a-zA-Z][a-zA-Z0-9]*)\b([^<>]*)>/g;

function safeHref(attributes) {
	const match = /\shref\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/i.exec(" " + attributes);
	if (!match) return null;
	const href = (match[2] ?? match[3] ?? match[4] ?? "").trim();
	const plain = href.replace(/&#0*58;|&colon;/gi, ":").replace(/[\s\u0000-\u001f]/g, "");
	if (/^(https?:|mailto:|\/|#)/i.test(plain) || !/^[a-z][a-z0-9+.-]*:/i.test(plain)) {
		return escapeHtml(href);
	}
	return null;
}

/**
 * Markup from the server, reduced to a few harmless tags.
 *
 * The server already escapes document values in templates; this is the second line of
 * defence for what the rule's author typed: anything that is not an allowed tag (script,
 * img, event handlers, javascript: links) is shown as text, never run.
 */
export function sanitizeHtml(html) {
	if (html === null || html === undefined) return "";
	const source = String(html);
	let out = "";
	let last = 0;
	for (const match of source.matchAll(TAG)) {
		out += escapeText(source.slice(last, match.index));
		last = match.index + match[0].length;
		const name = match[1].toLowerCase();
		const closing = match[0].startsWith("</");
		if (!ALLOWED_TAGS.has(name)) {
			out += escapeHtml(match[0]);
		} else if (closing) {
			out += `</${name}>`;
		} else if (name === "a") {
			const href = safeHref(match[2]);
			out += href ? `<a href="${href}" rel="noopener noreferrer">` : "<a>";
		} else {
			out += `<${name}>`;
		}
	}
	return out + escapeText(source.slice(last));
}

// Text between tags: keep entities the server wrote, escape stray < and >.
function escapeText(text) {
	return text.replace(/&(?![a-zA-Z]+;|#[0-9]+;|#x[0-9a-fA-F]+;)/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The title and body to show for a message, both safe to insert as HTML. */
export function describe(message) {
	const subject = sanitizeHtml(message.subject);
	const body = sanitizeHtml(message.message);
	if (message.channel) {
		const prefix = `<b>#${escapeHtml(message.channel)}</b>`;
		return { title: prefix, body: body || subject, text: `${prefix}: ${body || subject}` };
	}
	const title = subject || escapeHtml(message.rule || "");
	return { title, body, text: body && subject ? `${subject}: ${body}` : subject || body };
}

export function indicatorOf(message) {
	return INDICATORS.includes(message.indicator) ? message.indicator : "blue";
}

export function secondsOf(message) {
	const seconds = Number(message.alert_seconds);
	return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 120) : 5;
}

// Pages that show Number Cards and Dashboard Charts: a workspace and a Dashboard.
const DASHBOARD_ROUTES = ["Workspaces", "dashboard-view"];

/**
 * What the desk should do with a message, given what the user is looking at.
 *
 * view: {route: ["Form", doctype, name] | ["List", doctype, ...] | [...], dirty: bool}
 * Returns {action, ...}: alert, sticky, bell, reload_form, form_banner, refresh_list,
 * refresh_dashboard, or none (Custom, or a refresh for something not on screen).
 */
export function chooseAction(message, view = {}) {
	const route = view.route || [];
	const display = DISPLAYS.includes(message.display) ? message.display : "Alert";
	// a batch summary names its documents in `docnames`
	const names = Array.isArray(message.docnames) ? message.docnames : [message.docname];
	const onForm = route[0] === "Form" && route[1] === message.doctype && names.includes(route[2]);
	const onList = route[0] === "List" && route[1] === message.doctype;
	// the recipient's preferences (live alert off, quiet hours): in the inbox only, nothing pops up
	if (message.alert === false) return { action: "none" };
	switch (display) {
		case "Custom":
			return { action: "none" };
		case "Sticky":
			return { action: "sticky" };
		case "Notification Log":
			return { action: "bell" };
		case "Refresh Form":
			if (!onForm) return { action: "none" };
			return view.dirty ? { action: "form_banner" } : { action: "reload_form" };
		case "Refresh List":
			return onList ? { action: "refresh_list" } : { action: "none" };
		case "Refresh Dashboard":
			return DASHBOARD_ROUTES.includes(route[0]) ? { action: "refresh_dashboard" } : { action: "none" };
		default:
			return { action: "alert" };
	}
}

/**
 * Runs `fn` at most once per `wait` ms: the first call runs at once, calls during the wait
 * are folded into one trailing run. 100 saves in a burst refresh a list two or three times.
 */
export function createCoalescer(fn, wait, timers = { setTimeout, clearTimeout, now: Date.now }) {
	let lastRun = -Infinity;
	let pending = null;
	const run = () => {
		pending = null;
		lastRun = timers.now();
		fn();
	};
	return function trigger() {
		if (pending) return;
		const since = timers.now() - lastRun;
		if (since >= wait) {
			run();
		} else {
			pending = timers.setTimeout(run, wait - since);
		}
	};
}

/** A bounded, newest-first log of received messages for the studio's live console. */
export class ConsoleLog {
	constructor(limit = 200) {
		this.limit = limit;
		this.entries = [];
		this.listeners = new Set();
	}

	add(event, message, at = new Date()) {
		const entry = { at, event, rule: message.rule || null, channel: message.channel || null, message };
		this.entries.unshift(entry);
		if (this.entries.length > this.limit) this.entries.length = this.limit;
		for (const listener of this.listeners) listener(entry);
		return entry;
	}

	subscribe(listener) {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}
}

/** Event names to listen on: the defaults plus those the site's rules and channels use. */
export function eventNames(configured) {
	const names = new Set(DEFAULT_EVENTS);
	for (const name of configured || []) {
		if (typeof name === "string" && /^[A-Za-z0-9_:.\-]{1,140}$/.test(name)) names.add(name);
	}
	return [...names];
}

// ---------------------------------------------------------------- replay after a reconnect

/**
 * Which delivery numbers (`seq`) this page has shown, so that a message replayed after a
 * reconnect, or arriving live twice, is shown once.
 *
 * `watermark` is the highest number below which every number was shown (or is known not to
 * exist); numbers above it that were shown are kept in `seen`. Two transactions committing
 * together may publish out of order, so a gap below a shown number is asked for again after
 * the next reconnect instead of being taken as shown.
 */
/** How long a gap in the numbers may stay open before the runtime asks `missed` for it. */
export const GAP_MS = 2000;

export class SeqTracker {
	constructor(start = 0, limit = 1000) {
		this.watermark = Number(start) || 0;
		this.seen = new Set();
		this.limit = limit;
	}

	/** True when the message is new and should be shown (a message without seq always is). */
	accept(seq) {
		if (typeof seq !== "number" || !Number.isFinite(seq)) return true;
		if (seq <= this.watermark || this.seen.has(seq)) return false;
		this.seen.add(seq);
		this.advance();
		return true;
	}

	advance() {
		while (this.seen.has(this.watermark + 1)) {
			this.seen.delete(++this.watermark);
		}
		if (this.seen.size > this.limit) {
			// a gap that stayed open this long is not coming: stop remembering around it
			this.watermark = Math.min(...this.seen);
			this.seen.delete(this.watermark);
			this.advance();
		}
	}

	/** The number to ask `missed(since)` with. */
	since() {
		return this.watermark;
	}

	/**
	 * True while a number below one shown is missing: a message still on its way (two commits
	 * published out of order: it comes within milliseconds), or one that never will (its publish
	 * failed while the socket stayed up, or Redis lost its counter and numbers jumped). The runtime
	 * asks `missed` when a gap stays open GAP_MS.
	 */
	hasGap() {
		return this.seen.size > 0;
	}

	/**
	 * The messages of a `missed` answer not shown yet, oldest first. Afterwards everything up to
	 * the answer's highest number, and up to the highest number shown, counts as shown: the log
	 * numbers a message before it is published, so what it no longer has below those cannot come.
	 */
	caughtUp(messages) {
		const fresh = (messages || []).filter((m) => m && this.accept(m.seq));
		const numbers = (messages || []).map((m) => Number(m && m.seq) || 0);
		const highest = Math.max(this.watermark, ...numbers, ...this.seen);
		for (const seq of this.seen) if (seq <= highest) this.seen.delete(seq);
		this.watermark = highest;
		this.advance();
		return fresh;
	}
}

/**
 * The numbers of the document rooms' messages (Document Viewers) this page has seen, one
 * SeqTracker per room. A form starts from the number its room had when it loaded (the server's
 * `__onload.rt_studio_room_seq`); a room whose start is unknown starts below its first live
 * message, and is not asked for until then (asking from 0 would replay messages from before
 * the form was open).
 */
export class RoomSeqs {
	constructor() {
		this.rooms = new Map();
	}

	/** Start following `room` from `start` (kept when the room is followed already). */
	open(room, start) {
		if (!room || this.rooms.has(room) || typeof start !== "number" || !Number.isFinite(start)) return;
		this.rooms.set(room, new SeqTracker(start));
	}

	/** True when a live message of `room` is new and should be shown. */
	accept(room, seq) {
		if (typeof seq === "number" && Number.isFinite(seq)) this.open(room, seq - 1);
		const tracker = this.rooms.get(room);
		return tracker ? tracker.accept(seq) : true;
	}

	/** The number to ask `missed_room` with, or null when the room's start is unknown. */
	since(room) {
		const tracker = this.rooms.get(room);
		return tracker ? tracker.since() : null;
	}

	/** The messages of a `missed_room` answer not shown yet, oldest first. */
	caughtUp(room, messages) {
		const tracker = this.rooms.get(room);
		return tracker ? tracker.caughtUp(messages) : [];
	}
}

/** The room of the form on screen, as the server names it, or null: `doc:<doctype>/<docname>`. */
export function formRoom(route = []) {
	return route[0] === "Form" && route[1] && route[2] ? `doc:${route[1]}/${route[2]}` : null;
}

const VISIBLE = new Set(["alert", "sticky", "bell"]);
const REFRESHES = new Set(["refresh_list", "reload_form", "form_banner", "refresh_dashboard"]);

/**
 * What to do with messages replayed after a reconnect: one visible message is shown as it
 * would have been; several become one summary; each refresh (list, form, dashboard) happens
 * once however many messages asked for it.
 */
export function planReplay(messages, view = {}) {
	const visible = [];
	const refreshes = new Map();
	for (const message of messages || []) {
		const choice = chooseAction(message, view);
		if (VISIBLE.has(choice.action)) visible.push({ ...choice, message });
		else if (REFRESHES.has(choice.action)) {
			const key = `${choice.action}:${message.doctype}:${choice.action === "refresh_list" || choice.action === "refresh_dashboard" ? "" : message.docname}`;
			if (!refreshes.has(key)) refreshes.set(key, { ...choice, message });
		}
	}
	return {
		single: visible.length === 1 ? visible[0] : null,
		summary: visible.length > 1 ? visible.map((v) => v.message) : [],
		refreshes: [...refreshes.values()],
	};
}

/** Frappe's route slug of a DocType ("Sales Order" -> "sales-order"). */
export function slug(doctype) {
	return String(doctype || "").toLowerCase().replace(/ /g, "-");
}

const SEVERITY = ["red", "orange", "green", "blue", "gray"];

/**
 * One summary for several replayed messages: a title, an HTML list of their titles (each
 * linking to its document, a batch summary to its list), the most severe indicator, and
 * whether it stays until closed (when any of them was Sticky).
 */
export function summaryOf(messages, shown = 10) {
	const items = messages.slice(0, shown).map((message) => {
		const { title, text } = describe(message);
		let href = null;
		if (message.doctype && message.docname) href = `/app/${slug(message.doctype)}/${encodeURIComponent(message.docname)}`;
		else if (message.doctype) href = `/app/${slug(message.doctype)}`;
		const label = message.channel ? text : title;
		return href ? `<li><a href="${escapeHtml(href)}">${label}</a></li>` : `<li>${label}</li>`;
	});
	const more = messages.length - items.length;
	const indicators = messages.map(indicatorOf);
	return {
		title: `${messages.length} notifications while you were offline`,
		html: `<ul class="rt-studio-missed">${items.join("")}${more > 0 ? `<li>… and ${more} more</li>` : ""}</ul>`,
		indicator: SEVERITY.find((color) => indicators.includes(color)) || "blue",
		sticky: messages.some((message) => message.display === "Sticky"),
	};
}

/**
 * The socket events that put a new connection back in the rooms the page was in: Frappe's
 * client remembers open documents (`open_docs`, "DocType:name") but never re-joins them.
 */
export function roomsToRejoin(openDocs, doctypes, route = []) {
	const events = [];
	for (const entry of openDocs || []) {
		const at = String(entry).indexOf(":");
		if (at > 0) events.push(["doc_subscribe", entry.slice(0, at), entry.slice(at + 1)]);
	}
	for (const doctype of doctypes || []) events.push(["doctype_subscribe", doctype]);
	if (route[0] === "Form" && route[1] && route[2]) events.push(["doc_open", route[1], route[2]]);
	return events;
}

/** Milliseconds before connecting again after socket.io gave up (it tries 3 times), up to 30 s. */
export function reconnectDelay(attempt) {
	return Math.min(30000, 2000 * 2 ** Math.max(0, attempt));
}

// ---------------------------------------------------------------- mutes

/** The durations offered for a mute, in minutes (null: until unmuted). */
export const MUTE_CHOICES = [
	{ label: "1 hour", minutes: 60 },
	{ label: "1 day", minutes: 1440 },
	{ label: "until I unmute", minutes: null },
];

/**
 * What the recipient of a message may mute: {rule} or {channel} with a label, or null
 * (a critical rule, a message that names neither, one sent to a room such as a document's
 * viewers (it names its `room`; a mute does not hold it back), or one without `seq`: not kept
 * in the user's delivery log, from which the server accepts a mute).
 */
export function muteTargetOf(message) {
	if (!message || message.critical || message.seq == null || message.room) return null;
	if (message.rule) return { rule: message.rule, label: "Mute this rule" };
	if (message.channel) return { channel: message.channel, label: "Mute this channel" };
	return null;
}

/** The "Mute this rule: 1 hour · 1 day · until I unmute" line, its links keyed by data-action. */
export function muteLinks(message, translate = (text) => text) {
	const target = muteTargetOf(message);
	if (!target) return "";
	const links = MUTE_CHOICES.map(
		(choice, i) => `<a class="rt-mute-choice" data-action="rt_mute_${i}">${escapeHtml(translate(choice.label))}</a>`
	);
	return `<span class="rt-studio-mute text-muted small">${escapeHtml(translate(target.label))}: ${links.join(" · ")}</span>`;
}

/** Number Card and Dashboard Chart widgets to refresh for a message about `doctype`. */
export function widgetsToRefresh(widgets, doctype) {
	return (widgets || []).filter((w) => w && w.connected && w.doctype && w.doctype === doctype);
}

// ------------------------------------------------------------ the inbox

/** Displays that signal the desk or custom code: never kept in the inbox (rules.SIGNAL_DISPLAYS). */
export const SIGNAL_DISPLAYS = ["Refresh Form", "Refresh List", "Refresh Dashboard", "Custom"];

/**
 * Whether the server kept this message in the user's inbox (rt_studio/delivery/inbox.py `kept`):
 * a numbered message of a rule or channel to this user (not to a document's room), meant to be read.
 */
export function keptInInbox(message) {
	return (
		!!message &&
		!message.room &&
		Number.isInteger(message.seq) &&
		!!(message.rule || message.channel) &&
		!SIGNAL_DISPLAYS.includes(message.display)
	);
}

/**
 * The unread badge of one tab. New messages count once each (a message replayed after a
 * reconnect, or shown twice, does not count again). The server's badge ({unread, latest}: its
 * count when its newest message had seq `latest`), sent after every change in any tab of the user
 * and with every page of the inbox, replaces the local count; messages this tab received after
 * `latest` are added to it.
 */
export class UnreadCounter {
	constructor(unread = 0, latest = 0) {
		this.unread = Math.max(0, Number(unread) || 0);
		this.latest = Number(latest) || 0;
		this.counted = new Set();
	}

	/** A message arrived live or replayed: true when the badge changed. */
	delivered(message) {
		if (!keptInInbox(message) || message.seq <= this.latest || this.counted.has(message.seq)) return false;
		this.counted.add(message.seq);
		this.unread += 1;
		return true;
	}

	/** The server's badge. */
	set({ unread, latest }) {
		this.latest = Math.max(this.latest, Number(latest) || 0);
		for (const seq of this.counted) if (seq <= this.latest) this.counted.delete(seq);
		this.unread = Math.max(0, Number(unread) || 0) + this.counted.size;
	}

	/** The badge text: empty at 0, "99+" above 99. */
	label() {
		if (!this.unread) return "";
		return this.unread > 99 ? "99+" : String(this.unread);
	}
}

/** Merge a page of inbox items into a list sorted newest first, each seq once. */
export function mergeItems(items, page) {
	const bySeq = new Map(items.map((item) => [item.seq, item]));
	for (const item of page) bySeq.set(item.seq, { ...bySeq.get(item.seq), ...item });
	return [...bySeq.values()].sort((a, b) => b.seq - a.seq);
}

/** Apply a change another tab (or this one) made: {read|seen|archived: [seqs] | "all"}. */
export function applyChange(items, change, now = new Date().toISOString()) {
	const touched = (key, item) => change[key] === "all" || (Array.isArray(change[key]) && change[key].includes(item.seq));
	return items.map((item) => {
		const next = { ...item };
		if (touched("read", item)) {
			next.read_at = next.read_at || now;
			next.seen_at = next.seen_at || now;
		}
		if (touched("seen", item)) next.seen_at = next.seen_at || now;
		if (touched("archived", item)) next.archived_at = next.archived_at || now;
		return next;
	}).filter((item) => !(change.archived && item.archived_at && touched("archived", item)));
}

/**
 * Whether to raise a system notification: the rule asks for it, the user allowed them and the
 * desk tab is not in view (in view, the desk's own display is enough).
 */
export function wantsSystemNotification(message, visibility, permission) {
	return !!(message && message.browser_notification) && visibility === "hidden" && permission === "granted";
}

/** Plain text of server markup, for places that show no HTML (a system notification). */
export function plainText(html) {
	return String(html ?? "")
		.replace(/<[^>]*>/g, "")
		.replace(/&lt;/g, "<")
		.replace(/&gt;/g, ">")
		.replace(/&quot;/g, '"')
		.replace(/&#0*39;/g, "'")
		.replace(/&#0*96;/g, "`")
		.replace(/&amp;/g, "&")
		.trim();
}
