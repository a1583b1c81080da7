"""The desk runtime's pure logic (escaping, display choice, burst coalescing), run with node's test runner."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_client_runtime_logic_passes_node_test_runner():
	node = shutil.which("node")
	if node is None:
		pytest.fail("node is required for the client runtime tests (install nodejs)")
	result = subprocess.run(
		[node, "--test", "tests/js/"], cwd=ROOT, capture_output=True, text=True, timeout=120
	)
	summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
	assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
	assert "# fail 0" in summary, summary
	passed = next(int(line.split()[-1]) for line in summary if line.startswith("# pass"))
	assert passed >= 10, summary
