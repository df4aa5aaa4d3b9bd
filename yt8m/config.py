"""The one configuration object of a run, built from flags and passed explicitly."""
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


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of train/eval/inference. Field names are the flag names."""

    # Data.
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
    # RGB clips (3-D models: KSSNetI3D, I3DModel), the Charades frames layout.
    clip_data_pattern: str = ""
    clip_frames: int = 16
    clip_size: int = 224
    clip_sampling: str = "tsn"              # KSSNet's TSN segments (yt8m/data/clips.py) | consecutive
    i3d_weights: str = ""
    seed: int = 0
    # Model.
    model: str = "LogisticModel"
    model_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Label knowledge (graph models, label-aware losses).
    label_stats: str = ""
    label_embeddings: str = ""
    label_embedding_dim: int = 300
    ks_lambda: float = 0.6           # KSSNet label graph (Eq.2-4), yt8m/labels/graphs.py
    ks_tau: float = 0.03
    ks_eta: float = 0.4
    knowledge_edges: str = ""
    vocabulary_file: str = ""
    asge_steps: int = 300
    asge_alpha: float = 0.1
    # Training.
    train_dir: str = ""
    stage: str = "pretrain"
    init_from: str = ""
    batch_size: int = 1024
    base_learning_rate: float | None = None  # None: by stage, see `learning_rate`
    learning_rate_decay: float = 0.95
    learning_rate_decay_examples: int = 4_000_000
    clip_gradient_norm: float = 1.0
    optimizer: str = "adam"                 # OPTIMIZERS
    gcn_learning_rate: float = 1e-3         # the label-graph layers' rate (0: the base rate); mssnet's GCN rate
    weight_decay: float = 0.0               # L2 added to the gradient, as torch Adam (mssnet); KSSNet 1e-4
    num_epochs: int = 5
    max_steps: int | None = None
    steps_per_epoch: int = 1000
    loss: str = "bce"
    beta: float = 0.0                       # CMA Eq.12; 0 (the paper's video setting) is BCE
    reweight_m: float = 2.5                 # seed 003 Eq.2-3: weight of the rated classes
    reweight_n: float = 0.1                 # ... and of the others
    label_smoothing: str = "none"           # "correlation": seed 003 Eq.4-6 targets
    tau: float = 0.5                        # threshold of P' (Eq.5)
    unrated_targets: str = "zero"           # segment finetuning: unrated classes' targets, UNRATED_TARGETS
    unrated_classes: str = "seen"           # --loss=reweighted: the classes weighted n, UNRATED_CLASSES
    noise_std: float = 0.0                  # Gaussian noise on the dequantised frames (training only)
    noise_mask_rate: float = 0.5            # share of the elements that get noise
    finetune_prior: float = 0.0             # finetune: strength/2 ||w - w0||^2 toward --init_from (0: off)
    strategy: str = "default"
    # Speed (GPU path) and fault handling.
    mixed_precision: bool = False           # mixed_float16 on a GPU, mixed_bfloat16 on a CPU-only host
    jit_compile: bool = False
    steps_per_execution: int = 1            # train steps per tf.function call (Model.compile)
    skip_corrupt_records: bool = False
    overwrite: bool = False                 # train.py: replace another run in --train_dir (yt8m/rundir.py)
    # Validation while training (yt8m/callbacks.py Validation) on --eval_data_pattern: every N steps,
    # 0 at each epoch end, None not at all (the library's default; train.py's flag default is 0).
    eval_every_steps: int | None = None
    keep_best_checkpoint: bool = False      # ... and best_model.keras, the model of the best validation
    # Eval / inference.
    top_k: int | None = None
    output_file: str = ""
    segment_label_ids_file: str = ""
    export_dir: str = ""
    # Beyond the seeds (issue 9): candidate gating, weak negatives, ensembles, SWA.
    candidate_top_k: int = 0                # segments scored only for the video's top-k classes (0: off)
    candidate_threshold: float = 0.0        # ... whose video-level probability is >= this
    video_model_dir: str = ""               # train_dir of the video-level candidate model (default: the run's)
    weak_negative_alpha: float | None = None  # None: 1.0 for --loss=weak_negative, 0 otherwise
    members: tuple[str, ...] = ()           # --model=Ensemble: train_dirs of the member runs
    weights: tuple[float, ...] = ()         # ... their weights (default equal)
    ensemble_method: str = "mean"
    fit_weights_on: str = ""                # rated segments the member weights are fitted on
    swa_from_step: int = 0                  # average the epoch-end weights from this step on (0: off)
    # Segments in their video's context (issue 16): finetune, eval and inference.
    segment_context: str = "none"           # SEGMENT_CONTEXTS; "video", "attention": yt8m/segment_context.py
    time_shift: bool = False                # eval/inference: segment scores averaged over frames shifted -1, 0, +1
    context_combine: str = "concat"         # CONTEXT_COMBINES
    context_segment_encoder: str = "backbone"  # CONTEXT_SEGMENT_ENCODERS

    def __post_init__(self):
        self.feature_spec  # validates names against sizes
        if self.stage not in STAGES:
            raise UserError(f"--stage={self.stage!r} is not one of {', '.join(STAGES)}")
        if self.strategy not in STRATEGIES:
            raise UserError(f"--strategy={self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.loss not in LOSSES:
            raise UserError(f"--loss={self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.label_smoothing not in LABEL_SMOOTHINGS:
            raise UserError(f"--label_smoothing={self.label_smoothing!r} is not one of {', '.join(LABEL_SMOOTHINGS)}")
        if self.unrated_targets not in UNRATED_TARGETS:
            raise UserError(f"--unrated_targets={self.unrated_targets!r} is not one of {', '.join(UNRATED_TARGETS)}")
        if self.unrated_classes not in UNRATED_CLASSES:
            raise UserError(f"--unrated_classes={self.unrated_classes!r} is not one of {', '.join(UNRATED_CLASSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"--optimizer={self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        for name in ("tau", "noise_mask_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"--{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("reweight_m", "reweight_n", "noise_std", "finetune_prior"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_every_steps is not None and self.eval_every_steps < 0:
            raise UserError(f"--eval_every_steps must be >= 0 (0: at each epoch end), got {self.eval_every_steps}")
        if self.steps_per_execution < 1:
            raise UserError(f"--steps_per_execution must be >= 1, got {self.steps_per_execution}")
        self._check_beyond_the_seeds()
        if self.stage == "finetune" and not self.init_from:
            raise UserError("--stage=finetune needs --init_from=DIR, the train_dir of a pretrain run")
        if self.finetune_prior and self.stage != "finetune":
            raise UserError("--finetune_prior pulls a finetune toward the weights of --init_from; add --stage=finetune")
        for name in ("batch_size", "num_classes", "max_frames", "steps_per_epoch", "num_epochs"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise UserError(f"--max_steps must be positive, got {self.max_steps}")
        if self.top_k is not None and self.top_k <= 0:
            raise UserError(f"--top_k must be positive, got {self.top_k}")
        for name, choices in (("segment_context", SEGMENT_CONTEXTS), ("context_combine", CONTEXT_COMBINES),
                              ("context_segment_encoder", CONTEXT_SEGMENT_ENCODERS)):
            if getattr(self, name) not in choices:
                raise UserError(f"--{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")
        for name, given in ((f"segment_context={self.segment_context}", self.segment_context != "none"),
                            ("time_shift", self.time_shift)):
            if given and not (self.segment_labels and self.frame_features):
                raise UserError(f"--{name} scores the 5-frame segments of whole videos; add "
                                "--segment_labels --frame_features")
        if self.clip_sampling not in CLIP_SAMPLINGS:
            raise UserError(f"--clip_sampling={self.clip_sampling!r} is not one of {', '.join(CLIP_SAMPLINGS)}")
        if self.base_learning_rate is not None and self.base_learning_rate < 0:
            raise UserError(f"--base_learning_rate must be >= 0, got {self.base_learning_rate}")
        for name in ("gcn_learning_rate", "weight_decay"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.clip_frames <= 0 or self.clip_size <= 0:
            raise UserError(f"--clip_frames and --clip_size must be positive, got {self.clip_frames}, "
                            f"{self.clip_size}")
        for name in ("ks_lambda", "ks_eta"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"--{name} is a mixing weight in [0, 1], got {getattr(self, name)}")

    def _check_beyond_the_seeds(self) -> None:
        """Issue 9's flags: gating, weak negatives, ensembles, SWA (lists normalised to tuples)."""
        try:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        except ValueError:
            raise UserError(f"--weights={','.join(map(str, self.weights))} must be numbers") from None
        object.__setattr__(self, "members", tuple(str(m) for m in self.members))
        if self.candidate_top_k < 0 or not 0.0 <= self.candidate_threshold <= 1.0 or self.swa_from_step < 0:
            raise UserError("--candidate_top_k and --swa_from_step must be >= 0, --candidate_threshold in [0, 1]")
        if self.ensemble_method not in ENSEMBLE_METHODS:
            raise UserError(f"--ensemble_method={self.ensemble_method!r} is not one of {', '.join(ENSEMBLE_METHODS)}")
        if self.model == ENSEMBLE and len(self.members) < 1:
            raise UserError("--model=Ensemble needs --members=DIR,DIR,... (train_dirs of trained runs)")
        if self.weights and (len(self.weights) != len(self.members) or min(self.weights) < 0
                             or sum(self.weights) <= 0):
            raise UserError(f"--weights needs one non-negative weight per --members entry "
                            f"({len(self.members)}), not all zero")
        if self.weak_negative_alpha is not None:
            if self.weak_negative_alpha < 0:
                raise UserError(f"--weak_negative_alpha must be >= 0, got {self.weak_negative_alpha}")
            if self.weak_negative_alpha > 0 and self.loss not in ("weak_negative", "reweighted"):
                raise UserError(f"--weak_negative_alpha adds to --loss=weak_negative or reweighted, "
                                f"not {self.loss}")

    @property
    def effective_weak_negative_alpha(self) -> float:
        """--weak_negative_alpha, default 1.0 with --loss=weak_negative and 0 (off) otherwise."""
        if self.weak_negative_alpha is not None:
            return float(self.weak_negative_alpha)
        return 1.0 if self.loss == "weak_negative" else 0.0

    @property
    def learning_rate(self) -> float:
        """The base rate of the run: --base_learning_rate, else PRETRAIN_LEARNING_RATE or FINETUNE_LEARNING_RATE."""
        if self.base_learning_rate is not None:
            return float(self.base_learning_rate)
        return FINETUNE_LEARNING_RATE if self.stage == "finetune" else PRETRAIN_LEARNING_RATE

    @property
    def feature_spec(self) -> FeatureSpec:
        try:
            return FeatureSpec(tuple(self.feature_names), tuple(self.feature_sizes))
        except ValueError as exc:
            raise UserError(str(exc)) from None

    @property
    def submission_top_k(self) -> int:
        """K of the submission: 100000 segments per class, or 20 labels per video."""
        if self.top_k is not None:
            return self.top_k
        return 100_000 if self.segment_labels else 20

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def save(self, path: str) -> None:
        from yt8m.fileio import atomic_output

        with atomic_output(path) as handle:
            json.dump(dataclasses.asdict(self), handle, indent=2, sort_keys=True, default=dict)

    @classmethod
    def load(cls, path: str) -> "Config":
        import tensorflow as tf  # every path through tf.io.gfile (gs://, ...), as save writes it

        if not tf.io.gfile.exists(path):
            raise UserError(f"no run config at {path}; is --train_dir a directory written by train.py?")
        with tf.io.gfile.GFile(path) as handle:
            values = json.load(handle)
        for key in ("feature_names", "feature_sizes", "members", "weights"):
            if key in values:
                values[key] = tuple(values[key])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


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
