"""Weighted kNN accuracy of a frozen backbone (solo-learn's protocol: cosine similarity, k = 20 neighbours voting
exp(sim / 0.07)): python main_knn.py --config-name linear/cifar100 ++pretrained_ckpt=PATH [++knn.k=20 ...]
(Hydra's flags too: solo_ossl/args/cli.py)."""

import json
import sys
from pathlib import Path

from solo_ossl.args import LinearConfig
from solo_ossl.args.cli import run_entry_point
from solo_ossl.run.linear import run_knn
from solo_ossl.utils.errors import exit_on_user_error


def knn(cfg, overrides: list[str]) -> dict:
    results = run_knn(cfg)
    out = Path(cfg.output_json) if cfg.output_json else Path(cfg.output_dir) / cfg.name / "knn_results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"kNN ({results['checkpoint']}): top-1 {results['knn_top1']:.2f}%, top-5 {results['knn_top5']:.2f}%")
    return results


@exit_on_user_error
def main(argv: list[str]) -> dict | None:
    return run_entry_point(argv, LinearConfig, knn, "main_knn")


if __name__ == "__main__":
    main(sys.argv[1:])
