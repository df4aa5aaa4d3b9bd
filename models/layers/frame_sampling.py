"""Frame sampling within each video's valid frames (the starter's SampleRandomFrames /
SampleRandomSequence): in training, and at inference too with `at_inference=True`."""
import keras
import tensorflow as tf

from models.layers.inputs import Dequantize, NormalizeFrames, frame_inputs, frame_mask
from models import contract


@keras.saving.register_keras_serializable(package="yt8m")
class FrameSampler(keras.layers.Layer):
    """`(frames (B, T, ...), num_frames (B,)) -> (sampled (B, S, ...), num_frames')`.

    In training, picks `num_samples` frame indices per video uniformly in
    `[0, num_frames)`: independently with replacement (`random_sequence=False`), or
    one random run of consecutive frames clipped at the last valid frame. Every
    sampled frame is valid, so `num_frames'` is S (0 for an empty video). At
    inference (or with `num_samples=0`) the input passes through unchanged, unless
    `at_inference` (the starter's DbofModel samples in eval and inference as well).
    """

    def __init__(self, num_samples: int, random_sequence: bool = False, seed=None, at_inference: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        self.num_samples = num_samples
        self.random_sequence = random_sequence
        self.seed = seed
        self.at_inference = at_inference
        self.seed_generator = keras.random.SeedGenerator(seed)

    def samples(self, training) -> bool:
        """Whether this call draws frames (else every valid frame is used once)."""
        return self.num_samples > 0 and bool(training or self.at_inference)

    def call(self, frames, num_frames, training=None):
        if not self.samples(training):
            return frames, num_frames
        index = self._frame_index(tf.cast(num_frames, tf.int32))
        sampled = tf.gather(frames, index, batch_dims=1)
        sampled_count = tf.where(num_frames > 0, tf.cast(self.num_samples, num_frames.dtype),
                                 tf.zeros_like(num_frames))
        return sampled, sampled_count

    def _frame_index(self, num_frames):
        """Int32 (B, S) indices into each video's valid frames (0 for an empty video)."""
        batch_size = tf.shape(num_frames)[0]
        last = tf.maximum(num_frames - 1, 0)[:, None]
        if self.random_sequence:
            starts = tf.maximum(num_frames - self.num_samples, 0) + 1
            uniform = keras.random.uniform((batch_size, 1), seed=self.seed_generator)
            start = tf.cast(uniform * tf.cast(starts[:, None], tf.float32), tf.int32)
            index = start + tf.range(self.num_samples)[None, :]
        else:
            uniform = keras.random.uniform((batch_size, self.num_samples), seed=self.seed_generator)
            index = tf.cast(uniform * tf.cast(num_frames[:, None], tf.float32), tf.int32)
        return tf.minimum(index, last)  # guards uniform == 1.0 and empty videos

    def compute_output_shape(self, frames_shape, num_frames_shape):
        return (frames_shape[0], None, *frames_shape[2:]), num_frames_shape

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples,
                "random_sequence": self.random_sequence, "seed": self.seed, "at_inference": self.at_inference}


@keras.saving.register_keras_serializable(package="yt8m")
class FrameSampleCounts(FrameSampler):
    """`(frames (B, T, ...), num_frames (B,)) -> (frames, counts float32 (B, T))`.

    The same draws as FrameSampler, given as how many times each frame was drawn
    (0 for padding and frames never drawn) rather than as a gathered copy; when not
    sampling (inference without `at_inference`, or `num_samples=0`) the count is 1 on every valid frame. A model whose
    per-frame work does not depend on the draw order (DBoF: a per-frame projection,
    batch statistics and pooling, all weighted by the counts) then works on each
    distinct frame once: 300 draws with replacement from a 300-frame video hit ~190.
    """

    def call(self, frames, num_frames, training=None):
        num_steps = tf.shape(frames)[1]
        if not self.samples(training):
            return frames, tf.cast(frame_mask(num_frames, num_steps), tf.float32)
        index = self._frame_index(tf.cast(num_frames, tf.int32))
        counts = tf.math.bincount(index, minlength=num_steps, maxlength=num_steps, axis=-1, dtype=tf.float32)
        return frames, tf.where((num_frames > 0)[:, None], counts, tf.zeros_like(counts))

    def compute_output_shape(self, frames_shape, num_frames_shape):
        return frames_shape, (frames_shape[0], frames_shape[1])


def frame_stem(feature_size: int, sample_frames: int = 0, random_sequence: bool = False,
               normalize_frames: bool = False):
    """The start of every frame model but DBoF's (whose sampler passes draw counts, FrameSampleCounts):
    the frame inputs; in training `sample_frames` frames per video (`random_sequence`: one random run of
    consecutive frames, else random frames in order; 0 keeps every frame); dequantised on the device;
    [each L2-normalised, `normalize_frames`]. Returns (inputs, float32 frames (B, T', D), num_frames)."""
    inputs = frame_inputs(feature_size)
    frames, num_frames = inputs[contract.FRAMES_INPUT], inputs[contract.NUM_FRAMES_INPUT]
    if sample_frames:
        frames, num_frames = FrameSampler(sample_frames, random_sequence=random_sequence, name="frame_sampler")(
            frames, num_frames)
    frames = Dequantize(name="dequantize")(frames)
    if normalize_frames:
        frames = NormalizeFrames(name="normalize_frames")(frames, num_frames)
    return inputs, frames, num_frames
