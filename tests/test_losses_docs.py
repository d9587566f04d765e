"""docs/losses.md shows the code that computes each formula: every snippet marked ``<!-- from FILE -->`` is still in
FILE, line for line. And the loss benchmark (``make bench``) runs, at a size that fits the test suite."""

import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

SNIPPET = re.compile(r"<!-- from (\S+) -->\n```python\n(.*?)```", re.S)


def test_every_snippet_in_the_losses_doc_is_in_the_source():
    doc = (REPO_ROOT / "docs" / "losses.md").read_text()
    snippets = SNIPPET.findall(doc)
    assert len(snippets) >= 8
    for path, code in snippets:
        source = {line.strip() for line in (REPO_ROOT / path).read_text().splitlines()}
        missing = [line for line in code.splitlines() if line.strip() and line.strip() not in source]
        assert not missing, f"docs/losses.md quotes {path}, which no longer has: {missing}"


def run_bench(*args):
    out = subprocess.run([sys.executable, "scripts/bench_losses.py", "--positions", "64", "--classes", "5",
                          "--repeats", "1", "--warmup", "0", "--markdown", "--cpu-time", *args],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_bench_losses_runs_against_a_git_revision():
    out = run_bench("--compare", "HEAD")
    for row in ("| dsc |", "| dsc @HEAD |", "| official* (re-impl.) |"):
        assert row in out, out


@pytest.mark.slow
def test_bench_losses_times_a_training_step():
    out = run_bench("--step", "--step-batch", "1", "--step-length", "8", "--step-repeats", "1")
    assert "training step:" in out and "| dsc |" in out, out
