"""The typed configuration schema. YAML files and ``++key=value`` overrides are merged onto it, so an unknown
key, a value of the wrong type or a value outside a closed set of choices (the enums below) is rejected with the
key's name. Choices that grow by registration (methods, backbones, selection rules, memory policies) are strings
checked against their registries, and ranges and keys that depend on each other by one validator per section
(``solo_ossl.args.validate``)."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Dataset(StrEnum):
    cifar10 = "cifar10"
    cifar100 = "cifar100"
    npz = "npz"
    embedded = "embedded"
    imagefolder = "imagefolder"
    unlabeled_folder = "unlabeled_folder"
    synthetic = "synthetic"
    webdataset = "webdataset"
    live_folder = "live_folder"


class BadImage(StrEnum):
    stop = "stop"
    skip = "skip"


class WhenBehind(StrEnum):
    wait = "wait"
    drop_oldest = "drop_oldest"


class Loader(StrEnum):
    torch = "torch"
    dali = "dali"


class DaliDevice(StrEnum):
    auto = "auto"
    gpu = "gpu"
    cpu = "cpu"


class OptimizerName(StrEnum):
    lars = "lars"
    sgd = "sgd"


class SchedulerName(StrEnum):
    warmup_cosine = "warmup_cosine"
    none = "none"


class MemoryStore(StrEnum):
    images = "images"
    indices = "indices"


class BlurryMode(StrEnum):
    neighbours = "neighbours"
    boundary = "boundary"


class StreamOrder(StrEnum):
    class_incremental = "class_incremental"
    iid = "iid"
    as_stored = "as_stored"


# global: the top-k over every process's candidates, what one process over the global batch keeps; local: each
# process keeps the top k / world of its own candidates (no score exchange). Functional, since "global" is a keyword.
SelectionScope = StrEnum("SelectionScope", {"global": "global", "local": "local"})


class Accelerator(StrEnum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"
    cuda = "cuda"


class Strategy(StrEnum):
    auto = "auto"
    ddp = "ddp"


class LoggerName(StrEnum):
    csv = "csv"
    tensorboard = "tensorboard"
    wandb = "wandb"


class LinearMode(StrEnum):
    features = "features"
    augmented = "augmented"


class LinearScheduler(StrEnum):
    step = "step"
    cosine = "cosine"


@dataclass
class ViewAugmentConfig:
    """solo-learn's augmentation recipe for one view (probabilities per image)."""

    crop_min_scale: float = 0.08
    crop_max_scale: float = 1.0
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    color_jitter_prob: float = 0.8
    gray_scale_prob: float = 0.2
    gaussian_prob: float = 0.0
    solarization_prob: float = 0.0
    horizontal_flip_prob: float = 0.5


@dataclass
class LiveConfig:
    """``data.dataset=live_folder``: a folder watched by polling (local disks and network mounts alike), whose new
    image files form stream batches in the order they arrive (modification time, then name). A writer writes each
    file under a hidden or non-image name and renames it when complete (names starting with '.' are not read)."""

    poll_s: float = 0.5  # seconds between two listings of the folder while the trainer waits for files
    # The run stops when no new file has arrived for this long and fewer than a stream batch wait (those that wait
    # are trained first, cut to whole selection units); also on online.max_stream_batches, or SIGTERM (it saves
    # last.ckpt: the same command continues with the files not yet trained on).
    idle_timeout_s: float = 60.0
    # Files arriving faster than the trainer trains: at most max_pending files wait in the queue (0: no bound). wait:
    # the files beyond it stay on disk and join the queue in arrival order as it drains (none is lost; the stream
    # falls behind); drop_oldest: the oldest waiting files are dropped (never trained on; counted as dropped_files
    # and listed in stream_files.csv), so that the stream keeps up with the newest.
    max_pending: int = 0
    when_behind: WhenBehind = WhenBehind.wait


@dataclass
class DataConfig:
    # cifar10 | cifar100 (torchvision) | npz (arrays x_train/y_train/x_test/y_test) | embedded (shipped subset)
    # | imagefolder (train/<class>/*, val/<class>/*) | unlabeled_folder (every image under data_dir, no labels: a
    # stream with online.stream.order iid or as_stored; no evaluation) | synthetic (generated, for tests)
    # | webdataset (online: tar shards streamed in their stored order; data_dir is their brace pattern, URL or pipe:
    # command; python main_shards.py writes any dataset as shards) | live_folder (online: image files streamed as
    # they land in data_dir; data.live)
    dataset: Dataset = Dataset.cifar100
    data_dir: str = "datasets"
    # torch: images decoded in this process (PIL for imagefolder) and augmented in batches on the device (solo_ossl.data.augment);
    # dali: an imagefolder's files (or webdataset shards' images) decoded and augmented by NVIDIA DALI pipelines
    # (extra [dali]); the stream and the memory then carry file indices (stream positions).
    loader: Loader = Loader.torch
    dali_device: DaliDevice = DaliDevice.auto  # auto: the device the run trains on (from accelerator)
    dali_threads: int = 0  # DALI worker threads; 0: min(8, CPU cores)
    # Encoded training files kept in RAM after their first read, up to this many GiB (0: off). The online step
    # re-reads memory samples at every local step; ImageNet-100's training JPEGs are about 13 GB.
    dali_cache_gb: float = 0.0
    download: bool = False
    num_workers: int = 2
    crop_size: int = 32
    # An image file that cannot be decoded: stop the run with an error naming it, or skip it (left out of its batch,
    # its path logged once, the count in metrics.csv as skipped_images and in the run's summary).
    on_bad_image: BadImage = BadImage.stop
    # imagefolder: images are decoded, resized (shorter side) and center-cropped to load_size before
    # batched augmentation crops them to crop_size.
    load_size: int = 32
    # Class-incremental split: classes permuted with class_order_seed (or given by class_order), cut into num_tasks.
    num_tasks: int = 5
    class_order_seed: int = 5
    class_order: list[int] | None = None
    # Offline training on a subset of tasks (1-based), e.g. [1] for the task-1 checkpoint; null = all tasks.
    tasks: list[int] | None = None
    # > 0: the sequence stops after this task (a run truncated to the first tasks): the stream and CaSSLe's task
    # loop end there, and "all tasks" means tasks 1..last_task. 0: num_tasks.
    last_task: int = 0
    # Keep at most this many training images per class (0 = all): CPU-scale experiments.
    train_per_class: int = 0
    synthetic_num_classes: int = 10
    synthetic_per_class: int = 32
    live: LiveConfig = field(default_factory=LiveConfig)
    augmentations: list[ViewAugmentConfig] = field(
        default_factory=lambda: [ViewAugmentConfig(), ViewAugmentConfig(solarization_prob=0.2)]
    )


@dataclass
class BackboneConfig:
    name: str = "resnet18"  # a key of solo_ossl.backbones.BACKBONES
    # null: CIFAR stem for images of 64 px or less, ImageNet stem otherwise.
    cifar: bool | None = None
    width: float = 1.0


@dataclass
class MethodConfig:
    """The keys every method has. A method's own keys (solo-learn's ``method_kwargs``: SimCLR's temperature, Barlow
    Twins' lamb, ...) are declared with their defaults by its class (``BaseMethod.Config``, a subclass of this) and
    checked against it when the method is built: a key that the method does not declare is an error naming it."""

    # A key of solo_ossl.methods.METHODS: barlow_twins | simclr | vicreg | byol | simsiam | mocov3.
    name: str = "barlow_twins"
    proj_hidden_dim: int = 2048
    proj_output_dim: int = 2048
    # Samples scored together by RALS: null = method default (simclr 1, barlow_twins and vicreg 16).
    group_size: int | None = None


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.lars
    batch_size: int = 256
    lr: float = 0.3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    eta: float = 0.02  # LARS trust coefficient
    clip_lr: bool = True
    exclude_bias_n_norm: bool = True
    classifier_lr: float = 0.1


@dataclass
class SchedulerConfig:
    name: SchedulerName = SchedulerName.warmup_cosine
    # Linear warm-up of min(warmup_epochs, max_warmup_share x max_epochs) epochs: CaSSLe's 10 epochs for its
    # 400-500 epoch runs (cassle/methods/base.py, LinearWarmupCosineAnnealingLR), at most a tenth of a short run
    # (1 epoch of a 10-epoch CaSSLe task), so that every run ends annealed at min_lr.
    warmup_epochs: float = 10.0
    max_warmup_share: float = 0.1
    warmup_start_factor: float = 0.01
    min_lr: float = 0.0


@dataclass
class MemoryConfig:
    capacity: int = 10000
    # A key of solo_ossl.memory.POLICIES: reservoir | random | fifo | minred.
    policy: str = "reservoir"
    # Memory samples per step = batches x stream batch size (paper: 1 without RALS, 2 with RALS).
    batches: float = 1.0
    # images: raw uint8 images; indices: dataset indices, decoded each step (large images).
    store: MemoryStore = MemoryStore.images
    seed: int = 0


@dataclass
class StreamConfig:
    # class_incremental: the tasks one after another, each shuffled (CaSSLe's split, the paper's setting);
    # iid: every streamed sample in one seeded shuffle, classes mixed (no task boundaries, no task checkpoints);
    # as_stored: the dataset's own order (an unlabeled folder's path order: a recorded stream).
    order: StreamOrder = StreamOrder.class_incremental
    # class_incremental: blurry task boundaries (solo_ossl.online.stream.BLURRY_BOUNDARIES). neighbours: this share of
    # every task's samples moves into its neighbouring tasks, anywhere in them (as the and Si-Blurry's mixing
    # of tasks); boundary: SCALE's blend ratio (blend_ratio 0.5 in its scripts), samples swapped across each boundary
    # near it. 0: sharp boundaries.
    blurry: float = 0.0
    blurry_mode: BlurryMode = BlurryMode.neighbours


@dataclass
class OnlineConfig:
    """The online regime (``regime: online``)."""

    steps_per_batch: int = 10
    # > 0: instead of a fixed N, as many local steps as fit in this many seconds before the next stream batch is due
    # (the paper's Fig. 1 scenario). N is planned from the measured step time (a running mean over stream batches;
    # steps_per_batch for the first) and logged; runs are then not reproducible bit for bit.
    time_budget_s: float = 0.0
    stream: StreamConfig = field(default_factory=StreamConfig)
    stream_batch_size: int = 128
    skip_first_task: bool = True
    max_lr: float = 0.05
    # How lr and momentum move within each stream batch: one_cycle (SLCLRS, the paper's) or constant (every step at
    # the one-cycle's mean lr and momentum: the ablation that isolates SLCLRS). A key of solo_ossl.online.SCHEDULES.
    schedule: str = "one_cycle"
    pct_start: float = 0.5
    # pct_start for particular N (the paper's Sec. 5.3: 0.25 at 50 steps; in the online configs), else pct_start.
    pct_start_by_steps: dict[int, float] = field(default_factory=dict)
    div_factor: float = 10.0
    final_div_factor: float = 1e4
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    checkpoint_every: int = 50  # stream batches
    max_stream_batches: int = 0  # stop after this many stream batches (0: the whole stream); resume continues
    # With several processes: compare a checksum of the weights over the processes after every stream batch, and
    # stop if they differ (they must stay identical; one all-gather per stream batch).
    check_replicas: bool = False
    # Diagnostic: after every local step, the SSL loss of the stream batch on views drawn once per stream batch
    # (no gradient, BN running statistics untouched); column stream_probe_loss of online_steps.csv. Costs one
    # extra forward of the stream batch per step, and draws from the RNG, so runs with and without it differ.
    probe_stream_loss: bool = False
    # Diagnostic (issue 46's mechanism test): after every local step, the SSL loss of a fixed held-out set of this
    # many test-split images of the first streamed task's classes, on views drawn once from their own generator (no
    # gradient, BN running statistics untouched): the memory holds those classes from the first stream batch on, so
    # the set stands for memory samples never trained on. Training is bitwise the same with and without it; column
    # heldout_probe_loss of online_steps.csv. 0: off. Not counted in images_forward (it is instrumentation).
    probe_heldout: int = 0
    # Diagnostic: online_candidates.npz, per local step and candidate: stream or memory, label, current and anchor
    # loss, kept; per step the gradient and update norms (solo_ossl.online.candidates). A rule that chooses without
    # scores (random) then scores too, with the same choices.
    log_candidates: bool = False
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    # Which candidates (stream + memory) each step trains on: none (all of them); rals (the k whose loss rose most
    # since the stream batch arrived, paper Sec. 4.2); random (k uniformly at random: RALS's ablation, same
    # candidates and backward compute, no scoring passes).
    selection: str = "none"  # none or a key of solo_ossl.online.selection.SELECTIONS
    k: int = 256  # samples trained on per step with selection rals/random (paper: 256 of 384)
    # Several processes: a scored rule (rals and its interventions) keeps the global top-k of every process's units
    # (their scores are gathered, a few KB per step; each process trains on its kept share, whose size may differ),
    # or each process its own top k / world (local). Random choices are drawn per process, k / world each.
    selection_scope: SelectionScope = SelectionScope["global"]


@dataclass
class CassleConfig:
    """CaSSLe distillation from the model frozen at the start of the task (``regime: cassle``, task by task)."""

    distill_lamb: float = 1.0
    proj_hidden_dim: int = 2048  # predictor hidden size
    temperature: float = 0.2  # SimCLR's contrastive distiller
    # Barlow Twins' decorrelative distiller (cassle/distillers/decorrelative.py defaults).
    barlow_lamb: float = 0.005
    barlow_scale_loss: float = 0.1


@dataclass
class MomentumConfig:
    """Momentum (EMA) targets of methods that have one (solo-learn's keys): tau rises from base_tau to final_tau on a
    cosine over the run's optimizer steps (online: over the stream's local steps)."""

    base_tau: float = 0.99
    final_tau: float = 1.0


@dataclass
class KnnConfig:
    """Weighted kNN on frozen features, as solo-learn's: cosine similarity, k neighbours voting exp(sim / T)."""

    enabled: bool = True
    k: int = 20
    temperature: float = 0.07


@dataclass
class EvalConfig:
    """kNN monitor of online runs: top-1 on a fixed, seeded subset of the training and test sets, every ``every``
    stream batches and at each task end (0: never), logged to metrics.csv and the progress bar."""

    every: int = 50
    train_samples: int = 5000
    test_samples: int = 1000
    seed: int = 0  # the subset; the same for every run seed, so runs compare on the same images
    knn: KnnConfig = field(default_factory=KnnConfig)


@dataclass
class HardwareConfig:
    """Where and how a run computes: top-level keys of the pretraining and linear configs."""

    # auto: bf16-mixed where the device runs bf16 natively (avx512_bf16/amx CPUs, Ampere+ GPUs); else fp16 with a
    # GradScaler on a GPU, fp32 on a CPU.
    precision: str = "auto"
    channels_last: bool = True
    accelerator: Accelerator = Accelerator.auto
    # Processes per node (GPUs, or CPU processes with accelerator=cpu), nodes, and the strategy (auto | ddp) that runs
    # them: solo-learn's keys. Offline batch sizes are per process, as in solo-learn; online.stream_batch_size, the
    # memory and k are global, split over the processes.
    devices: int = 1
    num_nodes: int = 1
    strategy: Strategy = Strategy.auto
    # SyncBatchNorm in every run of several processes (offline, CaSSLe, online): BatchNorm's statistics over the global
    # batch, as one process computes them. null (default): on where it runs (GPUs; torch's SyncBatchNorm has no CPU
    # kernel), off on CPU processes; true: on, and an error on CPU processes; false: per-process statistics.
    sync_batchnorm: bool | None = None
    dist_timeout_s: int = 600  # a collective that waits longer (a crashed rank) stops the run
    # CUDA: deterministic kernels instead of cuDNN's autotuned ones (Lightning's Trainer(deterministic=True)), so that
    # a rerun or a resumed run gives the same weights bitwise, at some speed. CPU runs are deterministic either way.
    deterministic: bool = False


@dataclass
class PretrainConfig(HardwareConfig):
    name: str = "run"
    seed: int = 5
    # How the method is trained, a key of solo_ossl.regimes.REGIMES: offline (epochs over data.tasks), cassle
    # (offline with CaSSLe's distillation; main_continual.py runs it task by task) or online (the paper's stream).
    regime: str = "offline"
    # The method's keys: MethodConfig's and its own (its class's ``Config``), which it checks and completes with their
    # defaults when it is built (an open mapping here, so that each method's keys can be set).
    method: dict[str, Any] = field(default_factory=lambda: {"name": MethodConfig.name})
    momentum: MomentumConfig = field(default_factory=MomentumConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    online: OnlineConfig = field(default_factory=OnlineConfig)
    cassle: CassleConfig = field(default_factory=CassleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    max_epochs: int = 400
    output_dir: str = "trained_models"
    pretrained_ckpt: str = ""  # initialize backbone/projector from this checkpoint
    resume: str = ""  # continue an interrupted run from this checkpoint
    # Rerunning the same command continues the run in <output_dir>/<name> from its checkpoints/last.ckpt, and a run
    # that finished (final.ckpt) is not trained again; false starts over.
    auto_resume: bool = True
    checkpoint_every_epochs: int = 1
    val_every_n_epochs: int = 1  # online linear classifier on the test set; 0 = never
    log_every_n_steps: int = 10
    progress_bar: bool = True
    # metrics.csv is always written; tensorboard or wandb (pip install wandb) log beside it.
    logger: LoggerName = LoggerName.csv


@dataclass
class LinearConfig(HardwareConfig):
    name: str = "linear"
    seed: int = 5
    pretrained_ckpt: str = ""  # solo_ossl checkpoint, or a bare backbone state dict
    random_init: bool = False  # evaluate a randomly initialized backbone instead (a baseline)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # features: extract frozen features once, train the linear layer on them (fast on CPU);
    # augmented: solo-learn's standard protocol, random crops and flips every epoch through the frozen backbone.
    # features is the documented fast approximation; augmented with the defaults below is CaSSLe's protocol:
    # 100 epochs of SGD (lr 0.1, momentum 0.9, wd 0, batch 256), lr x0.1 at epochs 60 and 80, random resized crop
    # and flip (cassle/bash_files/linear/imagenet-100/class/barlow_linear.sh, cassle/methods/linear.py).
    mode: LinearMode = LinearMode.features
    max_epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: LinearScheduler = LinearScheduler.step  # step: CaSSLe's
    lr_decay_steps: list[int] = field(default_factory=lambda: [60, 80])  # epochs, for scheduler=step
    output_dir: str = "trained_models"
    output_json: str = ""  # default: <output_dir>/<name>/linear_results.json
    progress_bar: bool = True
    # Weighted kNN beside the linear probe (features of the training set without augmentation).
    knn: KnnConfig = field(default_factory=KnnConfig)
