"""One run per folder: what a new run does with a folder that may hold an earlier one.

A folder that holds a run with the same config is continued from its saved state (``trainer.resume=auto`` or
``must``) or, when finished, left as it is (its results are returned: the skip-what-is-done rule of
``scripts/reproduce.py`` and of multirun/SLURM jobs); a folder that holds a run with another config, or any run
under ``never``, is an error; a folder whose run left nothing to continue (it failed before its first evaluation)
is cleared and reused.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from omegaconf import OmegaConf

from dicenlp.checkpoints import latest_state
from dicenlp.curves import CURVES_FILE, METRICS_FILE
from dicenlp.errors import RunDirError
from dicenlp.tracking import flatten

log = logging.getLogger(__name__)

#: Config keys that may differ between a run and its resumption (they do not change what is computed).
#: ``scale.caps``: the mini scale's caps of every dataset; a run uses its own (``task.params.max_examples``,
#: compared as usual), so tuning another dataset's caps leaves its finished runs valid.
RESUMABLE_CHANGES = ("output_dir", "trainer.resume", "trainer.num_workers", "trainer.pin_memory", "trainer.compile",
                     "trainer.ddp_find_unused_parameters", "logger.", "scale.caps.")
#: Keys added after runs were made, with the value under which a run computes what those runs computed: a config
#: without the key (a saved one, or a hand-made one) counts as having that value (so finished runs are not redone; tf32 acts on GPUs only,
#: and no run before it had been made on a GPU).
ADDED_KEYS = {"trainer.group_by_length": False, "trainer.tf32": True}
#: What a run writes into its folder (all removed before a new run reuses a folder; Hydra's own files stay).
RUN_FILES = ("results.json", "config.yaml", METRICS_FILE, CURVES_FILE, "predictions_*.json", "checkpoint", "state",
             "state.tmp", "state.old", "best", "dev", "test", "wandb")


@dataclass
class RunPlan:
    """What this run does with its folder: ``new`` (start), ``resume`` (from ``state``), ``done`` (``results``)."""

    kind: str
    state: Path | None = None
    results: dict[str, Any] | None = None


def config_changes(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Sequence[str] = ()) -> list[str]:
    """``["trainer.lr: 3e-05 → 1e-05", ...]``: the differences that matter between two configs (not
    ``RESUMABLE_CHANGES``, nor the keys in ``ignore``; a key ending in "." stands for everything under it)."""
    old, new = {**ADDED_KEYS, **flatten(saved)}, {**ADDED_KEYS, **flatten(current)}
    absent = object()
    skipped = (*RESUMABLE_CHANGES, *ignore)
    keys = sorted(k for k in set(old) | set(new)
                  if old.get(k, absent) != new.get(k, absent)
                  and not any(k == c or (c.endswith(".") and k.startswith(c)) for c in skipped))
    show = lambda d, k: repr(d[k]) if k in d else "absent"  # noqa: E731
    return [f"{k}: {show(old, k)} → {show(new, k)}" for k in keys]


def clear_run_dir(output_dir: Path) -> None:
    """Remove what an earlier run wrote (``RUN_FILES``), nothing else."""
    for pattern in RUN_FILES:
        for path in output_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def held_run(output_dir: Path) -> str | None:
    """What an earlier run left in ``output_dir`` that a new run must not overwrite, or None."""
    if (output_dir / "results.json").is_file():
        return "a finished run (results.json)"
    return "a run with a saved state" if latest_state(output_dir) else None


def other_config(output_dir: Path, config: Mapping[str, Any]) -> str | None:
    """Why ``output_dir`` cannot take a run of ``config``: it holds a run (finished, or with a saved state) made
    with another config. None when the folder is free or holds this same config."""
    what = held_run(output_dir)
    if not what:
        return None
    config_file = output_dir / "config.yaml"
    changes = config_changes(OmegaConf.to_container(OmegaConf.load(config_file), resolve=True), config) \
        if config_file.is_file() else ["no config.yaml to compare"]
    if not changes:
        return None
    return f"the folder holds {what} with another config ({'; '.join(changes[:5])}{' ...' if len(changes) > 5 else ''})"


def plan_run_dir(output_dir: Path, config: Mapping[str, Any], mode: str) -> RunPlan:
    """Apply the one-run-per-folder rule (module docstring) to ``output_dir`` for ``trainer.resume=mode``."""
    results_file = output_dir / "results.json"
    state = latest_state(output_dir)
    what = held_run(output_dir)
    if not (what or (output_dir / "config.yaml").is_file()):
        if mode == "must":
            raise RunDirError("no run to resume here", where=str(output_dir),
                              expected="a folder with a saved state (trainer.resume=must); auto starts a new run")
        return RunPlan("new")
    if what and mode == "never":
        raise RunDirError(f"the folder holds {what}", where=str(output_dir),
                          expected="an unused folder with trainer.resume=never: choose another hydra.run.dir, "
                                   "delete this one, or continue it with trainer.resume=auto")
    if problem := other_config(output_dir, config):
        raise RunDirError(problem, where=str(output_dir),
                          expected="the same config to continue it; for a new run choose another hydra.run.dir "
                                   "or delete this folder")
    if results_file.is_file():
        log.info("%s already holds this run's results (delete the folder to run it again)", output_dir)
        return RunPlan("done", results=json.loads(results_file.read_text(encoding="utf-8")))
    if state:
        return RunPlan("resume", state=state)
    if mode == "must":
        raise RunDirError("the earlier run here stopped before saving a state", where=str(output_dir),
                          expected="a folder with a saved state (trainer.resume=must); auto starts it again")
    log.info("%s: clearing the files of an earlier run that stopped before its first evaluation", output_dir)
    clear_run_dir(output_dir)
    return RunPlan("new")


def finished_result(run_dir: str | Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``results.json`` in ``run_dir`` if that run is finished and was made by this same config, else None
    (what ``plan_run_dir`` returns as ``done``; ``scripts/reproduce.py`` asks it before starting a process)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    return None if config_changes(result.get("config") or {}, config) else result


__all__ = ["RUN_FILES", "RunPlan", "clear_run_dir", "config_changes", "finished_result", "held_run", "other_config",
           "plan_run_dir"]
