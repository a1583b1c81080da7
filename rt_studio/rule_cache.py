"""Compiled rules per site, shared correctly by every web and background worker.

Each process keeps its compiled RuleIndex in memory, tagged with a token from Redis. The
token changes whenever a rule changes, at once (so the changing transaction sees its own
edit) and again after the commit (so processes that rebuilt in between, from data they
could not see yet, rebuild). Each rebuild also hashes what it read and keeps the index for
the whole process only when that hash equals the one written after the last commit: an
index built from uncommitted rows, or from a transaction's stale snapshot, serves the
current request and is never shared. So a rolled-back rule cannot linger (Notification's
trap) and a deleted rule leaves the cache (Webhook's).

Cost on the hot path: one Redis GET per request (Frappe keeps it in `frappe.local.cache`),
then dict lookups; no database query unless the rules changed.

A rule changed without its controller (`frappe.db.set_value`, a patch, `bench execute`, SQL)
changes no token, so long-lived processes (web workers) would keep its old version. Once a
minute the scheduler runs `notice_outside_changes`, which hashes the committed rules (two
queries, off the save path) and publishes a new state when they differ from the published
digest; `reload` (the "Reload Rules" button) does so at once, and `bench clear-cache` deletes
the state, which makes every process rebuild too.
"""

import hashlib
import json
import pickle
import uuid

import frappe

from rt_studio import transaction
from rt_studio.engine.matcher import RuleIndex
from rt_studio.engine.rules import RUNTIME_FIELDS, Rule, parse_rule

STATE_KEY = "rt_studio:rules_state"

#: {site: (token, RuleIndex)}: the verified, committed rule index of each site in this process.
_process_indexes: dict[str, tuple[str, RuleIndex]] = {}
#: {site: {(name, version): (Rule | None, problems)}}: compiled rules reused across rebuilds.
_compiled: dict[str, dict[tuple[str, str], tuple]] = {}


def get_index() -> RuleIndex:
	"""The current site's rule index, rebuilt only when a rule changed."""
	state = frappe.cache.get_value(STATE_KEY) or {}
	token = state.get("token") or ""
	local = getattr(frappe.local, "rt_studio_index", None)
	if local is not None and local[0] == token:
		return local[1]
	cached = _process_indexes.get(frappe.local.site)
	if cached is not None and cached[0] == token and token:
		frappe.local.rt_studio_index = cached
		return cached[1]
	index, digest = build_index()
	if not state:
		# First use, or Redis was cleared: publish a state so the next requests use the cache.
		# Redis out of reach (Frappe's get_value then answers None): this request uses what it
		# read from MariaDB, shared with no other.
		try:
			token = _seed_state(digest)
		except Exception as e:
			if not transaction.lost_redis(e):
				raise
			token = ""
		state = {"token": token, "digest": digest}
	if token and digest == state.get("digest"):
		_process_indexes[frappe.local.site] = (token, index)
	frappe.local.rt_studio_index = (token, index)
	return index


def _seed_state(digest: str) -> str:
	"""Set the state if no other process did meanwhile; the token in force either way.

	The digest is what this process just read. In the rare case that read came from a
	transaction's stale snapshot (Redis wiped while a rule change was committing), processes
	keep that view until the next rule change publishes a new state.
	"""
	token = uuid.uuid4().hex
	key = frappe.cache.make_key(STATE_KEY)
	if frappe.cache.set(key, pickle.dumps({"token": token, "digest": digest}), nx=True):
		frappe.local.cache[key] = {"token": token, "digest": digest}
		return token
	frappe.local.cache.pop(key, None)
	return (frappe.cache.get_value(STATE_KEY) or {}).get("token") or ""


def load_rule_documents(name: str | None = None) -> list[dict]:
	"""Every Realtime Rule (or the one named) as a fixture-shaped dict, audience rows included
	(two queries).

	Plain SQL: `frappe.get_all` would add a query per DocType in a fresh process (a background
	job's), to learn whether it is virtual.
	"""
	only = {"name": name} if name is not None else {}
	rules = frappe.db.sql(
		f"select * from `tabRealtime Rule` {'where name = %(name)s' if only else ''} order by name",
		only,
		as_dict=True,
	)
	rows = frappe.db.sql(
		f"""select parent, audience_type, user_field, role, user, channel, `condition`
		from `tabRealtime Rule Audience` where parenttype = 'Realtime Rule'
		{"and parent = %(name)s" if only else ""} order by parent, idx""",
		only,
		as_dict=True,
	)
	by_rule: dict[str, list] = {}
	for row in rows:
		by_rule.setdefault(row.pop("parent"), []).append(row)
	for rule in rules:
		rule["audience"] = by_rule.get(rule.name, [])
	return rules


def committed_rule(name: str) -> Rule | None:
	"""The rule as committed now, compiled (None when it is gone or does not compile), read
	straight from the database: two queries and no Redis read. For a background job, whose
	freshly forked process has no index to reuse and would build one from every rule."""
	documents = load_rule_documents(name)
	return compile_cached(documents[0])[0] if documents else None


def version_of(doc: dict) -> str:
	"""A hash of everything the rule says, so a change made without touching `modified`
	(db_set with update_modified=False, SQL) still gives a new version. Runtime fields and
	Frappe's `_comments`, `_assign` ... columns (written without a cache refresh) are left out."""
	content = {k: v for k, v in doc.items() if k not in RUNTIME_FIELDS and not k.startswith("_")}
	return hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def digest_of(documents: list[dict]) -> str:
	versions = "\n".join(f"{d['name']}\t{version_of(d)}" for d in sorted(documents, key=lambda d: d["name"]))
	return hashlib.sha1(versions.encode()).hexdigest()


def compile_cached(doc: dict) -> tuple:
	"""(Rule or None, problems) for a rule document, compiled once per version."""
	site_cache = _compiled.setdefault(frappe.local.site, {})
	key = (doc["name"], version_of(doc))
	if key not in site_cache:
		site_cache[key] = parse_rule(doc)
	return site_cache[key]


def build_index() -> tuple[RuleIndex, str]:
	"""Compile every rule (broken ones are left out and reported on the rule)."""
	documents = load_rule_documents()
	rules = []
	for doc in documents:
		rule, _problems = compile_cached(doc)
		if rule is not None:
			rules.append(rule)
	live = {(d["name"], version_of(d)) for d in documents}
	site_cache = _compiled.get(frappe.local.site, {})
	for key in [k for k in site_cache if k not in live]:
		del site_cache[key]
	return RuleIndex(rules), digest_of(documents)


def invalidate() -> None:
	"""Called whenever a rule changes: new token now, and again once the change commits."""
	_set_state(None)
	frappe.local.rt_studio_index = None
	# once per transaction however many rules it changes
	transaction.state("rt_studio_rules_changed", on_commit=_after_commit, on_rollback=_after_rollback)


def _set_state(digest: str | None) -> None:
	frappe.cache.set_value(STATE_KEY, {"token": uuid.uuid4().hex, "digest": digest})


def _after_commit(_changed=None) -> None:
	"""Publish the committed rules' digest; every process rebuilds and can verify against it."""
	frappe.local.rt_studio_index = None
	_set_state(digest_of(load_rule_documents()))


def _after_rollback(_changed=None) -> None:
	"""The rules are back to their committed state: publish its digest, as after a commit
	(a digest of None would keep every process rebuilding on every request)."""
	_after_commit()


def notice_outside_changes() -> bool:
	"""Scheduler, every minute: publish the committed rules when they are not what the state says
	(changed without their form, or a rule transaction that never finished). True if it did.

	Two queries and a hash of every rule; nothing when Redis holds no state (every process
	rebuilds and seeds one anyway).
	"""
	state = frappe.cache.get_value(STATE_KEY)
	if not state:
		return False
	digest = digest_of(load_rule_documents())
	if digest == state.get("digest"):
		return False
	_set_state(digest)
	frappe.local.rt_studio_index = None
	return True


def reload() -> None:
	"""Make every process rebuild its rules from the committed ones on its next request."""
	_set_state(digest_of(load_rule_documents()))
	frappe.local.rt_studio_index = None
