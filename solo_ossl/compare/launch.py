"""Where the comparison's runs execute (``--launcher``): here, one after another (``inline``, the default), or as
submitit jobs, on this machine (``local``: submitit's local executor, one process per job, all at once) or on a SLURM
cluster (``slurm``, with the ``cluster`` extra; ``--launcher-param slurm_partition=gpu`` etc. go to submitit's
``update_parameters``).

A job is one call of the runner's own functions, so a job trains and probes exactly what an inline run does, in the
same folder: each seed's start first (its task-1 checkpoint, trained when missing, and the probes of task 1 and of a
random backbone, written once so that no two jobs write them), then one job per (strategy, N, seed). A job stopped by
its cluster (preemption, time limit) is requeued by submitit with the same call (``Checkpointable``) and continues its
run from the run folder's checkpoints (auto-resume); finished runs are skipped as before.
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from solo_ossl.compare.runner import Comparison, run_strategy
from solo_ossl.utils.errors import SoloOsslError

LAUNCHERS = ("inline", "local", "slurm")


def prepare_seed(comparison: Comparison, seed: int) -> None:
    """``seed``'s start: its task-1 checkpoint and the probes every run of the seed reads."""
    comparison.task1.evaluation(seed, comparison.prober)
    comparison.random_evaluation(seed)


def parse_params(params: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs for submitit's ``update_parameters``; numbers become numbers."""
    parsed: dict[str, Any] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise SoloOsslError(
                f"--launcher-param {param!r}: write KEY=VALUE (e.g. slurm_partition=gpu, timeout_min=600)"
            )
        parsed[key] = int(value) if value.lstrip("-").isdigit() else value
    return parsed


class Job:
    """One runner call as a submitit job; requeued with the same call when its cluster stops it."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __call__(self) -> Any:
        return self.fn(*self.args)

    def checkpoint(self):  # submitit calls this on preemption or timeout: run the same call again
        import submitit

        return submitit.helpers.DelayedSubmission(Job(self.fn, *self.args))


def run_all(
    comparison: Comparison,
    seeds: Sequence[int],
    runs: Sequence[tuple[str, int, int]],
    launcher: str = "inline",
    params: Sequence[str] = (),
) -> None:
    """Each seed's start, then every (strategy, N, seed) run, through ``launcher``."""
    if launcher == "inline":
        for strategy, steps, seed in runs:
            run_strategy(strategy, steps, seed, comparison)
        return
    try:
        import submitit
    except ImportError as e:
        raise SoloOsslError(
            f"--launcher {launcher} needs submitit: pip install -e '.[cluster]' (hydra-submitit-launcher)"
        ) from e
    executor = submitit.AutoExecutor(folder=str(Path(comparison.output_dir) / "submitit" / "%j"), cluster=launcher)
    executor.update_parameters(name="solo-ossl-compare", **parse_params(params))
    first, rest = seeds[:1], seeds[1:]
    if comparison.task1.per_seed:
        first, rest = seeds, []
    # A shared task-1 checkpoint is trained by the first seed's job alone; the other seeds' starts then only probe.
    for batch in (first, rest):
        wait(executor, [(f"seed {s}: task-1 start", Job(prepare_seed, comparison, s)) for s in batch])
    wait(
        executor,
        [(f"{s}, N={n}, seed {seed}", Job(run_strategy, s, n, seed, comparison)) for s, n, seed in runs],
    )


def wait(executor, jobs: list[tuple[str, Job]]) -> None:
    """Submit ``jobs`` and wait for all of them; a failed one is named with its log, after the others end."""
    if not jobs:
        return
    submitted = [(what, executor.submit(job)) for what, job in jobs]
    print(f"[compare] submitted {len(submitted)} job(s): {', '.join(j.job_id for _, j in submitted)}")
    failed = []
    for what, job in submitted:
        try:
            job.result()
            print(f"[compare] job {job.job_id} ({what}) finished")
        except Exception:  # submitit re-raises the job's error with its traceback: name it and its log
            failed.append(f"{what} (job {job.job_id}, log {job.paths.stderr})")
    if failed:
        raise SoloOsslError(f"{len(failed)} job(s) failed: {'; '.join(failed)}; rerun the command to continue them")
