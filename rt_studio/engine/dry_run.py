"""Running a rule's code once on an empty document, when the rule is saved or checked.

Compiling catches syntax, refused names and attributes; some refusals only show when the
code runs (a loop over a huge range, a format width computed at run time). So saving a rule
on a site, importing it and `rt-studio check` run its conditions and templates once on an
empty document of its DocType, as Frappe's Notification does with its condition, under the
same budget as every evaluation. Only refusals are problems: an empty document makes many
good rules fail in ordinary ways (`None > 5`), which says nothing about the rule.
"""

from collections.abc import Mapping

from rt_studio.engine.budget import Budget, BudgetExceeded, deactivate
from rt_studio.engine.docview import freeze
from rt_studio.engine.errors import Problem
from rt_studio.engine.rules import Rule
from rt_studio.engine.sandbox import SandboxError, base_globals, condition_namespace, evaluate_condition


def dry_run_problems(
	rule: Rule, sample: Mapping, utils: Mapping | None = None, budget_ms: float | None = None
) -> list[Problem]:
	"""Problems found by running every condition and template of `rule` once on `sample`."""
	shared = base_globals(utils)
	namespace = condition_namespace(shared)
	doc = freeze(sample)
	scope = {
		**shared,
		"doc": doc,
		"doc_before_save": doc,
		"changed_rows": (),
		"actor": "Administrator",
		"event": rule.event,
		"rule": rule.name,
		"recipient": None,
	}
	parts = []
	if rule.condition is not None:
		parts.append(("condition", lambda: evaluate_condition(rule.condition, namespace, scope)))
	for index, row in enumerate(rule.audience, 1):
		if row.condition is not None:
			parts.append(
				(
					f"audience row {index}: condition",
					lambda row=row: evaluate_condition(row.condition, namespace, scope),
				)
			)
	for label, template in (("subject", rule.subject), ("message", rule.message)):
		if template is not None:
			parts.append((label, lambda template=template: template.render(scope)))
	problems = []
	for label, run in parts:
		token = Budget(budget_ms).activate()  # each part its own: one runaway part is reported once
		try:
			why = _refusal(run, sample.get("doctype") or rule.document_type)
		finally:
			deactivate(token)
		if why:
			problems.append(Problem(rule.name, label, why))
	return problems


def _refusal(run, doctype: str) -> str | None:
	try:
		run()
	except BudgetExceeded as e:
		return f"stopped on an empty {doctype}: {e}"
	except SandboxError as e:
		return f"refused by the sandbox: {e}"
	except NameError as e:
		return f"{e}: check the names you used"
	except RecursionError:
		return f"stopped on an empty {doctype}: calls nest too deeply (a lambda or macro calling itself?)"
	except Exception:  # an empty document fails many good rules (None > 5): not a problem
		return None
	return None
