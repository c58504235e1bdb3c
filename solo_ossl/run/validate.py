"""What a run checks before it starts: the sections' validators (``solo_ossl.args.validate``), the registries
(backbones, methods, regimes) and the configured regime's own validator."""

from solo_ossl.args.validate import (
    at_least,
    one_of,
    validate_backbone_shape,
    validate_data,
    validate_eval,
    validate_knn,
    validate_method_sizes,
    validate_momentum,
    validate_optimizer,
    validate_processes,
    validate_scheduler,
)
from solo_ossl.backbones import BACKBONES
from solo_ossl.methods import METHODS
from solo_ossl.regimes import REGIMES
from solo_ossl.utils.device import PRECISIONS


def validate_hardware(cfg) -> None:
    one_of("precision", cfg.precision, PRECISIONS)
    validate_processes(cfg)


def validate_backbone(backbone) -> None:
    one_of("backbone.name", backbone.name, BACKBONES)
    validate_backbone_shape(backbone)


def validate_pretrain(cfg) -> None:
    validate_hardware(cfg)
    validate_data(cfg.data)
    validate_backbone(cfg.backbone)
    one_of("method.name", cfg.method.name, METHODS)
    METHODS[cfg.method.name].complete_config(cfg)  # the method's own keys, checked
    validate_method_sizes(cfg.method)
    validate_momentum(cfg.momentum)
    validate_optimizer(cfg.optimizer)
    validate_scheduler(cfg.scheduler)
    validate_eval(cfg.eval)
    at_least("", cfg, 0, "max_epochs")
    one_of("regime", cfg.regime, REGIMES)
    REGIMES[cfg.regime].validate(cfg, METHODS[cfg.method.name].scoring_group_size(cfg.method))


def validate_linear(cfg) -> None:
    validate_hardware(cfg)
    validate_data(cfg.data)
    validate_backbone(cfg.backbone)
    validate_knn("knn", cfg.knn)
    at_least("", cfg, 1, "max_epochs", "batch_size")
    at_least("", cfg, 0, "lr", "weight_decay", "momentum")
