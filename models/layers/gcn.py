"""Graph convolution over the label graph (the one GCN of the codebase) and the label nodes it runs on."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models.layers.initial_arrays import check_initial_arrays, constant_or


def normalize_adjacency(adjacency):
    """Â = D^-1/2 A D^-1/2 with D the row sums (Kipf & Welling; KSSNet Eq.6's normalisation)."""
    degree = ops.sum(adjacency, axis=-1)
    inv_sqrt = ops.where(degree > 0, ops.rsqrt(ops.maximum(degree, 1e-12)), ops.zeros_like(degree))
    return adjacency * inv_sqrt[:, None] * inv_sqrt[None, :]


# "fan_out_uniform": U(-1/sqrt(units), 1/sqrt(units)), the reset_parameters of ML-GCN's and mssnet's
# GraphConvolution (kernel and bias); anything else is a Keras initializer name.
FAN_OUT_UNIFORM = "fan_out_uniform"


def low_rank_units(in_units: int, out_units: int) -> int:
    """mssnet's GraphConvolution middle width: max(32, (in + out) / 8)."""
    return max(32, int((in_units + out_units) / 8))


def _kernel_initializer(name: str, units: int):
    if name == FAN_OUT_UNIFORM:
        return keras.initializers.RandomUniform(-1.0 / np.sqrt(units), 1.0 / np.sqrt(units))
    return keras.initializers.get(name)


@keras.saving.register_keras_serializable(package="yt8m")
class GraphConvolution(keras.layers.Layer):
    """E' = act(Â E W + b) (Kipf; KSSNet Eq.6), LeakyReLU(0.2) by default; `activation=None` for the last layer.

    Called as `layer(node_features, adjacency)` with node_features (C, F) and
    adjacency (C, C), already normalised. `pre_activation(...)` gives Â E W + b
    (mssnet's lateral connections take tanh of it). With `low_rank`, W = W1 W2 through
    `low_rank_units(F, units)` middle units, as mssnet's GraphConvolution (weight1, weight2; each
    factor in the initializer of its own output width); without, one (F, units) W (Kipf, ML-GCN).
    """

    def __init__(self, units: int, activation: str | None = "leaky_relu", negative_slope: float = 0.2,
                 use_bias: bool = False, kernel_initializer: str = "glorot_uniform", low_rank: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.low_rank = low_rank
        self.activation = activation
        self.negative_slope = negative_slope
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer

    def build(self, node_features_shape, adjacency_shape=None):
        fan_in = node_features_shape[-1]
        middle = low_rank_units(fan_in, self.units) if self.low_rank else self.units
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, middle),
                                      initializer=_kernel_initializer(self.kernel_initializer, middle))
        self.kernel_out = (self.add_weight(name="kernel_out", shape=(middle, self.units),
                                           initializer=_kernel_initializer(self.kernel_initializer, self.units))
                           if self.low_rank else None)
        bias_initializer = "zeros" if self.kernel_initializer != FAN_OUT_UNIFORM else _kernel_initializer(
            FAN_OUT_UNIFORM, self.units)
        self.bias = (self.add_weight(name="bias", shape=(self.units,), initializer=bias_initializer)
                     if self.use_bias else None)

    def pre_activation(self, node_features, adjacency):
        support = ops.matmul(node_features, self.kernel)
        if self.kernel_out is not None:
            support = ops.matmul(support, self.kernel_out)
        out = ops.matmul(adjacency, support)
        return out + self.bias if self.bias is not None else out

    def activate(self, out):
        if self.activation == "leaky_relu":
            return ops.leaky_relu(out, negative_slope=self.negative_slope)
        return keras.activations.get(self.activation)(out) if self.activation else out

    def call(self, node_features, adjacency):
        return self.activate(self.pre_activation(node_features, adjacency))

    def compute_output_spec(self, node_features, adjacency):
        return keras.KerasTensor((*node_features.shape[:-1], self.units), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "negative_slope": self.negative_slope, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "low_rank": self.low_rank}


@keras.saving.register_keras_serializable(package="yt8m")
class GCNStack(keras.layers.Layer):
    """Graph convolutions of the given widths; returns every layer's output (KSSNet's LCs use the hidden ones),
    or with `return_pre_activations` every layer's Â E W + b (the next layer still gets the activation).

    The last layer has no activation (ML-GCN's classifier layer) unless `activate_last`; `low_rank`: every
    layer's W factored as mssnet's (GraphConvolution).
    """

    def __init__(self, units: list[int], negative_slope: float = 0.2, activate_last: bool = False,
                 use_bias: bool = False, kernel_initializer: str = "glorot_uniform",
                 return_pre_activations: bool = False, low_rank: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = list(units)
        self.negative_slope = negative_slope
        self.activate_last = activate_last
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.return_pre_activations = return_pre_activations
        self.low_rank = low_rank
        self.convolutions = [
            GraphConvolution(u, activation="leaky_relu" if (i < len(units) - 1 or activate_last) else None,
                             negative_slope=negative_slope, use_bias=use_bias,
                             kernel_initializer=kernel_initializer, low_rank=low_rank, name=f"gcn_{i}")
            for i, u in enumerate(self.units)]

    def build(self, node_features_shape, adjacency_shape=None):
        width = node_features_shape[-1]
        for convolution in self.convolutions:
            convolution.build((node_features_shape[0], width))
            width = convolution.units

    def call(self, node_features, adjacency):
        outputs = []
        for convolution in self.convolutions:
            pre_activation = convolution.pre_activation(node_features, adjacency)
            node_features = convolution.activate(pre_activation)
            outputs.append(pre_activation if self.return_pre_activations else node_features)
        return outputs

    def compute_output_spec(self, node_features, adjacency):
        return [keras.KerasTensor((node_features.shape[0], u), dtype=self.compute_dtype) for u in self.units]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "negative_slope": self.negative_slope,
                "activate_last": self.activate_last, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "return_pre_activations": self.return_pre_activations, "low_rank": self.low_rank}


# How a learned adjacency is trained (LabelNodes): its entries, or per-row softmax logits.
ADJACENCY_FORMS = ("direct", "row_softmax")


def _identity_plus_noise(seed, log: bool = False):
    """I + U(0, 1/C), or its log (the logits whose row softmax is I + U(0, 1/C) over its row sums)."""
    def initializer(shape, dtype=None):
        noise = keras.random.uniform(shape, 0.0, 1.0 / shape[0], seed=seed)
        start = ops.eye(shape[0], dtype=dtype) + ops.cast(noise, dtype)
        return ops.log(ops.maximum(start, 1e-30)) if log else start

    return initializer


@keras.saving.register_keras_serializable(package="yt8m")
class LabelNodes(keras.layers.Layer):
    """The label graph's nodes as weights: embeddings (C, E) and adjacency (C, C).

    Arrays computed offline (label statistics, word vectors, ASGE) initialise the
    weights; they travel in the saved model's weights, never in its config.
    Without an array, A starts random as I + U(0, 1/C): each label mostly itself
    with a little of every other (a dense U(0, 1) start would average all C
    embeddings into one vector after normalisation).
    `learn_adjacency` makes A a trainable weight (DbofGCN, SRDL); `normalize`
    applies D^-1/2 A D^-1/2 on every call (to |A| when A is learned, so it stays a
    valid graph). `adjacency_form` (learned A only): "direct" trains the entries
    of A themselves (DbofGCN: the gradient of |A| at an exact 0 is 0, so the zeros of
    its I + P start stay 0); "row_softmax" (SRDL) trains logits L, started at
    log of the start graph, and uses Â = softmax of each row of L (rows already sum
    to 1, `normalize` is moot). Adam moves every weight by about its rate per step:
    on direct entries of size 1/C that lets a row's C - 1 off-diagonal entries
    outgrow its diagonal in a few steps (the label vectors average into one); on
    logits it changes each entry by a factor of about e^rate, so a label's own
    share of its row changes at the same pace for every C.
    Called on any model tensor (only to place it in the graph), it returns
    (embeddings, adjacency).
    """

    def __init__(self, num_labels: int, embedding_dim: int, *, embeddings: np.ndarray | None = None,
                 adjacency: np.ndarray | None = None, learn_embeddings: bool = False,
                 learn_adjacency: bool = False, normalize: bool = True, adjacency_form: str = "direct",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if adjacency_form not in ADJACENCY_FORMS:
            raise ValueError(f"adjacency_form must be one of {ADJACENCY_FORMS}, got {adjacency_form!r}")
        if adjacency_form == "row_softmax" and not learn_adjacency:
            raise ValueError("adjacency_form='row_softmax' is a parametrisation of a learned adjacency")
        if adjacency_form == "row_softmax" and adjacency is not None and np.min(adjacency) <= 0:
            raise ValueError("adjacency_form='row_softmax' starts at log(A): every entry of A must be > 0")
        self.num_labels = num_labels
        self.embedding_dim = embedding_dim
        self.learn_embeddings = learn_embeddings
        self.learn_adjacency = learn_adjacency
        self.normalize = normalize
        self.adjacency_form = adjacency_form
        self.seed = seed
        check_initial_arrays(("embeddings", embeddings, (num_labels, embedding_dim)),
                             ("adjacency", adjacency, (num_labels, num_labels)))
        if adjacency_form == "row_softmax" and adjacency is not None:
            adjacency = np.log(adjacency)
        self._initial = {"embeddings": embeddings, "adjacency": adjacency}

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_labels, self.embedding_dim), trainable=self.learn_embeddings,
            initializer=constant_or(self._initial["embeddings"],
                                    keras.initializers.RandomNormal(stddev=1.0, seed=self.seed)))
        self.adjacency = self.add_weight(
            name="adjacency", shape=(self.num_labels, self.num_labels), trainable=self.learn_adjacency,
            initializer=constant_or(self._initial["adjacency"],
                                    _identity_plus_noise(self.seed, log=self.adjacency_form == "row_softmax")))
        self._initial = {"embeddings": None, "adjacency": None}  # weights hold them now

    def graph(self):
        """The adjacency the GCN uses (C, C)."""
        if self.adjacency_form == "row_softmax":
            return ops.softmax(self.adjacency, axis=-1)  # the weight holds logits; rows sum to 1
        adjacency = ops.abs(self.adjacency) if self.learn_adjacency else self.adjacency
        return normalize_adjacency(adjacency) if self.normalize else adjacency

    def call(self, inputs=None):
        return ops.convert_to_tensor(self.embeddings), self.graph()

    def compute_output_spec(self, inputs=None):
        return (keras.KerasTensor((self.num_labels, self.embedding_dim), dtype=self.compute_dtype),
                keras.KerasTensor((self.num_labels, self.num_labels), dtype=self.compute_dtype))

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels, "embedding_dim": self.embedding_dim,
                "learn_embeddings": self.learn_embeddings, "learn_adjacency": self.learn_adjacency,
                "normalize": self.normalize, "adjacency_form": self.adjacency_form, "seed": self.seed}
