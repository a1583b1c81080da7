// The Realtime inbox in the navbar: a drop-down beside Frappe's bell with the session user's
// messages (rt_studio.api.inbox), newest first, loaded page by page as the list scrolls, and a
// live unread badge. New messages count as they arrive; every change in any tab of the user comes
// back as the `rt_studio_inbox` event with the server's count, so all tabs agree. No polling.
// Opening a message marks it read and opens its document. The drop-down also offers system
// notifications (the browser's Notification API) for rules that ask for them, opt-in per browser.
// Decisions live in ./runtime/logic.js (tested with node); this file is glue.

import {
	UnreadCounter,
	applyChange,
	describe,
	escapeHtml,
	indicatorOf,
	mergeItems,
	plainText,
	wantsSystemNotification,
} from "./runtime/logic.js";

export const INBOX_EVENT = "rt_studio_inbox";
const PAGE = 20;
// Start loading the next page this close (px) to the bottom of the list.
const SCROLL_MARGIN = 80;

export class Inbox {
	constructor() {
		this.items = [];
		this.status = "all";
		this.next_before = null;
		this.loading = false;
		this.loaded = false;
		// the page request in flight: a response to any other (a tab left meanwhile) is dropped
		this.request = null;
	}

	start(boot = {}) {
		if (this.$root || frappe.session.user === "Guest") return;
		this.counter = new UnreadCounter(boot.unread, boot.latest);
		this.render_shell();
		this.update_badge();
		frappe.realtime.on(INBOX_EVENT, (change) => this.changed(change));
		// what the boot said may be old (Frappe caches boot info): ask for the current badge
		frappe.xcall("rt_studio.api.inbox_count").then((state) => this.set_badge(state));
	}

	// ------------------------------------------------------------ the drop-down

	render_shell() {
		// beside Frappe's bell (not in the breadcrumbs, also a .navbar-nav, emptied on every route); not of
		// its class: Frappe binds its bell by `.dropdown-notifications`
		const $bell = $(".navbar .dropdown-notifications").first();
		const $nav = $bell.length ? $bell.parent() : $(".navbar .navbar-collapse .navbar-nav").first();
		if (!$nav.length) return;
		this.$root = $(`
			<li class="nav-item dropdown rt-inbox">
				<button class="btn-reset nav-link text-muted rt-inbox-toggle" data-toggle="dropdown"
					aria-haspopup="true" aria-expanded="false" title="${escapeHtml(__("Realtime inbox"))}">
					<svg class="es-icon icon-sm"><use href="#es-line-inbox"></use></svg>
					<span class="rt-inbox-badge badge badge-pill hidden"
						style="position:absolute;top:2px;right:-4px;font-size:10px;background:var(--red-500);color:#fff"></span>
				</button>
				<div class="dropdown-menu notifications-list dropdown-menu-right rt-inbox-menu" role="menu">
					<div class="notification-list-header">
						<div class="header-items">
							<a class="notifications-category rt-inbox-tab active" data-status="all">${__("Realtime")}</a>
							<a class="notifications-category rt-inbox-tab text-muted" data-status="unread">${__("Unread")}</a>
							<a class="notifications-category rt-inbox-tab text-muted" data-status="archived">${__("Archived")}</a>
						</div>
						<div class="header-actions">
							<button class="btn btn-xs btn-default rt-inbox-read-all">${__("Mark all as read")}</button>
							<a class="btn btn-xs btn-default rt-inbox-preferences" href="/app/my-notification-preferences"
								title="${escapeHtml(__("My notification preferences"))}"><svg class="es-icon icon-xs"><use href="#es-line-settings"></use></svg></a>
						</div>
					</div>
					<div class="notification-list-body rt-inbox-list" style="max-height:420px;overflow-y:auto"></div>
					<div class="rt-inbox-footer text-muted small" style="padding:var(--padding-sm) var(--padding-md)"></div>
				</div>
			</li>`);
		if ($bell.length) this.$root.insertBefore($bell);
		else $nav.prepend(this.$root);
		this.$list = this.$root.find(".rt-inbox-list");
		// "shown", not "show": Bootstrap sets `.show` between the two, and seen means shown
		this.$root.on("shown.bs.dropdown", () => this.opened());
		this.$root.find(".rt-inbox-menu").on("click", (e) => e.stopPropagation());
		this.$root.find(".rt-inbox-tab").on("click", (e) => this.switch_to($(e.currentTarget).data("status")));
		this.$root.find(".rt-inbox-read-all").on("click", () => this.mark_read("all"));
		this.$list.on("scroll", () => this.scrolled());
		this.$list.on("click", ".rt-inbox-item", (e) => {
			if ($(e.target).closest(".rt-inbox-archive").length) return;
			this.open_item(Number($(e.currentTarget).data("seq")));
		});
		this.$list.on("click", ".rt-inbox-archive", (e) => this.archive([Number($(e.currentTarget).data("seq"))]));
		this.render_footer();
	}

	opened() {
		if (!this.loaded) this.reload();
		else this.mark_seen_shown();
	}

	switch_to(status) {
		this.status = status;
		this.$root.find(".rt-inbox-tab").each((_i, tab) => {
			$(tab).toggleClass("active", $(tab).data("status") === status).toggleClass("text-muted", $(tab).data("status") !== status);
		});
		this.reload();
	}

	reload() {
		this.items = [];
		this.next_before = null;
		this.loaded = false;
		this.loading = false; // a page still loading belongs to the old list: its answer is dropped
		this.request = null;
		this.$list.empty();
		return this.load_more();
	}

	async load_more() {
		if (this.loading || (this.loaded && this.next_before === null)) return;
		this.loading = true;
		const request = (this.request = {});
		try {
			const args = { limit: PAGE, status: this.status };
			if (this.loaded) args.before = this.next_before; // (null would reach the server as "")
			const page = await frappe.xcall("rt_studio.api.inbox", args);
			if (this.request !== request) return; // another tab (or a reload) asked since
			this.items = mergeItems(this.items, page.items);
			this.next_before = page.next_before;
			this.loaded = true;
			this.set_badge(page);
			this.render_items();
			this.mark_seen_shown();
		} finally {
			if (this.request === request) {
				this.loading = false;
				this.request = null;
			}
		}
	}

	scrolled() {
		const el = this.$list[0];
		if (el.scrollTop + el.clientHeight >= el.scrollHeight - SCROLL_MARGIN) this.load_more();
	}

	render_items() {
		if (!this.items.length) {
			this.$list.html(`<div class="text-muted text-center" style="padding:var(--padding-lg)">${__("Nothing here")}</div>`);
			return;
		}
		this.$list.html(this.items.map((item) => this.item_html(item)).join(""));
	}

	item_html(item) {
		const { title, body } = describe(item);
		// Frappe's own markup for a relative time, from the server's timestamp
		const when = item.sent_at ? frappe.datetime.comment_when(item.sent_at, true) : "";
		const unread = !item.read_at && !item.archived_at;
		const archive = item.archived_at
			? ""
			: `<button class="btn btn-xs btn-link text-muted rt-inbox-archive" data-seq="${item.seq}" title="${escapeHtml(__("Archive"))}">${__("Archive")}</button>`;
		return `<div class="recent-item notification-item rt-inbox-item ${unread ? "unread" : ""}" data-seq="${item.seq}"
				style="cursor:pointer;display:flex;gap:var(--margin-sm);padding:var(--padding-sm) var(--padding-md)">
			<span class="indicator ${unread ? indicatorOf(item) : "gray"}" style="margin-top:6px"></span>
			<div style="flex:1;min-width:0">
				<div class="${unread ? "bold" : ""}">${title}</div>
				${body && body !== title ? `<div class="text-muted small text-truncate">${body}</div>` : ""}
				<div class="text-muted small">${when}</div>
			</div>
			${archive}
		</div>`;
	}

	render_footer() {
		const $footer = this.$root.find(".rt-inbox-footer");
		if (!("Notification" in window) || Notification.permission !== "default") {
			$footer.empty().addClass("hidden");
			return;
		}
		$footer
			.removeClass("hidden")
			.html(`<a class="rt-inbox-notify">${__("Show system notifications when this tab is hidden")}</a>`);
		$footer.find(".rt-inbox-notify").on("click", () => Notification.requestPermission().then(() => this.render_footer()));
	}

	// ------------------------------------------------------------ state

	update_badge() {
		if (!this.$root) return;
		const label = this.counter.label();
		this.$root.find(".rt-inbox-badge").text(label).toggleClass("hidden", !label);
		this.$root.attr("data-unread", this.counter.unread);
	}

	set_badge(state) {
		this.counter.set(state);
		this.update_badge();
	}

	/** A message the runtime received: live, or replayed after a reconnect (no system notification). */
	delivered(message, live = true) {
		if (!this.counter) return;
		if (this.counter.delivered(message)) {
			this.update_badge();
			if (this.loaded && this.status !== "archived") {
				this.items = mergeItems(this.items, [message]);
				this.render_items();
			}
		}
		if (live) this.notify(message);
	}

	/** A change from any tab of this user. */
	changed(change) {
		if (!change) return;
		this.items = applyChange(this.items, change);
		if (this.status === "unread") this.items = this.items.filter((item) => !item.read_at);
		if (this.$list) this.render_items();
		this.set_badge(change);
	}

	mark_seen_shown() {
		const seqs = this.items.filter((item) => !item.seen_at).map((item) => item.seq);
		if (seqs.length && this.$root.hasClass("show")) frappe.xcall("rt_studio.api.mark_seen", { seqs });
	}

	mark_read(seqs) {
		return frappe.xcall("rt_studio.api.mark_read", { seqs }).then((state) => {
			this.changed({ read: seqs, ...state });
		});
	}

	archive(seqs) {
		return frappe.xcall("rt_studio.api.archive", { seqs }).then((state) => {
			this.changed({ archived: seqs, ...state });
		});
	}

	open_item(seq) {
		const item = this.items.find((i) => i.seq === seq);
		if (!item) return;
		if (!item.read_at) this.mark_read([seq]);
		this.$root.find(".rt-inbox-toggle").dropdown("hide");
		open_target(item);
	}

	// ------------------------------------------------------------ system notifications

	notify(message) {
		if (!("Notification" in window)) return;
		if (!wantsSystemNotification(message, document.visibilityState, Notification.permission)) return;
		const { title, body } = describe(message);
		const notification = new Notification(plainText(title) || __("Notification"), {
			body: plainText(body),
			tag: `rt-studio-${message.seq ?? message.sent_at}`,
		});
		notification.onclick = () => {
			window.focus();
			notification.close();
			if (Number.isInteger(message.seq)) this.mark_read([message.seq]);
			open_target(message);
		};
	}
}

function open_target(message) {
	if (message.doctype && message.docname) frappe.set_route("Form", message.doctype, message.docname);
	else if (message.doctype) frappe.set_route("List", message.doctype);
}
