"""Pictures of a trained run (needs matplotlib: `pip install -r requirements.txt`).

  python -m yt8m.plots attention --run_dir=DIR --data_pattern=... [--num_examples=3] [--top_classes=3]
      per-class temporal attention of the top predicted classes on a few videos of an SRDL or CMA run
      (the CMA paper's figure 5); for SRDL also the intervals object erasing cuts from each top-K
      class's attention on a training video (the first of the run's --train_data_pattern)
  python -m yt8m.plots embeddings --train_dir=DIR
      the label embeddings' cosine similarities next to the ASGE target graph A'

Both write a PNG (--output_file, default inside the run directory) and print its path.
"""
from __future__ import annotations

import io
import os

import numpy as np
from absl import app
from absl import flags as absl_flags

from yt8m import flags, rundir
from yt8m.config import Config
from yt8m.errors import UserError, exits_cleanly
from yt8m.fileio import atomic_output

COMMANDS = ("attention", "embeddings")
ERASED_MAP = "erased in training"  # models.srdl.attention_maps: OE's intervals, drawn as shading


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("the plots need matplotlib: pip install -r requirements.txt (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    with atomic_output(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return path


def _run_config(train_dir: str) -> Config:
    if not train_dir:
        raise UserError("--train_dir is empty; give the directory of a trained CMA run")
    return rundir.load_config(train_dir)


def _class_names(config: Config) -> dict[int, str]:
    from yt8m.data.vocabulary import read_vocabulary
    from yt8m.labels import graphs

    path = config.data.vocabulary_file or graphs.default_vocabulary_file(config.data.train_data_pattern)
    if not path:
        return {}
    table = read_vocabulary(path)
    return {int(i): str(n) for i, n in zip(table["Index"], table["Name"])}


def attention_maps(model, inputs: dict) -> dict[str, np.ndarray]:
    """name -> (B, T, C) per-frame, per-class maps, from the model family's own `attention_maps`:
    models.srdl's for an SRDL model (its `car` layer), else models.cma's."""
    if any(layer.name == "car" for layer in model.layers):
        from models.srdl import attention_maps as family_maps
    else:
        from models import cma

        family_maps = getattr(cma, "attention_maps", None)
        if family_maps is None:
            raise UserError(f"model {model.name}: models.cma has no attention_maps yet; only SRDL runs can be drawn")
    return family_maps(model, inputs)


def _videos(config: Config, pattern: str, count: int, flag: str, video_id: str = "") -> tuple[dict, np.ndarray, list]:
    """(model inputs, labels (B, C), ids) of the first `count` videos of `pattern` (or the one `video_id`)."""
    from yt8m.data import readers

    dataset = readers.frame_dataset(pattern, num_classes=config.data.num_classes, feature_spec=config.data.feature_spec,
                                    batch_size=64 if video_id else count, max_frames=config.data.max_frames, flag=flag)
    with readers.data_errors(pattern, flag):
        for features, labels, _ in dataset:
            ids = [i.decode() for i in features["id"].numpy()]
            rows = [ids.index(video_id)] if video_id in ids else [] if video_id else list(range(len(ids)))
            if rows:
                longest = max(1, int(max(features["num_frames"].numpy()[rows])))
                inputs = {"frames": features["frames"].numpy()[rows, :longest],
                          "num_frames": features["num_frames"].numpy()[rows]}
                return inputs, labels.numpy()[rows], [ids[r] for r in rows]
    raise UserError(f"no video{f' with id {video_id!r}' if video_id else ''} in --{flag}={pattern!r} "
                    f"(frame-level records are needed)")


def _draw_row(axes, maps: dict, probabilities: np.ndarray, labels: np.ndarray, frames: int, names: dict,
              top_classes: int, title: str, erased: np.ndarray | None = None, alpha: float = 0.5) -> None:
    """One video: for each map, the curves of its top classes (frames on x), each class's range over the
    video in the legend. With `erased`: the curves min-max normalised per class, as object erasing
    thresholds them at `alpha` (dashed), and each class's erased interval shaded in its colour."""
    top = np.argsort(-probabilities)[:top_classes]
    for axis, (name, values) in zip(axes, maps.items()):
        steps = max(1, min(values.shape[0], frames))
        stride = max(1, -(-frames // steps))  # a map over fewer steps than frames (SNet's squeeze)
        edges = np.minimum(np.arange(steps + 1) * stride, frames)
        for rank, k in enumerate(top):
            colour = f"C{rank}"
            curve = values[:steps, k]
            low, high = float(curve.min()), float(curve.max())
            label = (f"{names.get(int(k), f'class {k}')} (p={probabilities[k]:.3f}"
                     f"{', labelled' if labels[k] > 0 else ''}; range {low:.3g}-{high:.3g})")
            if erased is not None:
                curve = (curve - low) / (high - low) if high > low else np.zeros_like(curve)
            axis.stairs(curve, edges, label=label, linewidth=1.8, color=colour)
            if erased is not None and erased[:frames, k].any():
                run = np.flatnonzero(erased[:frames, k])
                axis.axvspan(run[0], run[-1] + 1, color=colour, alpha=0.18)
        if erased is not None:
            axis.axhline(alpha, color="gray", linestyle="--", linewidth=1)
            name = f"{name}, min-max normalised per class (OE's view; dashed: alpha = {alpha})"
        axis.set_xlim(0, max(frames, 1))
        axis.set_title(f"{title}: {name}" + (f" (one step = {stride} frames)" if stride > 1 else ""), fontsize=9)
        axis.set_xlabel("frame (seconds)")
        axis.legend(fontsize=7, loc="upper right")


def plot_attention(run_dir: str, pattern: str, output_file: str = "", num_examples: int = 3, top_classes: int = 3,
                   video_id: str = "") -> str:
    """PNG: the per-class temporal attention of the `top_classes` highest-scored classes on `num_examples`
    videos of `pattern` (or the one `video_id`); for SRDL one more row, a training video with the interval
    OE erases from each top-K class's own attention shaded in that class's colour."""

    plt = _pyplot()
    config = _run_config(run_dir)
    if not config.data.frame_features:
        raise UserError(f"the run in {run_dir} is video-level; attention needs a frame-level SRDL or CMA run")
    model = rundir.load_trained_model(run_dir, flag="run_dir")
    names = _class_names(config)
    rows = [(f"video {i}", v, y) for v, y, i in _single_videos(
        _videos(config, pattern, num_examples, "data_pattern", video_id))]
    if any(layer.name == "car" for layer in model.layers):  # SRDL: OE's intervals on a training video
        inputs, labels, ids = _videos(config, config.data.train_data_pattern, 1, "train_data_pattern")
        rows.append((f"training video {ids[0]}, erased intervals shaded", inputs, labels[0]))
    drawn = []
    for title, inputs, labels in rows:
        maps = attention_maps(model, inputs)
        erased = maps.pop(ERASED_MAP, None)
        probabilities = np.asarray(model(inputs, training=False))
        drawn.append((title, maps, probabilities[0], labels, int(inputs["num_frames"][0]),
                      erased[0] if erased is not None and title.startswith("training") else None))
    columns = len(drawn[0][1])
    figure, axes = plt.subplots(len(drawn), columns, figsize=(7 * columns, 2.8 * len(drawn)), squeeze=False)
    for axis_row, (title, maps, probabilities, labels, frames, erased) in zip(axes, drawn):
        _draw_row(axis_row, {n: v[0] for n, v in maps.items()}, probabilities, labels, frames, names,
                  top_classes, title, erased, float(config.model_.model_params.get("srdl_alpha", 0.5)))
    run = os.path.basename(os.path.normpath(run_dir))
    figure.suptitle(f"{model.name} (run {run}): per-class temporal attention of the top {top_classes} classes")
    figure.tight_layout()
    path = output_file or os.path.join(run_dir, "attention.png")
    _save(figure, path)
    plt.close(figure)
    return path


def _single_videos(videos: tuple[dict, np.ndarray, list]) -> list:
    """(inputs of one video, its labels, its id) for each video of a batch read by `_videos`."""
    inputs, labels, ids = videos
    return [({"frames": inputs["frames"][row:row + 1, :max(1, int(inputs["num_frames"][row]))],
              "num_frames": inputs["num_frames"][row:row + 1]}, labels[row], video) for row, video in enumerate(ids)]


def plot_embeddings(train_dir: str, output_file: str = "", max_classes: int = 60) -> str:
    """PNG: A' and cos(e_i, e_j) of the `max_classes` most frequent training labels, and cos against A'
    over every pair of seen labels (pairs the relaxation switches off shaded)."""
    from yt8m.labels import context, embeddings, graphs
    from models.layers.asge import cosine_matrix

    plt = _pyplot()
    config = _run_config(train_dir)
    saved = os.path.join(train_dir, embeddings.EMBEDDINGS_FILE)
    if os.path.exists(saved):
        vectors = np.load(saved)
    else:
        model = rundir.load_trained_model(train_dir)
        layer = next((l for l in model.layers if l.name == "label_embeddings"), None)
        if layer is None:
            raise UserError(f"no {embeddings.EMBEDDINGS_FILE} and no label_embeddings layer in {train_dir}")
        vectors = layer.get_weights()[0]
    stats = context.label_statistics(config.replace(train_dir=train_dir, init_from=""))
    graph, target = graphs.asge_graph(stats)
    seen = np.flatnonzero(stats.counts > 0)
    cosine = np.asarray(cosine_matrix(vectors[seen].astype("float32")))
    shown = np.argsort(-stats.counts[seen], kind="stable")[:max_classes]
    pair = ~np.eye(len(seen), dtype=bool)
    alpha = config.model_.asge_alpha
    relaxed = (graph[np.ix_(seen, seen)] < alpha) & (cosine < alpha)
    t = target[np.ix_(seen, seen)]
    figure, axes = plt.subplots(1, 3, figsize=(16, 5))
    for axis, matrix, title in ((axes[0], t, "A' = (A + A^T)/2 (target)"),
                                (axes[1], cosine, "cos(e_i, e_j) (learned)")):
        image = axis.imshow(np.where(np.eye(len(shown), dtype=bool), np.nan, matrix[np.ix_(shown, shown)]),
                            vmin=0, vmax=1, cmap="viridis")
        axis.set_title(f"{title}, {len(shown)} most frequent labels")
        figure.colorbar(image, ax=axis, fraction=0.046)
    on = pair & ~relaxed
    axes[2].scatter(t[on], cosine[on], s=3, alpha=0.4, label="fitted pairs")
    axes[2].scatter(t[pair & relaxed], cosine[pair & relaxed], s=3, alpha=0.4, c="gray",
                    label=f"relaxed (A < {alpha} and cos < {alpha})")
    axes[2].plot([0, 1], [0, 1], "k--", linewidth=1)
    axes[2].set_xlabel("A'_ij")
    axes[2].set_ylabel("cos(e_i, e_j)")
    error = np.abs(cosine - t)[on]
    axes[2].set_title(f"{len(seen)} seen labels: mean |cos - A'| on fitted pairs {error.mean():.3f}")
    axes[2].legend(fontsize=8, markerscale=3)
    path = output_file or os.path.join(train_dir, "embeddings.png")
    _save(figure, path)
    plt.close(figure)
    return path


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise UserError(f"usage: python -m yt8m.plots {{{'|'.join(COMMANDS)}}} --train_dir=DIR [...]")
    f = flags.FLAGS
    if argv[1] == "attention":
        if not f.data_pattern:
            raise UserError("attention needs --data_pattern (frame-level records of the videos to draw)")
        path = plot_attention(f.run_dir or f.train_dir, f.data_pattern, f.output_file, f.num_examples,
                              f.top_classes, f.video_id)
    else:
        path = plot_embeddings(f.train_dir, f.output_file, f.max_classes)
    print(f"wrote {path}")


if __name__ == "__main__":
    flags.define_flags()
    absl_flags.DEFINE_string("run_dir", "", "attention: the trained SRDL or CMA run (default: --train_dir).")
    absl_flags.DEFINE_string("data_pattern", "", "attention: frame-level records of the videos to draw.")
    absl_flags.DEFINE_integer("num_examples", 3, "attention: how many videos (the first of --data_pattern).")
    absl_flags.DEFINE_string("video_id", "", "attention: draw this one video of --data_pattern instead.")
    absl_flags.DEFINE_integer("top_classes", 3, "attention: how many of the highest-scored classes to draw.")
    absl_flags.DEFINE_integer("max_classes", 60, "embeddings: labels shown in the matrices (most frequent first).")
    app.run(exits_cleanly(main))
