"""absl flags shared by train.py, eval.py and inference.py, and the Config they build.

Names follow the official starter (google/youtube-8m) where a flag there means
the same thing.
"""
from __future__ import annotations

from absl import flags

from yt8m.errors import UserError
from yt8m.config import (CLIP_SAMPLINGS, CONTEXT_COMBINES, CONTEXT_SEGMENT_ENCODERS, ENSEMBLE_METHODS,
                         LABEL_SMOOTHINGS, LOSSES, OPTIMIZERS, SEGMENT_CONTEXTS, STAGES, STRATEGIES,
                         UNRATED_CLASSES, UNRATED_TARGETS, Config, parse_model_params)

FLAGS = flags.FLAGS

# Starter-named model flags -> the registry's parameter names.
STARTER_MODEL_FLAGS = {
    "dbof_cluster_size": "cluster_size",
    "dbof_hidden_size": "hidden_size",
    "iterations": "sample_frames",
    "moe_num_mixtures": "num_mixtures",
}


def define_flags() -> None:
    """Defines every flag once (the three entry points share them)."""
    if "train_data_pattern" in FLAGS:
        return
    d = Config()
    # Data.
    flags.DEFINE_string("train_data_pattern", "", "Comma-separated file patterns of training TFRecords. "
                        "Empty (with no other data flag): run the demo on the synthetic dataset.")
    flags.DEFINE_string("eval_data_pattern", "", "File patterns of evaluation TFRecords.")
    flags.DEFINE_string("input_data_pattern", "", "File patterns of the TFRecords to predict for a submission.")
    flags.DEFINE_bool("frame_features", d.data.frame_features, "Read frame-level SequenceExamples (else video-level).")
    flags.DEFINE_bool("segment_labels", d.data.segment_labels,
                      "Use the segment ratings (train/eval) or write a segment submission (inference).")
    flags.DEFINE_string("feature_names", "", "Comma-separated features, default mean_rgb,mean_audio "
                        "(video-level) or rgb,audio (frame-level).")
    flags.DEFINE_string("feature_sizes", "", "Comma-separated sizes of --feature_names, default 1024,128.")
    flags.DEFINE_integer("num_classes", d.data.num_classes, "Size of the label space.")
    flags.DEFINE_integer("max_frames", d.data.max_frames, "Frames kept per video.")
    flags.DEFINE_bool("pad_to_max_frames", d.data.pad_to_max_frames,
                      "Pad every batch to --max_frames (fixed shapes for XLA/TPU) instead of its longest video.")
    flags.DEFINE_string("clip_data_pattern", "", "File patterns of training RGB clip records (SequenceExamples "
                        "with one JPEG frame per step in image/encoded, the Charades frames layout) for the 3-D "
                        "models (--model=KSSNetI3D or I3DModel); --eval_data_pattern/--input_data_pattern are "
                        "then read as clips too.")
    flags.DEFINE_integer("clip_frames", d.data.clip_frames, "Frames per clip (KSSNet trains with 64 on Charades).")
    flags.DEFINE_enum("clip_sampling", d.data.clip_sampling, CLIP_SAMPLINGS, "Which frames make a clip. tsn (KSSNet, "
                      "after TSN): --clip_frames equal segments, one random frame of each in training, the segment "
                      "centres in eval; consecutive: a run from a random start in training, centred in eval.")
    flags.DEFINE_integer("clip_size", d.data.clip_size, "Clip crop size in pixels (frames scaled to a shorter side of "
                         "8/7 of it first).")
    flags.DEFINE_string("i3d_weights", "", "An .npz/.h5 of Inception weights keyed '<layer>/<weight>' to initialise "
                        "the I3D backbone (2-D kernels are inflated), or a deepmind kinetics-i3d RGB checkpoint "
                        "(python -m yt8m.i3d_weights converts one to .npz); never downloaded.")
    flags.DEFINE_integer("seed", d.training.seed, "Seed of shuffling, sampling and initialisation.")
    # Model.
    flags.DEFINE_string("model", d.model_.model, "Model name in the registry (models/registry.py).")
    flags.DEFINE_string("model_params", "", "Model hyper-parameters as key=value,... (see the registry).")
    flags.DEFINE_integer("dbof_cluster_size", None, "DBoF clusters (sets model param cluster_size).")
    flags.DEFINE_integer("dbof_hidden_size", None, "DBoF hidden units (sets model param hidden_size).")
    flags.DEFINE_integer("iterations", None, "Frames sampled per video in training (model param sample_frames).")
    flags.DEFINE_integer("moe_num_mixtures", None, "Experts of the MoE head (model param num_mixtures).")
    # Label knowledge.
    flags.DEFINE_string("label_stats", "", "Label counts/co-occurrence .npz of the pretraining set; default: a "
                        "pretrain counts its training records, a finetune takes --init_from's label_stats.npz (else "
                        "counts the records of --init_from's config.json); saved as label_stats.npz in --train_dir.")
    flags.DEFINE_string("label_embeddings", "", "Initial label embeddings for graph models: a (C, dim) .npy.")
    flags.DEFINE_integer("label_embedding_dim", d.model_.label_embedding_dim, "Width of default label embeddings.")
    flags.DEFINE_float("ks_lambda", d.model_.ks_lambda, "KSSNet graph: weight of the statistical graph against the "
                       "knowledge graph (Eq.2); 1 = statistics only, 0 = knowledge only.")
    flags.DEFINE_float("ks_tau", d.model_.ks_tau, "KSSNet graph: superimposed entries below tau are dropped (Eq.4).")
    flags.DEFINE_float("ks_eta", d.model_.ks_eta, "KSSNet graph: A_KS = eta A_tau + (1 - eta) I (Eq.4); 0 = no graph.")
    flags.DEFINE_string("knowledge_edges", "", "KSSNet knowledge graph: CSV head,relation,tail,weight (class "
                        "indices or vocabulary names); default: classes sharing a vertical of --vocabulary_file "
                        "(default: vocabulary.csv beside --train_data_pattern or its parent directory).")
    flags.DEFINE_string("vocabulary_file", "", "vocabulary.csv whose class names map a word-vector --label_embeddings.")
    flags.DEFINE_integer("asge_steps", d.model_.asge_steps, "Adam steps of the ASGE label-embedding stage (the default "
                         "embeddings when --label_embeddings is empty).")
    flags.DEFINE_float("asge_alpha", d.model_.asge_alpha, "ASGE relaxation alpha (CMA Eq.5).")
    # Training.
    flags.DEFINE_string("train_dir", "", "Directory of the run: model.keras, backup/, logs/, config.json.")
    flags.DEFINE_enum("stage", d.training.stage, STAGES, "pretrain: build the model; finetune: start from --init_from.")
    flags.DEFINE_string("init_from", "", "train_dir of the pretrain run to finetune from (new optimizer).")
    flags.DEFINE_integer("batch_size", d.training.batch_size, "Examples per batch (global, over all replicas).")
    flags.DEFINE_float("base_learning_rate", d.training.base_learning_rate, "Initial learning rate; default 0.01 for a "
                       "pretrain, 0.001 for a finetune (at 0.01 a finetune undid the graph models' pretraining); "
                       "0 freezes every weight.")
    flags.DEFINE_float("learning_rate_decay", d.training.learning_rate_decay, "Decay factor per decay period.")
    flags.DEFINE_integer("learning_rate_decay_examples", d.training.learning_rate_decay_examples,
                         "Examples per decay period.")
    flags.DEFINE_float("clip_gradient_norm", d.training.clip_gradient_norm, "Global gradient norm clip (0: none).")
    flags.DEFINE_enum("optimizer", d.training.optimizer, OPTIMIZERS, "adam (the starter's) or sgd (momentum 0.9: steps "
                      "proportional to the gradient, so a loss term weighted n moves the weights n times less).")
    flags.DEFINE_float("gcn_learning_rate", d.training.gcn_learning_rate, "Learning rate of the label-graph layers "
                       "(label_nodes, gcn, label_gcn), decayed as the base rate; 0: --base_learning_rate. Default: "
                       "mssnet's GCN rate 1e-3 for a pretrain (KSSNet on Charades: with a base rate of 1e-4; at 0.01 "
                       "the GCN's pre-activations grew to norms in the thousands), 1e-4 for a finetune (the base "
                       "rate's tenfold stage drop).")
    flags.DEFINE_float("weight_decay", d.training.weight_decay, "L2 weight decay added to the gradient before Adam (torch "
                       "Adam's weight_decay, as mssnet trains KSSNet: 1e-4); biases and BN/LN betas excluded.")
    flags.DEFINE_integer("num_epochs", d.training.num_epochs, "Passes over the data (when --max_steps is not set).")
    flags.DEFINE_integer("max_steps", None, "Stop after this many training steps (the data repeats).")
    flags.DEFINE_integer("steps_per_epoch", d.training.steps_per_epoch,
                         "With --max_steps: steps between checkpoints (a Keras epoch).")
    flags.DEFINE_enum("loss", d.loss_.loss, LOSSES, "Training loss.")
    flags.DEFINE_float("beta", d.loss_.beta, "--loss=class_balanced: w = y e^{beta(1-p)} + (1-y) e^{beta p} (CMA Eq.12).")
    flags.DEFINE_float("reweight_m", d.loss_.reweight_m, "--loss=reweighted: BCE weight of the rated class (every class "
                       "for video labels) (seed 003 Eq.2-3).")
    flags.DEFINE_float("reweight_n", d.loss_.reweight_n, "--loss=reweighted: BCE weight of the other classes (their "
                       "targets: --unrated_targets).")
    flags.DEFINE_enum("unrated_targets", d.loss_.unrated_targets, UNRATED_TARGETS, "Segment finetuning: the target of "
                      "the classes a segment's rating does not name. zero (the paper, seed 003 §3.2): one-hot-like, "
                      "0 for every other class; video_labels: the video's labels.")
    flags.DEFINE_enum("unrated_classes", d.loss_.unrated_classes, UNRATED_CLASSES, "--loss=reweighted: the classes "
                      "weighted --reweight_n. seen: those with a video in the pretraining set's label statistics "
                      "(on YouTube-8M every one of the 3862, the paper's loss); all: every output, also those no "
                      "training video carries.")
    flags.DEFINE_enum("label_smoothing", d.loss_.label_smoothing, LABEL_SMOOTHINGS, "correlation: targets "
                      "y' = min(1, y + y P') with P' the label correlations >= --tau (seed 003 Eq.4-6); "
                      "needs the label statistics (--label_stats).")
    flags.DEFINE_float("tau", d.loss_.tau, "--label_smoothing=correlation: threshold of P(j|i).")
    flags.DEFINE_float("noise_std", d.training.noise_std, "Training only: add N(0, std^2) noise to a random "
                       "--noise_mask_rate of the dequantised frame features (seed 003: finetune stage).")
    flags.DEFINE_float("noise_mask_rate", d.training.noise_mask_rate, "Share of the frame-feature elements that get noise.")
    flags.DEFINE_float("finetune_prior", d.loss_.finetune_prior, "--stage=finetune: add strength/2 * ||w - w0||^2 "
                       "to the loss (a mean over examples), w0 the weights loaded from --init_from (L2-SP); 0: off.")
    flags.DEFINE_enum("strategy", d.training.strategy, STRATEGIES, "tf.distribute strategy.")
    flags.DEFINE_bool("mixed_precision", d.training.mixed_precision, "Compute in float16 on a GPU (keras mixed_float16, "
                      "loss scaling), in bfloat16 on a CPU-only host (mixed_bfloat16: no loss scaling; fast on "
                      "AVX512_BF16/AMX CPUs); variables and the output probabilities stay float32.")
    flags.DEFINE_integer("steps_per_execution", d.training.steps_per_execution, "Train steps run per tf.function call "
                         "(Model.compile(steps_per_execution=N)): fewer host round trips, for GPUs and small steps.")
    flags.DEFINE_bool("jit_compile", d.training.jit_compile, "XLA-compile the train/predict step (model.compile(jit_compile=True)); "
                      "pair with --pad_to_max_frames for fixed shapes.")
    flags.DEFINE_bool("skip_corrupt_records", d.data.skip_corrupt_records, "Skip corrupt/truncated records (counted and "
                      "reported) instead of stopping with an error.")
    flags.DEFINE_integer("eval_every_steps", 0, "train.py with --eval_data_pattern: evaluate the model being "
                         "trained every N steps (0: at each epoch end); GAP, MAP, Hit@1, PERR (video labels) or "
                         "segment MAP@K (--segment_labels) on the console and in TensorBoard (logs/validation).")
    flags.DEFINE_bool("keep_best_checkpoint", d.training.keep_best_checkpoint, "train.py with --eval_data_pattern: keep "
                      "the model of the best validation (segment MAP@K or GAP) as best_model.keras, its "
                      "metrics in best_eval.json.")
    flags.DEFINE_bool("overwrite", d.training.overwrite, "train.py: replace the run in --train_dir when it holds another "
                      "model, model params, features, label space or stage (else refused).")
    # Eval / inference.
    flags.DEFINE_integer("top_k", None, "Submission size: segments per class (default 100000) or labels "
                         "per video (default 20).")
    flags.DEFINE_string("output_file", "", "Where inference writes the CSV (eval: the metrics JSON).")
    flags.DEFINE_string("segment_label_ids_file", "", "CSV (header Index) of the classes a segment "
                        "submission lists; default the 1000 rated classes of the 2019 challenge.")
    flags.DEFINE_string("export_dir", "", "inference.py: write a TF SavedModel (serving signature on serialized "
                        "records, parsing inside the graph) to this directory instead of a CSV.")
    # Beyond the seeds (issue 9).
    flags.DEFINE_integer("candidate_top_k", d.evaluation.candidate_top_k, "Segment eval/inference: rank a video's segments "
                         "for a class first only if the class is among the video's top k video-level predictions "
                         "(the others follow, below every candidate); 0: off.")
    flags.DEFINE_float("candidate_threshold", d.evaluation.candidate_threshold, "With --candidate_top_k: a candidate also "
                       "needs a video-level probability >= this.")
    flags.DEFINE_string("video_model_dir", "", "train_dir of the (frame- or video-level) model whose whole-video "
                        "predictions choose the candidates; default the segment model itself.")
    flags.DEFINE_float("weak_negative_alpha", None, "Weight of the mean cross-entropy towards 0 over the classes "
                       "not in the video's labels (2019 2nd place); default 1.0 with --loss=weak_negative, and "
                       "added to --loss=reweighted when given.")
    flags.DEFINE_list("members", [], "--model=Ensemble: train_dirs of the member runs.")
    flags.DEFINE_list("weights", [], "--model=Ensemble: one non-negative weight per member (default equal).")
    flags.DEFINE_enum("ensemble_method", d.model_.ensemble_method, ENSEMBLE_METHODS, "--model=Ensemble: mean of the "
                      "probabilities, or of per-class ranks (quantiles on --fit_weights_on).")
    flags.DEFINE_string("fit_weights_on", "", "--model=Ensemble: rated segment records to fit the member weights "
                        "on (coordinate search maximising segment MAP).")
    flags.DEFINE_integer("swa_from_step", d.training.swa_from_step, "Stochastic weight averaging: average the weights at "
                         "each epoch end from this step on and save the average as model.keras (0: off).")
    # Segments in their video's context (issue 16).
    flags.DEFINE_enum("segment_context", d.model_.segment_context, SEGMENT_CONTEXTS, "Segment finetune, eval and "
                      "inference: none, each 5-frame segment alone; video, the pretrained model encodes the whole "
                      "video and a segment encoder each segment, all segments of a video in one pass "
                      "(models/context.py); attention (AttentionGRUModel, CMA, self-attention and SRDL models), "
                      "each segment scored from the model's attention over the whole video "
                      "(models/segment_attention.py).")
    flags.DEFINE_enum("context_combine", d.model_.context_combine, CONTEXT_COMBINES, "--segment_context=video: concat, a "
                      "classifier on the segment's and the video's embeddings added to the segment's logits (starts "
                      "at 0); gate, the segment's score times sigmoid(w * the video's logit + b).")
    flags.DEFINE_enum("context_segment_encoder", d.model_.context_segment_encoder, CONTEXT_SEGMENT_ENCODERS,
                      "--segment_context=video: backbone, a copy of the pretrained model (own weights) over the "
                      "segment's frames; pool, their mean and one ReLU layer.")
    flags.DEFINE_boolean("time_shift", d.evaluation.time_shift, "Segment eval and inference: each segment's scores averaged "
                         "over its video's frames shifted one step left, not at all and one step right "
                         "(test-time augmentation, the 2019 9th place); reads whole videos.")
    flags.DEFINE_boolean("best_checkpoint", d.evaluation.best_checkpoint, "eval.py, inference.py and --export_dir: use "
                         "the run's best_model.keras (kept by train.py --keep_best_checkpoint) instead of model.keras.")



def data_flags_given() -> bool:
    return any(FLAGS[name].present for name in ("train_data_pattern", "eval_data_pattern", "input_data_pattern",
                                                "clip_data_pattern", "members"))  # members: train.py --model=Ensemble


def config_from_flags() -> Config:
    """Builds the Config from parsed flags; unset frame/feature flags take the official defaults."""
    from yt8m.data.schema import FeatureSpec

    if FLAGS["steps_per_epoch"].present and FLAGS.max_steps is None:
        raise UserError("--steps_per_epoch is the epoch of a --max_steps run; without --max_steps an epoch is one "
                        "pass over the training files (--num_epochs): add --max_steps=N or drop --steps_per_epoch")
    try:
        spec = FeatureSpec.parse(FLAGS.feature_names, FLAGS.feature_sizes, FLAGS.frame_features)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    params = parse_model_params(FLAGS.model_params)
    for flag_name, param in STARTER_MODEL_FLAGS.items():
        if FLAGS[flag_name].value is not None:
            params.setdefault(param, FLAGS[flag_name].value)
    names = [f for f in Config.flag_names() if f in FLAGS and f not in ("feature_names", "feature_sizes",
                                                                               "model_params")]
    return Config.from_flags(feature_names=spec.names, feature_sizes=spec.sizes, model_params=params,
                  **{name: FLAGS[name].value for name in names})
