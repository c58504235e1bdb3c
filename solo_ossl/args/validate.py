"""Validators of the config sections that need no registry: ranges and keys that depend on each other, which the
schema's types cannot say. The drivers (``solo_ossl.run.validate``) run them with the registry checks and each
regime's own validator when a run starts; the first problem raises a ``SoloOsslError`` that names its key and what
to set. Nothing here imports a runtime module."""

from solo_ossl.utils.errors import SoloOsslError


def at_least(section: str, node, minimum: float, *keys: str) -> None:
    for key in keys:
        if node[key] < minimum:
            raise SoloOsslError(f"{f'{section}.' if section else ''}{key} must be at least {minimum}, got {node[key]}")


def one_of(key: str, value: str, choices) -> None:
    if value not in choices:
        raise SoloOsslError(f"unknown {key} '{value}' (choose {', '.join(choices)})")


def validate_processes(cfg) -> None:
    if cfg.devices < 1 or cfg.num_nodes < 1:
        raise SoloOsslError(
            f"devices and num_nodes must be at least 1, got devices={cfg.devices} num_nodes={cfg.num_nodes}"
        )
    if cfg.dist_timeout_s < 1:
        raise SoloOsslError(f"dist_timeout_s must be at least 1 second, got {cfg.dist_timeout_s}")


def validate_data(data) -> None:
    at_least("data", data, 1, "num_tasks", "crop_size", "load_size", "synthetic_num_classes", "synthetic_per_class")
    at_least("data", data, 0, "num_workers", "train_per_class", "dali_threads", "dali_cache_gb", "last_task")
    if data.loader == "dali" and data.dataset not in ("imagefolder", "webdataset"):
        raise SoloOsslError(
            f"data.loader=dali decodes encoded images: it needs data.dataset=imagefolder or webdataset, not "
            f"'{data.dataset}' (array datasets are augmented in batches by the torch loader)"
        )
    at_least("data.live", data.live, 0, "max_pending")
    if data.live.poll_s <= 0 or data.live.idle_timeout_s <= 0:
        raise SoloOsslError(
            f"data.live.poll_s and data.live.idle_timeout_s must be positive seconds, got {data.live.poll_s} and "
            f"{data.live.idle_timeout_s}"
        )
    if data.last_task > data.num_tasks:
        raise SoloOsslError(f"data.last_task={data.last_task} is beyond data.num_tasks={data.num_tasks}")


def validate_backbone_shape(backbone) -> None:
    if backbone.width <= 0:
        raise SoloOsslError(f"backbone.width must be positive, got {backbone.width}")


def validate_method_sizes(method) -> None:
    if method.group_size is not None and method.group_size < 1:
        raise SoloOsslError(
            f"method.group_size must be >= 1 (or null for the method's default), got {method.group_size}"
        )
    at_least("method", method, 1, "proj_hidden_dim", "proj_output_dim")


def validate_momentum(momentum) -> None:
    if not 0 <= momentum.base_tau <= momentum.final_tau <= 1:
        raise SoloOsslError(
            f"momentum needs 0 <= base_tau <= final_tau <= 1, got base_tau={momentum.base_tau} "
            f"final_tau={momentum.final_tau}"
        )


def validate_optimizer(optimizer) -> None:
    at_least("optimizer", optimizer, 1, "batch_size")
    at_least("optimizer", optimizer, 0, "lr", "weight_decay", "momentum", "classifier_lr")


def validate_scheduler(scheduler) -> None:
    at_least("scheduler", scheduler, 0, "warmup_epochs", "min_lr")
    if not 0 <= scheduler.max_warmup_share < 1:
        raise SoloOsslError(f"scheduler.max_warmup_share must be in [0, 1), got {scheduler.max_warmup_share}")


def validate_knn(section: str, knn) -> None:
    at_least(section, knn, 1, "k")
    if knn.temperature <= 0:
        raise SoloOsslError(f"{section}.temperature must be positive, got {knn.temperature}")


def validate_eval(evaluation) -> None:
    at_least("eval", evaluation, 0, "every")
    at_least("eval", evaluation, 1, "train_samples", "test_samples")
    validate_knn("eval.knn", evaluation.knn)
