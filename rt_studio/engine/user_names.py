"""How user names are matched: the one key every audience, verdict and site directory compares.

Used by the audience (who a row names), the verdicts (whom an answer is about), the in-memory
directory and the site's adapters (people/), so two spellings of one user are one recipient.
"""


def user_key(value: str) -> str:
	"""How a site matches user names: without case and surrounding spaces (MariaDB's collation)."""
	return value.strip().casefold()
