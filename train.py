#!/usr/bin/env python
"""Train and evaluate one task × loss × model cell.

    python train.py                                   # the bundled POS sample with the tiny model (offline)
    python train.py task=conll03 loss=dsc             # a paper setting: the task's encoder, the official dice script
    python train.py task=squad2 loss=fl model=bert    # SQuAD 2.0 trains XLNet by default; model=bert: BERT-Large
    python train.py experiment=table5 task=msra loss=dsc              # one cell of the paper's Table 5
    python train.py experiment=table5 task=msra loss=dsc scale=smoke  # the same cell, tiny model + bundled sample
    python train.py task=mrpc loss=dsc scale=mini     # a small real encoder on the real data, CPU budget
    python train.py --help                            # the config groups; --cfg job --resolve prints a run's config
    accelerate launch --num_processes 4 train.py task=wsj loss=dsc hydra.run.dir=outputs/wsj_dsc

    python train.py ... hydra.run.dir=outputs/x       # run again after a kill: continues from the last evaluation

How the configs compose: configs/train.yaml (comment at the top) and docs/reproduction.md.
Hydra stays here and in dicenlp/run.py; everything below takes plain arguments. A mistake in the input (data,
config, device) prints one line ``error: <where>: <what>; expected <what>`` and exits with code 2; an unexpected
error keeps its traceback (exit code 1).
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    from dicenlp.errors import exit_on_user_error
    from dicenlp.run import run

    # a multirun goes on with its other jobs after a job's mistake (and exits with 1 at the end)
    results = exit_on_user_error(run, cfg, in_sweep=HydraConfig.get().mode == RunMode.MULTIRUN)
    metric = results["primary_metric"]
    split = "test" if results["test"] else "dev"
    print(f"{results['task']} × {results['loss']} × {results['model']} (seed {results['seed']}): "
          f"{split} {metric} = {results[split][metric]:.2f}  →  {results['output_dir']}/results.json")
    return results["dev"][metric]  # the value Hydra sweepers optimise


if __name__ == "__main__":
    main()
