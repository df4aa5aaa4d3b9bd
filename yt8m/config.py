"""The one configuration object of a run, built from flags and passed explicitly.

A Config is five frozen parts, each checking its own fields: `data` (DataConfig), `model_` (ModelConfig),
`loss_` (LossConfig), `training` (TrainingConfig), `evaluation` (EvaluationConfig); the checks that span two
parts are Config's. Every field is named as its flag, and names are unique over the parts, so a flag-named
value finds its part: `Config.from_flags(**values)` builds one, `config.replace(**changes)` changes one,
`config.flag(name)` reads one. `model_` and `loss_` end in "_" (PEP 8's spelling for a clash) because the
fields `model` and `loss` keep their flag names: `config.model_.model` is the model's registry name.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from yt8m.data.schema import NUM_CLASSES, FeatureSpec
from yt8m.errors import UserError

STAGES = ("pretrain", "finetune")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
LOSSES = ("bce", "class_balanced", "reweighted", "weak_negative",)
LABEL_SMOOTHINGS = ("none", "correlation")
UNRATED_TARGETS = ("zero", "video_labels")  # segment targets of the unrated classes (seed 003 §3.2: zero)
UNRATED_CLASSES = ("seen", "all")          # the classes the reweighted loss's n covers (seen: by the pretraining set)
ENSEMBLE = "Ensemble"                      # --model=Ensemble: --members combined (yt8m/ensemble.py)
ENSEMBLE_METHODS = ("mean", "rank")
CLIP_SAMPLINGS = ("tsn", "consecutive")    # yt8m/data/clips.py
SEGMENT_CONTEXTS = ("none", "video", "attention")  # segments alone, in their video's context (models/context.py),
                                                 # or by the model's whole-video attention (models/segment_attention.py)
CONTEXT_COMBINES = ("concat", "gate")
OPTIMIZERS = ("adam", "sgd")              # sgd: SGD with momentum 0.9 (yt8m/training.py)
CONTEXT_SEGMENT_ENCODERS = ("backbone", "pool")
# --base_learning_rate unset: a pretrain at the starter's 0.01, a finetune at 0.001 (the project's measured
# finetunes; at 0.01 the finetune undid the graph models' pretraining, docs/results.md issue 6).
PRETRAIN_LEARNING_RATE = 0.01
FINETUNE_LEARNING_RATE = 0.001
# --gcn_learning_rate unset: mssnet's GCN rate 1e-3 in a pretrain, in a finetune lowered by the base rate's own
# stage factor (FINETUNE / PRETRAIN), so the label graph does not move as fast as in its pretrain while the rest slows.
GCN_LEARNING_RATE = 1e-3


def _choice(part, name: str, choices: tuple[str, ...]) -> None:
    if getattr(part, name) not in choices:
        raise UserError(f"--{name}={getattr(part, name)!r} is not one of {', '.join(choices)}")


def _at_least(part, minimum: float, *names: str) -> None:
    for name in names:
        if getattr(part, name) < minimum:
            raise UserError(f"--{name} must be >= {minimum:g}, got {getattr(part, name)}")


def _positive(part, *names: str) -> None:
    for name in names:
        value = getattr(part, name)
        if value is not None and value <= 0:
            raise UserError(f"--{name} must be positive, got {value}")


def _unit_interval(part, *names: str, what: str = "must be in [0, 1]") -> None:
    for name in names:
        if not 0.0 <= getattr(part, name) <= 1.0:
            raise UserError(f"--{name} {what}, got {getattr(part, name)}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What is read: the records, their features and labels, and the label knowledge drawn from them."""

    train_data_pattern: str = ""
    eval_data_pattern: str = ""
    input_data_pattern: str = ""
    frame_features: bool = False
    segment_labels: bool = False
    feature_names: tuple[str, ...] = ("mean_rgb", "mean_audio")
    feature_sizes: tuple[int, ...] = (1024, 128)
    num_classes: int = NUM_CLASSES
    max_frames: int = 300
    pad_to_max_frames: bool = False
    skip_corrupt_records: bool = False
    # RGB clips (3-D models: KSSNetI3D, I3DModel), the Charades frames layout.
    clip_data_pattern: str = ""
    clip_frames: int = 16
    clip_size: int = 224
    clip_sampling: str = "tsn"              # KSSNet's TSN segments (yt8m/data/clips.py) | consecutive
    # Label knowledge of the pretraining set.
    label_stats: str = ""
    vocabulary_file: str = ""

    def __post_init__(self):
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        object.__setattr__(self, "feature_sizes", tuple(self.feature_sizes))
        self.feature_spec  # validates names against sizes
        _positive(self, "num_classes", "max_frames")
        _choice(self, "clip_sampling", CLIP_SAMPLINGS)
        if self.clip_frames <= 0 or self.clip_size <= 0:
            raise UserError(f"--clip_frames and --clip_size must be positive, got {self.clip_frames}, "
                            f"{self.clip_size}")

    @property
    def feature_spec(self) -> FeatureSpec:
        try:
            return FeatureSpec(self.feature_names, self.feature_sizes)
        except ValueError as exc:
            raise UserError(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What is built: the registry model, its label graph and embeddings, segment context, ensembles."""

    model: str = "LogisticModel"
    model_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    i3d_weights: str = ""
    # Label graph and embeddings (graph models).
    label_embeddings: str = ""
    label_embedding_dim: int = 300
    ks_lambda: float = 0.6           # KSSNet label graph (Eq.2-4), yt8m/labels/graphs.py
    ks_tau: float = 0.03
    ks_eta: float = 0.4
    knowledge_edges: str = ""
    asge_steps: int = 300
    asge_alpha: float = 0.1
    # Segments in their video's context (issue 16).
    segment_context: str = "none"           # SEGMENT_CONTEXTS; "video", "attention": yt8m/segment_context.py
    context_combine: str = "concat"         # CONTEXT_COMBINES
    context_segment_encoder: str = "backbone"  # CONTEXT_SEGMENT_ENCODERS
    # --model=Ensemble (issue 9).
    members: tuple[str, ...] = ()           # train_dirs of the member runs
    weights: tuple[float, ...] = ()         # ... their weights (default equal)
    ensemble_method: str = "mean"
    fit_weights_on: str = ""                # rated segments the member weights are fitted on

    def __post_init__(self):
        try:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        except ValueError:
            raise UserError(f"--weights={','.join(map(str, self.weights))} must be numbers") from None
        object.__setattr__(self, "members", tuple(str(m) for m in self.members))
        _unit_interval(self, "ks_lambda", "ks_eta", what="is a mixing weight in [0, 1]")
        for name, choices in (("segment_context", SEGMENT_CONTEXTS), ("context_combine", CONTEXT_COMBINES),
                              ("context_segment_encoder", CONTEXT_SEGMENT_ENCODERS),
                              ("ensemble_method", ENSEMBLE_METHODS)):
            _choice(self, name, choices)
        if self.model == ENSEMBLE and len(self.members) < 1:
            raise UserError("--model=Ensemble needs --members=DIR,DIR,... (train_dirs of trained runs)")
        if self.weights and (len(self.weights) != len(self.members) or min(self.weights) < 0
                             or sum(self.weights) <= 0):
            raise UserError(f"--weights needs one non-negative weight per --members entry "
                            f"({len(self.members)}), not all zero")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """What is minimised: the loss, its targets and weights."""

    loss: str = "bce"
    beta: float = 0.0                       # CMA Eq.12; 0 (the paper's video setting) is BCE
    reweight_m: float = 2.5                 # seed 003 Eq.2-3: weight of the rated classes
    reweight_n: float = 0.1                 # ... and of the others
    label_smoothing: str = "none"           # "correlation": seed 003 Eq.4-6 targets
    tau: float = 0.5                        # threshold of P' (Eq.5)
    unrated_targets: str = "zero"           # segment finetuning: unrated classes' targets, UNRATED_TARGETS
    unrated_classes: str = "seen"           # --loss=reweighted: the classes weighted n, UNRATED_CLASSES
    weak_negative_alpha: float | None = None  # None: 1.0 for --loss=weak_negative, 0 otherwise
    finetune_prior: float = 0.0             # finetune: strength/2 ||w - w0||^2 toward --init_from (0: off)

    def __post_init__(self):
        for name, choices in (("loss", LOSSES), ("label_smoothing", LABEL_SMOOTHINGS),
                              ("unrated_targets", UNRATED_TARGETS), ("unrated_classes", UNRATED_CLASSES)):
            _choice(self, name, choices)
        _unit_interval(self, "tau")
        _at_least(self, 0, "reweight_m", "reweight_n", "finetune_prior")
        if self.weak_negative_alpha is not None:
            _at_least(self, 0, "weak_negative_alpha")
            if self.weak_negative_alpha > 0 and self.loss not in ("weak_negative", "reweighted"):
                raise UserError(f"--weak_negative_alpha adds to --loss=weak_negative or reweighted, "
                                f"not {self.loss}")

    @property
    def effective_weak_negative_alpha(self) -> float:
        """--weak_negative_alpha, default 1.0 with --loss=weak_negative and 0 (off) otherwise."""
        if self.weak_negative_alpha is not None:
            return float(self.weak_negative_alpha)
        return 1.0 if self.loss == "weak_negative" else 0.0


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How it is trained: the run directory, stage, optimizer, schedule, augmentation, devices, validation."""

    train_dir: str = ""
    stage: str = "pretrain"
    init_from: str = ""
    seed: int = 0                           # shuffling, sampling and initialisation
    batch_size: int = 1024
    base_learning_rate: float | None = None  # None: by stage, see `learning_rate`
    learning_rate_decay: float = 0.95
    learning_rate_decay_examples: int = 4_000_000
    clip_gradient_norm: float = 1.0
    optimizer: str = "adam"                 # OPTIMIZERS
    gcn_learning_rate: float | None = None  # the label-graph layers' rate (0: the base rate; None: by stage, see
                                            # `graph_learning_rate`)
    weight_decay: float = 0.0               # L2 added to the gradient, as torch Adam (mssnet); KSSNet 1e-4
    num_epochs: int = 5
    max_steps: int | None = None
    steps_per_epoch: int = 1000
    noise_std: float = 0.0                  # Gaussian noise on the dequantised frames (training only)
    noise_mask_rate: float = 0.5            # share of the elements that get noise
    swa_from_step: int = 0                  # average the epoch-end weights from this step on (0: off)
    strategy: str = "default"
    # Speed (GPU path) and fault handling.
    mixed_precision: bool = False           # mixed_float16 on a GPU, mixed_bfloat16 on a CPU-only host
    jit_compile: bool = False
    steps_per_execution: int = 1            # train steps per tf.function call (Model.compile)
    overwrite: bool = False                 # train.py: replace another run in --train_dir (yt8m/rundir.py)
    # Validation while training (yt8m/callbacks.py Validation) on --eval_data_pattern: every N steps,
    # 0 at each epoch end, None not at all (the library's default; train.py's flag default is 0).
    eval_every_steps: int | None = None
    keep_best_checkpoint: bool = False      # ... and best_model.keras, the model of the best validation

    def __post_init__(self):
        for name, choices in (("stage", STAGES), ("strategy", STRATEGIES), ("optimizer", OPTIMIZERS)):
            _choice(self, name, choices)
        if self.stage == "finetune" and not self.init_from:
            raise UserError("--stage=finetune needs --init_from=DIR, the train_dir of a pretrain run")
        _positive(self, "batch_size", "steps_per_epoch", "num_epochs", "max_steps")
        _unit_interval(self, "noise_mask_rate")
        _at_least(self, 0, "noise_std", "weight_decay", "swa_from_step")
        for name in ("base_learning_rate", "gcn_learning_rate"):
            if getattr(self, name) is not None:
                _at_least(self, 0, name)
        if self.eval_every_steps is not None and self.eval_every_steps < 0:
            raise UserError(f"--eval_every_steps must be >= 0 (0: at each epoch end), got {self.eval_every_steps}")
        _at_least(self, 1, "steps_per_execution")

    @property
    def learning_rate(self) -> float:
        """The base rate of the run: --base_learning_rate, else PRETRAIN_LEARNING_RATE or FINETUNE_LEARNING_RATE."""
        if self.base_learning_rate is not None:
            return float(self.base_learning_rate)
        return FINETUNE_LEARNING_RATE if self.stage == "finetune" else PRETRAIN_LEARNING_RATE

    @property
    def max_steps_epoch(self) -> int | None:
        """With --max_steps, a Keras epoch's steps (the checkpoint interval): --steps_per_epoch, at most
        --max_steps; None for a --num_epochs run, whose epoch is one pass over the files."""
        return min(self.steps_per_epoch, self.max_steps) if self.max_steps else None

    @property
    def graph_learning_rate(self) -> float:
        """The label-graph layers' rate: --gcn_learning_rate (0: the base rate), else GCN_LEARNING_RATE for a
        pretrain and GCN_LEARNING_RATE * FINETUNE_LEARNING_RATE / PRETRAIN_LEARNING_RATE for a finetune."""
        if self.gcn_learning_rate is not None:
            return float(self.gcn_learning_rate) or self.learning_rate
        stage_factor = FINETUNE_LEARNING_RATE / PRETRAIN_LEARNING_RATE if self.stage == "finetune" else 1.0
        return GCN_LEARNING_RATE * stage_factor


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """What eval.py and inference.py write: metrics, submissions, exports, and how segments are ranked."""

    top_k: int | None = None
    output_file: str = ""
    segment_label_ids_file: str = ""
    export_dir: str = ""
    candidate_top_k: int = 0                # segments scored only for the video's top-k classes (0: off)
    candidate_threshold: float = 0.0        # ... whose video-level probability is >= this
    video_model_dir: str = ""               # train_dir of the video-level candidate model (default: the run's)
    time_shift: bool = False                # segment scores averaged over frames shifted -1, 0, +1
    best_checkpoint: bool = False           # the run's best_model.keras (--keep_best_checkpoint), not model.keras

    def __post_init__(self):
        _positive(self, "top_k")
        _at_least(self, 0, "candidate_top_k")
        _unit_interval(self, "candidate_threshold")


PARTS = {"data": DataConfig, "model_": ModelConfig, "loss_": LossConfig, "training": TrainingConfig,
         "evaluation": EvaluationConfig}
PART_OF = {field.name: part for part, cls in PARTS.items() for field in dataclasses.fields(cls)}  # flag -> part
_JSON_KEYS = {part: part.rstrip("_") for part in PARTS}  # config.json's nested keys: data, model, loss, ...


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of train/eval/inference, in five parts. Field names are the flag names."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model_: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss_: LossConfig = dataclasses.field(default_factory=LossConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)

    def __post_init__(self):
        for part, cls in PARTS.items():
            if not isinstance(getattr(self, part), cls):
                raise TypeError(f"Config.{part} must be a {cls.__name__}, got {type(getattr(self, part)).__name__}; "
                                f"build a Config from flag names with Config.from_flags(...)")
        if self.loss_.finetune_prior and self.training.stage != "finetune":
            raise UserError("--finetune_prior pulls a finetune toward the weights of --init_from; add --stage=finetune")
        for name, given in ((f"segment_context={self.model_.segment_context}", self.model_.segment_context != "none"),
                            ("time_shift", self.evaluation.time_shift)):
            if given and not (self.data.segment_labels and self.data.frame_features):
                raise UserError(f"--{name} scores the 5-frame segments of whole videos; add "
                                "--segment_labels --frame_features")

    @classmethod
    def flag_names(cls) -> tuple[str, ...]:
        """Every field's (flag) name, over all parts."""
        return tuple(PART_OF)

    @classmethod
    def from_flags(cls, **values) -> "Config":
        """The Config of flag-named values (the others at their defaults), each routed to its part."""
        return cls().replace(**values)

    def flag(self, name: str) -> Any:
        """The value of the field (flag) `name`, whichever part holds it."""
        if name not in PART_OF:
            raise AttributeError(f"Config has no field {name!r}")
        return getattr(getattr(self, PART_OF[name]), name)

    def as_flags(self) -> dict[str, Any]:
        """{flag name: value} over all parts."""
        return {name: self.flag(name) for name in PART_OF}

    @property
    def submission_top_k(self) -> int:
        """K of the submission: 100000 segments per class, or 20 labels per video."""
        if self.evaluation.top_k is not None:
            return self.evaluation.top_k
        return 100_000 if self.data.segment_labels else 20

    def replace(self, **changes) -> "Config":
        """A copy with flag-named fields (or whole parts, by part name) changed; every part checked again."""
        unknown = sorted(set(changes) - set(PART_OF) - set(PARTS))
        if unknown:
            raise TypeError(f"Config has no field {', '.join(map(repr, unknown))}")
        parts = {part: changes[part] for part in PARTS if part in changes}
        for part in PARTS:
            mine = {name: value for name, value in changes.items() if PART_OF.get(name) == part}
            if mine:
                parts[part] = dataclasses.replace(parts.get(part, getattr(self, part)), **mine)
        return dataclasses.replace(self, **parts)

    def save(self, path: str) -> None:
        from yt8m.fileio import atomic_output

        nested = {_JSON_KEYS[part]: dataclasses.asdict(getattr(self, part)) for part in PARTS}
        with atomic_output(path) as handle:
            json.dump(nested, handle, indent=2, sort_keys=True, default=dict)

    @classmethod
    def load(cls, path: str) -> "Config":
        """A saved config.json: nested by part, or flat (the runs written before the parts); unknown names
        (flags since removed) are ignored, missing ones take their defaults."""
        import tensorflow as tf  # every path through tf.io.gfile (gs://, ...), as save writes it

        if not tf.io.gfile.exists(path):
            raise UserError(f"no run config at {path}; is --train_dir a directory written by train.py?")
        with tf.io.gfile.GFile(path) as handle:
            values = json.load(handle)
        if isinstance(values.get("data"), dict):  # nested; a flat config.json has no field "data"
            values = {name: value for key in _JSON_KEYS.values() for name, value in values.get(key, {}).items()}
        return cls.from_flags(**{name: value for name, value in values.items() if name in PART_OF})


def parse_model_params(text: str) -> dict[str, Any]:
    """`--model_params='cluster_size=64,hidden_size=32'` -> {'cluster_size': 64, ...}."""
    params: dict[str, Any] = {}
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--model_params entry {item!r} is not key=value")
        params[key.strip()] = _parse_scalar(value.strip())
    return params


def _parse_scalar(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
