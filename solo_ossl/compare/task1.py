"""The task-1 checkpoints that start every strategy: one shared (the paper's one start), or one per seed
(``--task1 per_seed``), trained when missing, and checked against the finished runs that started from them."""

import json
from pathlib import Path

from solo_ossl.args import load_config
from solo_ossl.compare.probe import Prober
from solo_ossl.data import build_datasets
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.checkpoint import weights_fingerprint
from solo_ossl.utils.errors import SoloOsslError


def check_same_start(what: Path, recorded: str | None, current: str | None) -> None:
    """A finished result counts for this seed only if it started from the task-1 weights the seed has now."""
    if recorded is not None and current is not None and recorded != current:
        raise SoloOsslError(
            f"{what} started from task-1 weights {recorded}, but this seed's task-1 checkpoint is now {current} "
            "(retrained on another machine or code?): restore that checkpoint, or move the seed's finished runs "
            "away to train the seed again from the new one"
        )


class Task1:
    """``output_dir/task1``: the checkpoints, their fingerprints and their probes (stored once per seed, so that a
    report needs no checkpoint)."""

    def __init__(self, output_dir: Path, config: str, common: list[str], epochs: int | None, per_seed: bool) -> None:
        self.output_dir, self.dir = output_dir, output_dir / "task1"
        self.config, self.common, self.epochs, self.per_seed = config, common, epochs, per_seed
        self.starts: dict[int, tuple[Path, str]] = {}

    def checkpoint(self, seed: int) -> Path:
        """The task-1 checkpoint that starts ``seed``'s runs, trained here when it is missing."""
        run_dir = self.dir / f"seed{seed}" if self.per_seed else self.dir
        final = run_dir / "task1" / "final.ckpt"
        if final.is_file():
            print(f"[compare] task-1 checkpoint {final}: done before, skipped")
            return final
        extra = [f"++max_epochs={self.epochs}"] if self.epochs else []
        extra += [f"++seed={seed}"] if self.per_seed else []
        print(f"[compare] training the task-1 checkpoint {final}")
        overrides = [*self.common, f"++output_dir={run_dir}", "++name=task1", "++data.tasks=[1]", *extra]
        run_pretrain(load_config(["--config-name", self.config, *overrides]))
        return final

    def start(self, seed: int) -> tuple[Path, str]:
        """``seed``'s task-1 checkpoint and its weights' fingerprint, checked against every finished result of the
        seed: a new run joins them only if it starts from the same weights."""
        if seed not in self.starts:
            task1 = self.checkpoint(seed)
            self.starts[seed] = task1, weights_fingerprint(task1)
            runs = f"seed{seed}" if self.per_seed else "seed*"  # the runs that start from this checkpoint
            finished = {
                *self.output_dir.glob(f"*_{runs}/result.json"),
                *self.output_dir.glob(f"*_{runs}_*/result.json"),
            }
            finished |= set(self.dir.glob(f"probe_{runs}.json"))
            for path in sorted(finished):
                check_same_start(path, json.loads(path.read_text()).get("task1_fingerprint"), self.starts[seed][1])
        return self.starts[seed]

    def evaluation(self, seed: int, prober: Prober) -> dict:
        stored = self.dir / f"probe_seed{seed}.json"
        if stored.is_file():
            return json.loads(stored.read_text())
        task1, fingerprint = self.start(seed)
        return prober.cached(task1, seed, stored, fingerprint)

    def recorded_num_classes(self, first_seed: int) -> int:
        """The number of classes, as every task-1 run records it with its class split, or, before any task-1 run,
        as the dataset has them (read here, not trained: with a launcher the task-1 runs are jobs)."""
        recorded = next(self.dir.glob("**/task1/class_order.json"), None)
        if recorded is not None:
            return len(json.loads(recorded.read_text())["class_order"])
        cfg = load_config(["--config-name", self.config, *self.common, f"++seed={first_seed}"])
        return build_datasets(cfg.data, cfg.seed).num_classes
