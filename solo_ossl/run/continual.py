"""The task-by-task continual driver: what ``main_continual.py`` runs, for any regime that trains in epochs (CaSSLe,
or plain fine-tuning with ``regime: offline``)."""

import copy
from pathlib import Path

from solo_ossl.regimes import REGIMES
from solo_ossl.run.common import last_task
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.errors import SoloOsslError


def run_continual(cfg, callbacks=()) -> list[Path]:
    """Tasks 2..``data.last_task`` (default ``data.num_tasks``), one run of ``cfg.regime`` per task: task t starts
    from task t-1's final checkpoint (``pretrained_ckpt``, the task-1 model, for task 2) and trains ``max_epochs``
    on its classes. Task t runs in ``<output_dir>/<name>/task<t>``; a task whose final checkpoint exists is not
    trained again, so an interrupted sequence continues where it stopped (within a task, pass ``++resume`` as for
    any offline run). Returns the tasks' final checkpoints."""
    if not cfg.pretrained_ckpt:
        raise SoloOsslError("the continual sequence starts from the task-1 model: pass ++pretrained_ckpt=<checkpoint>")
    if REGIMES[cfg.regime].driver != "epochs":
        raise SoloOsslError(
            f"main_continual.py trains task by task in epochs, and regime '{cfg.regime}' streams: use a pretrain/ "
            "config, not an online/ one"
        )
    root, previous, finals = Path(cfg.output_dir) / cfg.name, cfg.pretrained_ckpt, []
    for task in range(2, last_task(cfg) + 1):
        final = root / f"task{task}" / "final.ckpt"
        if final.is_file():
            print(f"[continual] task {task}: done before ({final}), skipped")
        else:
            task_cfg = copy.deepcopy(cfg)
            task_cfg.data.tasks = [task]
            task_cfg.pretrained_ckpt = str(previous)
            task_cfg.output_dir, task_cfg.name = str(root), f"task{task}"
            final = run_pretrain(task_cfg, list(callbacks))
        finals.append(final)
        previous = final
    return finals
