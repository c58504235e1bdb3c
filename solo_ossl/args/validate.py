"""One validator per config section: what the schema's types cannot say (ranges, registries, keys that depend on
each other). ``validate_pretrain`` and ``validate_linear`` run them when a run starts; the first problem raises a
``SoloOsslError`` that names its key and what to set."""

from solo_ossl.utils.errors import SoloOsslError


def _at_least(section: str, node, minimum: float, *keys: str) -> None:
    for key in keys:
        if node[key] < minimum:
            raise SoloOsslError(f"{f'{section}.' if section else ''}{key} must be at least {minimum}, got {node[key]}")


def _one_of(key: str, value: str, choices) -> None:
    if value not in choices:
        raise SoloOsslError(f"unknown {key} '{value}' (choose {', '.join(choices)})")


def validate_hardware(cfg) -> None:
    from solo_ossl.utils.device import PRECISIONS

    _one_of("precision", cfg.precision, PRECISIONS)
    if cfg.devices < 1 or cfg.num_nodes < 1:
        raise SoloOsslError(
            f"devices and num_nodes must be at least 1, got devices={cfg.devices} num_nodes={cfg.num_nodes}"
        )
    if cfg.dist_timeout_s < 1:
        raise SoloOsslError(f"dist_timeout_s must be at least 1 second, got {cfg.dist_timeout_s}")


def validate_data(data) -> None:
    _at_least("data", data, 1, "num_tasks", "crop_size", "load_size", "synthetic_num_classes", "synthetic_per_class")
    _at_least("data", data, 0, "num_workers", "train_per_class", "dali_threads", "dali_cache_gb")
    if data.loader == "dali" and data.dataset != "imagefolder":
        raise SoloOsslError(
            f"data.loader=dali reads image files: it needs data.dataset=imagefolder, not '{data.dataset}' "
            "(array datasets are augmented in batches by the torch loader)"
        )


def validate_backbone(backbone) -> None:
    from solo_ossl.backbones import BACKBONES

    _one_of("backbone.name", backbone.name, BACKBONES)
    if backbone.width <= 0:
        raise SoloOsslError(f"backbone.width must be positive, got {backbone.width}")


def validate_method(method) -> None:
    from solo_ossl.methods import METHODS

    _one_of("method.name", method.name, METHODS)
    if method.group_size is not None and method.group_size < 1:
        raise SoloOsslError(
            f"method.group_size must be >= 1 (or null for the method's default), got {method.group_size}"
        )
    _at_least("method", method, 1, "proj_hidden_dim", "proj_output_dim")


def validate_optimizer(optimizer) -> None:
    _at_least("optimizer", optimizer, 1, "batch_size")
    _at_least("optimizer", optimizer, 0, "lr", "weight_decay", "momentum", "classifier_lr")


def validate_scheduler(scheduler) -> None:
    _at_least("scheduler", scheduler, 0, "warmup_epochs", "min_lr")
    if not 0 <= scheduler.max_warmup_share < 1:
        raise SoloOsslError(f"scheduler.max_warmup_share must be in [0, 1), got {scheduler.max_warmup_share}")


def validate_online(online, group_size: int) -> None:
    """The online regime's settings for a method scoring units of ``group_size`` samples."""
    from solo_ossl.online.memory import POLICIES
    from solo_ossl.online.selection import SELECTION_CHOICES
    from solo_ossl.online.step import memory_batch_size, pct_start_for

    _at_least("online", online, 1, "steps_per_batch", "stream_batch_size", "checkpoint_every")
    _at_least("online", online, 0, "max_stream_batches")
    _at_least("online.memory", online.memory, 1, "capacity")
    if online.time_budget_s < 0:
        raise SoloOsslError(f"online.time_budget_s must be >= 0 (0: a fixed N), got {online.time_budget_s}")
    pct_start = pct_start_for(online, online.steps_per_batch)
    if pct_start * online.steps_per_batch <= 1:
        raise SoloOsslError(
            f"online.steps_per_batch={online.steps_per_batch} x online.pct_start={pct_start} must exceed 1 for a "
            "one-cycle schedule: use at least 3 steps (pct_start 0.5)"
        )
    _one_of("online.memory.policy", online.memory.policy, POLICIES)
    _one_of("online.selection", online.selection, SELECTION_CHOICES)
    if online.selection == "none":
        return
    k, memory = online.k, memory_batch_size(online)
    candidates = online.stream_batch_size + memory
    if k > candidates:
        raise SoloOsslError(
            f"online.k={k} is larger than the {candidates} candidates per step (stream {online.stream_batch_size} "
            f"+ memory {memory}): lower k or raise online.memory.batches"
        )
    if k < group_size or k % group_size:
        raise SoloOsslError(f"online.k={k} must be a positive multiple of method.group_size={group_size}")
    for what, size in (("online.stream_batch_size", online.stream_batch_size), ("memory batch", memory)):
        if size % group_size:
            raise SoloOsslError(
                f"{what} {size} is not divisible by method.group_size {group_size}: selection keeps whole groups"
            )


def validate_cassle(cfg) -> None:
    if cfg.cassle.enabled and cfg.online.enabled:
        raise SoloOsslError("cassle.enabled and online.enabled exclude each other: CaSSLe trains task by task")
    _at_least("cassle", cfg.cassle, 0, "distill_lamb")
    _at_least("cassle", cfg.cassle, 1, "proj_hidden_dim")


def validate_knn(section: str, knn) -> None:
    _at_least(section, knn, 1, "k")
    if knn.temperature <= 0:
        raise SoloOsslError(f"{section}.temperature must be positive, got {knn.temperature}")


def validate_eval(evaluation) -> None:
    _at_least("eval", evaluation, 0, "every")
    _at_least("eval", evaluation, 1, "train_samples", "test_samples")
    validate_knn("eval.knn", evaluation.knn)


def validate_pretrain(cfg) -> None:
    from solo_ossl.methods import METHODS

    validate_hardware(cfg)
    validate_data(cfg.data)
    validate_backbone(cfg.backbone)
    validate_method(cfg.method)
    validate_optimizer(cfg.optimizer)
    validate_scheduler(cfg.scheduler)
    validate_cassle(cfg)
    validate_eval(cfg.eval)
    _at_least("", cfg, 0, "max_epochs")
    if cfg.online.enabled:
        validate_online(cfg.online, METHODS[cfg.method.name].scoring_group_size(cfg.method))


def validate_linear(cfg) -> None:
    validate_hardware(cfg)
    validate_data(cfg.data)
    validate_backbone(cfg.backbone)
    validate_knn("knn", cfg.knn)
    _at_least("", cfg, 1, "max_epochs", "batch_size")
    _at_least("", cfg, 0, "lr", "weight_decay", "momentum")
