"""NeXtVLAD frame aggregation (Lin et al., ECCV-W 2018), SE-style context gating, the rgb/audio split.

The maths of linrongc/youtube-8m's nextvlad.py (tests/test_nextvlad_reference.py pins it
on its own outputs); padded frames (beyond `num_frames`) are masked out of every sum and,
unlike linrongc, of the batch statistics. The output is flattened cluster-major
(k * group_size + f), linrongc's is feature-major: models/linrongc.py permutes its weights.
"""
import keras
import tensorflow as tf

from models.layers.inputs import frame_mask


@keras.saving.register_keras_serializable(package="yt8m")
class NeXtVLAD(keras.layers.Layer):
    """`(frames float32 (B, T, D), num_frames (B,)) -> (B, clusters * expansion * D / groups)`.

    Each frame is expanded to `expansion * D` dims and split into `groups` groups of
    `expansion * D / groups` dims. Every group vector is softly assigned to the
    `clusters` centres (softmax over clusters, weighted by a per-group sigmoid
    attention of the frame), the residuals to the centres are summed over frames
    and groups, L2-normalised per cluster (intra-normalisation), flattened and
    batch-normalised. Padding frames get zero attention and are left out of the
    batch statistics, so they change nothing.
    """

    def __init__(self, clusters: int, groups: int = 8, expansion: int = 2, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("clusters", clusters), ("groups", groups), ("expansion", expansion)):
            if value < 1:
                raise ValueError(f"NeXtVLAD {name} must be >= 1, got {value}")
        self.clusters = clusters
        self.groups = groups
        self.expansion = expansion
        self.expand = keras.layers.Dense(1, name="expand")  # width set in build (expansion x D)
        self.group_attention = keras.layers.Dense(groups, activation="sigmoid", name="group_attention")
        self.assignment = keras.layers.Dense(groups * clusters, use_bias=False, name="assignment")
        self.assignment_norm = keras.layers.BatchNormalization(name="assignment_bn")
        self.output_norm = keras.layers.BatchNormalization(name="vlad_bn")

    def build(self, frames_shape, num_frames_shape=None):
        feature_size = frames_shape[-1]
        expanded = self.expansion * feature_size
        if expanded % self.groups:
            raise ValueError(f"NeXtVLAD: expansion * feature size ({expanded}) must be divisible by "
                             f"groups ({self.groups})")
        self.group_size = expanded // self.groups
        self.expand.units = expanded
        self.expand.build((None, None, feature_size))
        self.group_attention.build((None, None, expanded))
        self.assignment.build((None, None, expanded))
        self.assignment_norm.build((None, None, self.groups * self.clusters))
        self.centres = self.add_weight(name="centres", shape=(self.clusters, self.group_size),
                                       initializer="glorot_uniform")
        self.output_norm.build((None, self.output_size))

    @property
    def output_size(self) -> int:
        return self.clusters * self.group_size

    def call(self, frames, num_frames, training=None):
        steps = tf.shape(frames)[1]
        mask = frame_mask(num_frames, steps)
        x = self.expand(frames)                                                  # (B, T, λD)
        attention = self.group_attention(x) * tf.cast(mask, x.dtype)[..., None]  # (B, T, G)
        logits = self.assignment_norm(self.assignment(x), training=training, mask=mask)
        logits = tf.reshape(logits, (-1, steps, self.groups, self.clusters))
        assignment = tf.nn.softmax(logits, axis=-1) * attention[..., None]      # (B, T, G, K)
        assignment = tf.reshape(assignment, (-1, steps * self.groups, self.clusters))
        grouped = tf.reshape(x, (-1, steps * self.groups, self.group_size))     # (B, T*G, λD/G)
        weighted_sum = tf.matmul(assignment, grouped, transpose_a=True)          # (B, K, λD/G)
        residuals = weighted_sum - tf.reduce_sum(assignment, axis=1)[..., None] * self.centres
        vlad = tf.math.l2_normalize(residuals, axis=-1)
        vlad = tf.reshape(vlad, (-1, self.output_size))
        return self.output_norm(vlad, training=training)

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        group_size = self.expansion * frames_shape[-1] // self.groups
        return (frames_shape[0], self.clusters * group_size)

    def get_config(self):
        return {**super().get_config(), "clusters": self.clusters, "groups": self.groups,
                "expansion": self.expansion}


@keras.saving.register_keras_serializable(package="yt8m")
class ContextGating(keras.layers.Layer):
    """SE context gating: x * sigmoid(W2 relu(BN(W1 x)) [+ b2]), W1 reducing the width by `reduction`.

    linrongc's gating has no bias b2 (`excite_bias=False`, what the NeXtVLAD models build);
    the default True keeps models saved before that loadable.
    """

    def __init__(self, reduction: int = 8, excite_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        if reduction < 1:
            raise ValueError(f"ContextGating reduction must be >= 1, got {reduction}")
        self.reduction = reduction
        self.excite_bias = excite_bias
        self.squeeze = keras.layers.Dense(1, use_bias=False, name="squeeze")  # widths set in build
        self.squeeze_norm = keras.layers.BatchNormalization(name="squeeze_bn")
        self.excite = keras.layers.Dense(1, activation="sigmoid", use_bias=excite_bias, name="excite")

    def build(self, input_shape):
        width = input_shape[-1]
        self.squeeze.units = max(1, width // self.reduction)
        self.excite.units = width
        self.squeeze.build(input_shape)
        self.squeeze_norm.build((None, self.squeeze.units))
        self.excite.build((None, self.squeeze.units))

    def call(self, inputs, training=None):
        gates = tf.nn.relu(self.squeeze_norm(self.squeeze(inputs), training=training))
        return inputs * self.excite(gates)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "excite_bias": self.excite_bias}


@keras.saving.register_keras_serializable(package="yt8m")
class StreamSplit(keras.layers.Layer):
    """frames (B, T, D) -> [rgb (B, T, D - audio_size), audio (B, T, audio_size)]: the official
    frame is rgb then audio (1024 + 128), and linrongc runs one NeXtVLAD on each."""

    def __init__(self, audio_size: int = 128, **kwargs):
        super().__init__(**kwargs)
        if audio_size < 1:
            raise ValueError(f"StreamSplit audio_size must be >= 1, got {audio_size}")
        self.audio_size = audio_size

    def call(self, frames):
        return [frames[..., :-self.audio_size], frames[..., -self.audio_size:]]

    def compute_output_shape(self, frames_shape):
        *lead, width = frames_shape
        return [(*lead, None if width is None else width - self.audio_size), (*lead, self.audio_size)]

    def get_config(self):
        return {**super().get_config(), "audio_size": self.audio_size}
