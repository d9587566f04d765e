"""The offline commands of README.md and docs/reproduction.md, as typed (`python train.py … scale=smoke`), run through
the real train.py path (Hydra compose of the same overrides + dicenlp.run.run, in-process to stay fast)."""

from __future__ import annotations

import re
import shlex

import pytest

from conftest import REPO_ROOT


def smoke_commands(*docs: str) -> list[str]:
    lines = []
    for doc in docs:
        for line in (REPO_ROOT / doc).read_text(encoding="utf-8").splitlines():
            command = line.split("#")[0].strip()
            if re.match(r"python train\.py .*scale=smoke", command) and "--cfg" not in command:
                lines.append(command)
    return lines


COMMANDS = smoke_commands("README.md", "docs/reproduction.md")


def test_the_docs_show_smoke_commands():
    assert len(COMMANDS) >= 5, COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_smoke_command_runs(command, run_train):
    overrides = shlex.split(command)[2:]
    results = run_train(*overrides, "logger=none", tiny=False)
    assert results["model"].startswith("tiny-") and results["total_steps"] == 4
    assert results["config"]["scale"]["name"] == "smoke"
