"""Document snapshots: what rules see, and what a background job carries to a worker."""

import pickle
from datetime import date

import pytest

from rt_studio.engine.docview import freeze


def test_a_snapshot_with_child_rows_survives_the_trip_to_a_worker():
	doc = freeze({"name": "SO-1", "date": date(2026, 1, 2), "items": [{"user": "a@x.com", "qty": 2}]})
	copy = pickle.loads(pickle.dumps(doc))
	assert copy == doc
	assert copy["items"][0].user == "a@x.com"
	with pytest.raises(TypeError, match="read-only"):
		copy["items"][0]["qty"] = 0
