"""UMAP of a frozen backbone's test features, coloured by task and by class, as solo-learn and CaSSLe plot them:
what ``main_umap.py`` runs. ``umap-learn`` is an optional extra (``pip install -e ".[umap]"``)."""

from pathlib import Path

from omegaconf import DictConfig

from solo_ossl.data import class_order, split_tasks
from solo_ossl.run.linear import frozen_setup, split_features
from solo_ossl.utils.errors import SoloOsslError


def run_umap(cfg: DictConfig) -> Path:
    try:
        import umap
    except ImportError as e:
        raise SoloOsslError(
            'main_umap.py needs umap-learn: pip install -e ".[umap]" (or pip install umap-learn)'
        ) from e
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits, dali, backbone, precision = frozen_setup(cfg)
    feats, labels = split_features(cfg, splits, dali, backbone, precision, "test")
    points = umap.UMAP(n_components=2, random_state=cfg.seed).fit_transform(feats.numpy())
    tasks = split_tasks(
        class_order(splits.num_classes, cfg.data.class_order_seed, cfg.data.class_order), cfg.data.num_tasks
    )
    task_of = {c: t + 1 for t, classes in enumerate(tasks) for c in classes}
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (title, colour) in zip(
        axes, (("task", [task_of[int(y)] for y in labels]), ("class", labels.tolist())), strict=True
    ):
        scatter = ax.scatter(
            points[:, 0], points[:, 1], c=colour, s=3, cmap="tab10" if title == "task" else "nipy_spectral"
        )
        ax.set(title=f"test features by {title}", xticks=[], yticks=[])
        if title == "task":
            ax.legend(*scatter.legend_elements(), title="task", fontsize=8, loc="best")
    source = "random init" if cfg.random_init else Path(cfg.pretrained_ckpt).name
    fig.suptitle(f"UMAP of {source} ({cfg.data.dataset}, {len(labels)} test images)")
    fig.tight_layout()
    out = Path(cfg.output_dir) / cfg.name / "umap.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
