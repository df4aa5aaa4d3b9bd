"""Training-time noise on the dequantised frame features (seed 003 Fig.5); yt8m/augment.py puts it into a model."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="yt8m")
class MaskedGaussianNoise(keras.layers.Layer):
    """Training only: x + N(0, stddev^2) * mask, mask ~ Bernoulli(mask_rate) per element (seed 003 Fig.5)."""

    def __init__(self, stddev: float, mask_rate: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if stddev < 0 or not 0.0 <= mask_rate <= 1.0:
            raise ValueError(f"need stddev >= 0 and mask_rate in [0, 1], got {stddev}, {mask_rate}")
        self.stddev = stddev
        self.mask_rate = mask_rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.stddev == 0 or self.mask_rate == 0:
            return inputs
        shape = tf.shape(inputs)
        noise = keras.random.normal(shape, stddev=self.stddev, dtype=inputs.dtype, seed=self.seed_generator)
        keep = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator) < self.mask_rate
        return inputs + tf.where(keep, noise, tf.zeros_like(noise))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "mask_rate": self.mask_rate, "seed": self.seed}
