"""How far a resumed GPU online run lands from the uninterrupted one, with and without deterministic kernels:
the largest absolute weight difference, full run against a second full run and against a resumed run.

    python benchmarks/gpu_resume_diag.py OUTDIR
"""

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solo_ossl.args import load_config  # noqa: E402
from solo_ossl.run.pretrain import run_pretrain  # noqa: E402
from tests.test_online import ONLINE, Recorder  # noqa: E402


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=False, map_location="cpu")["state_dict"]


def largest_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point())


def config(out: Path, name: str, deterministic: bool, *extra: str):
    from tests.conftest import TINY

    common = [*ONLINE, "++online.checkpoint_every=2", "++method.group_size=4", "++online.k=24", "++accelerator=gpu"]
    flags = [f"++deterministic={str(deterministic).lower()}", f"++output_dir={out}", f"++name={name}"]
    return load_config(["--config-name", "online/embedded/barlow_rals", *TINY, *common, *flags, *extra])


def main() -> None:
    out = Path(sys.argv[1])
    result = {}
    for deterministic in (False, True):
        tag = "deterministic" if deterministic else "benchmark"
        full = weights(run_pretrain(config(out / tag, "full", deterministic)))
        again = weights(run_pretrain(config(out / tag, "again", deterministic)))
        run_pretrain(config(out / tag, "cut", deterministic), [Recorder(stop_after=7)])
        last = out / tag / "cut" / "checkpoints" / "last.ckpt"
        resumed = weights(run_pretrain(config(out / tag, "cut", deterministic, f"++resume={last}")))
        result[tag] = {
            "full_vs_second_full": largest_difference(full, again),
            "full_vs_resumed": largest_difference(full, resumed),
        }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
