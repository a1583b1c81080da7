"""Problems a user can cause, each naming the rule, the field and the fix."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
	"""One thing wrong with a rule or channel, phrased for the person who wrote it."""

	rule: str
	field: str
	problem: str

	def __str__(self) -> str:
		if not self.field:
			return f"{self.rule}: {self.problem}" if self.rule else self.problem
		return f"{self.rule or '(unnamed)'}: {self.field}: {self.problem}"

	def as_dict(self) -> dict:
		return {"rule": self.rule, "field": self.field, "problem": self.problem}


class RuleError(Exception):
	"""Raised when a rule cannot be compiled or fails while it runs.

	Carries every problem found, so a form or the CLI can show them all at once instead of
	making the author fix one error per save.
	"""

	def __init__(self, problems: list[Problem]):
		self.problems = list(problems)
		super().__init__("; ".join(str(p) for p in self.problems))

	@classmethod
	def one(cls, rule: str, field: str, problem: str) -> "RuleError":
		return cls([Problem(rule, field, problem)])
