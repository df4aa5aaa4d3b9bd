"""Pictures of a trained CMA run (needs matplotlib: `pip install -r requirements.txt`).

  python -m yt8m.plots attention --train_dir=DIR --video_id=ID --input_data_pattern=...
      per-frame attention of the top predicted classes of one video (the CMA paper's figure 5)
  python -m yt8m.plots embeddings --train_dir=DIR
      the label embeddings' cosine similarities next to the ASGE target graph A'

Both write a PNG (--output_file, default inside --train_dir) and print its path.
"""
from __future__ import annotations

import io
import os

import numpy as np
from absl import app
from absl import flags as absl_flags

from yt8m import cli, flags
from yt8m.config import Config
from yt8m.errors import UserError
from yt8m.fileio import atomic_output

COMMANDS = ("attention", "embeddings")
HEAD_LAYER = "attention"     # models/cma.py names its attention head so
SNET_LAYER = "snet"


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
    return Config.load(os.path.join(train_dir, "config.json"))


def _class_names(config: Config) -> dict[int, str]:
    from yt8m.data.vocabulary import read_vocabulary
    from yt8m.labels import graphs

    path = config.vocabulary_file or graphs.default_vocabulary_file(config.train_data_pattern)
    if not path:
        return {}
    table = read_vocabulary(path)
    return {int(i): str(n) for i, n in zip(table["Index"], table["Name"])}


def video_attention(model, inputs: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """(probabilities (B, C), attention (B, T', C), frames per attention step) of a CMA/self-attention model."""
    import keras

    try:
        head = model.get_layer(HEAD_LAYER)
    except ValueError:
        raise UserError(f"model {model.name} has no per-class attention layer {HEAD_LAYER!r}; "
                        f"train a CmaSNetModel, CmaFCModel, SelfAttentionSNetModel or SelfAttentionFCModel") from None
    probe = keras.Model(model.input, [model.output, head.output[1]])
    probabilities, attention = probe(inputs, training=False)
    stride = 1
    if any(layer.name == SNET_LAYER for layer in model.layers):
        snet = model.get_layer(SNET_LAYER)
        stride = snet.pool_size ** snet.num_blocks
    return keras.ops.convert_to_numpy(probabilities), keras.ops.convert_to_numpy(attention), stride


def _find_video(config: Config, pattern: str, video_id: str) -> tuple[dict, np.ndarray]:
    from yt8m.data import readers

    dataset = readers.frame_dataset(pattern, num_classes=config.num_classes, feature_spec=config.feature_spec,
                                    batch_size=64, max_frames=config.max_frames, flag="input_data_pattern")
    with readers.data_errors(pattern, "input_data_pattern"):
        for features, labels, _ in dataset:
            ids = [i.decode() for i in features["id"].numpy()]
            if video_id in ids:
                row = ids.index(video_id)
                length = int(features["num_frames"][row])
                inputs = {"frames": features["frames"][row:row + 1, :max(length, 1)].numpy(),
                          "num_frames": features["num_frames"][row:row + 1].numpy()}
                return inputs, labels[row].numpy()
    raise UserError(f"no video with id {video_id!r} in --input_data_pattern={pattern!r} "
                    f"(frame-level records are needed)")


def plot_attention(train_dir: str, video_id: str, pattern: str, output_file: str = "", top_classes: int = 5) -> str:
    """PNG of the attention over frames of the `top_classes` highest-scored classes of one video."""
    from yt8m import training

    plt = _pyplot()
    config = _run_config(train_dir)
    if not config.frame_features:
        raise UserError(f"the run in {train_dir} is video-level; attention needs a frame-level CMA run")
    model = training.load_trained_model(train_dir)
    inputs, labels = _find_video(config, pattern, video_id)
    probabilities, attention, stride = video_attention(model, inputs)
    names = _class_names(config)
    frames = int(inputs["num_frames"][0])
    steps = max(1, -(-frames // stride))
    top = np.argsort(-probabilities[0])[:top_classes]
    figure, axis = plt.subplots(figsize=(10, 4))
    for k in top:
        weights = attention[0, :steps, k]
        edges = np.minimum(np.arange(steps + 1) * stride, frames)
        label = f"{names.get(int(k), f'class {k}')} (p={probabilities[0, k]:.2f}{', labelled' if labels[k] > 0 else ''})"
        axis.stairs(weights, edges, label=label, linewidth=1.8)
    axis.set_xlabel("frame (seconds)" + (f"; one attention step = {stride} frames" if stride > 1 else ""))
    axis.set_ylabel("attention a_k (sums to 1 per class)")
    axis.set_title(f"{model.name}: per-class attention over the frames of video {video_id}")
    axis.set_xlim(0, max(frames, 1))
    axis.legend(fontsize=8, loc="upper right")
    path = output_file or os.path.join(train_dir, f"attention_{video_id}.png")
    _save(figure, path)
    plt.close(figure)
    return path


def plot_embeddings(train_dir: str, output_file: str = "", max_classes: int = 60) -> str:
    """PNG: A' and cos(e_i, e_j) of the `max_classes` most frequent training labels, and cos against A'
    over every pair of seen labels (pairs the relaxation switches off shaded)."""
    from yt8m import training
    from yt8m.labels import context, embeddings, graphs
    from models.layers.asge import cosine_matrix

    plt = _pyplot()
    config = _run_config(train_dir)
    saved = os.path.join(train_dir, embeddings.EMBEDDINGS_FILE)
    if os.path.exists(saved):
        vectors = np.load(saved)
    else:
        model = training.load_trained_model(train_dir)
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
    alpha = config.asge_alpha
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
        if not f.video_id or not f.input_data_pattern:
            raise UserError("attention needs --video_id and --input_data_pattern (frame-level records holding it)")
        path = plot_attention(f.train_dir, f.video_id, f.input_data_pattern, f.output_file, f.top_classes)
    else:
        path = plot_embeddings(f.train_dir, f.output_file, f.max_classes)
    print(f"wrote {path}")


if __name__ == "__main__":
    flags.define_flags()
    absl_flags.DEFINE_string("video_id", "", "attention: the id of the video to draw.")
    absl_flags.DEFINE_integer("top_classes", 5, "attention: how many of the highest-scored classes to draw.")
    absl_flags.DEFINE_integer("max_classes", 60, "embeddings: labels shown in the matrices (most frequent first).")
    app.run(cli.exits_cleanly(main))
