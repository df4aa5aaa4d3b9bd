"""A GRU over the valid frames with additive (Bahdanau-style) attention pooling."""
import keras
import tensorflow as tf

from models.layers.inputs import frame_mask


@keras.saving.register_keras_serializable(package="yt8m")
class AttentionGRU(keras.layers.Layer):
    """`(frames (B, T, D), num_frames (B,)) -> (pooled (B, units), weights (B, T))`.

    h_t = GRU(x_1..x_t); e_t = v . tanh(W h_t + b); a = softmax(e) over the valid
    frames (0 on padding; all 0 for an empty video); pooled = sum_t a_t h_t. The
    GRU runs forward, so padding after the last valid frame cannot reach a valid
    state, and the attention ignores it. The weights are the second output, for
    pictures of where the model looks.
    """

    def __init__(self, units: int, attention_units: int = 64, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.attention_units = attention_units
        self.dropout = dropout
        self.gru = keras.layers.GRU(units, return_sequences=True, dropout=dropout, name="gru")
        self.score_hidden = keras.layers.Dense(attention_units, activation="tanh", name="attention_hidden")
        self.score = keras.layers.Dense(1, use_bias=False, name="attention_score")

    def build(self, frames_shape, num_frames_shape=None):
        self.gru.build((None, None, frames_shape[-1]))
        self.score_hidden.build((None, None, self.units))
        self.score.build((None, None, self.attention_units))

    def frame_attention(self, frames, num_frames, training=None):
        """(states h_t (B, T, H), scores e_t (B, T), the dtype's minimum on padding), over the whole video;
        models/segment_attention.py pools them over each segment's frames."""
        mask = frame_mask(num_frames, tf.shape(frames)[1])
        states = self.gru(frames, mask=mask, training=training)                 # (B, T, H)
        scores = tf.squeeze(self.score(self.score_hidden(states)), -1)          # (B, T)
        return states, tf.where(mask, scores, tf.fill(tf.shape(scores), scores.dtype.min))

    def call(self, frames, num_frames, training=None):
        mask = frame_mask(num_frames, tf.shape(frames)[1])
        states, scores = self.frame_attention(frames, num_frames, training)
        weights = tf.nn.softmax(scores, axis=-1) * tf.cast(mask, scores.dtype)  # empty video: all 0
        pooled = tf.reduce_sum(states * weights[..., None], axis=1)
        return pooled, weights

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        return (frames_shape[0], self.units), (frames_shape[0], frames_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "attention_units": self.attention_units,
                "dropout": self.dropout}
