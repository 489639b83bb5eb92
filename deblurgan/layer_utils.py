"""Custom layers and the residual block shared by the generator variants.

Every custom layer uses ``keras.ops`` only (so it runs on TensorFlow, JAX and PyTorch), stores its
constructor arguments under the same names, returns exactly them from ``get_config`` and is
registered as serializable, so ``keras.models.load_model`` finds it after ``import deblurgan``
without ``custom_objects``.
"""

import numbers

import keras
from keras import layers, ops

NORMALIZATIONS = ("batch", "instance", "none")


@keras.saving.register_keras_serializable(package="deblurgan")
class ReflectionPadding2D(layers.Layer):
    """Pads height and width by mirroring the border (no edge row repeated), like ``nn.ReflectionPad2d``.

    Args:
        padding: int or ``(pad_height, pad_width)``; the same amount is added on both sides.

    Example:
        >>> ReflectionPadding2D(3)(keras.ops.zeros((1, 8, 8, 3))).shape
        (1, 14, 14, 3)
    """

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, numbers.Integral):
            padding = (padding, padding)
        padding = tuple(padding)
        # Checked here: a bad value would otherwise fail later, deep inside the backend's pad op.
        if len(padding) != 2 or any(not isinstance(p, numbers.Integral) or p < 0 for p in padding):
            raise ValueError(
                f"ReflectionPadding2D padding must be an int or (pad_height, pad_width) of "
                f"non-negative ints, got {padding!r}"
            )
        self.padding = tuple(int(p) for p in padding)

    def call(self, inputs):
        pad_h, pad_w = self.padding
        return ops.pad(inputs, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        pad_h, pad_w = self.padding
        return (
            batch,
            None if height is None else height + 2 * pad_h,
            None if width is None else width + 2 * pad_w,
            channels,
        )

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="deblurgan")
class GlobalSkip(layers.Layer):
    """Combines the blurred input with the generator's tanh output.

    Args:
        mode: ``"average"`` gives ``(input + residual) / 2`` (the Sicara Keras port);
            ``"clip"`` gives ``clip(input + residual, -1, 1)`` (the DeblurGAN paper's
            ResNet-with-global-skip, which learns the residual correction).

    Called on ``[blurred, residual]``; both are in [-1, 1].
    """

    MODES = ("average", "clip")

    def __init__(self, mode="average", **kwargs):
        super().__init__(**kwargs)
        # Keras' legacy .h5 loader turns a string config value that names a function of
        # keras.layers back into that function: "average" comes back as keras.layers.average.
        if callable(mode) and getattr(mode, "__name__", None) in self.MODES:
            mode = mode.__name__
        if mode not in self.MODES:
            raise ValueError(f"GlobalSkip mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        blurred, residual = inputs
        if self.mode == "average":
            return (blurred + residual) / 2.0
        return ops.clip(blurred + residual, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def normalization(norm, name):
    """The normalization layer for ``norm`` in ``NORMALIZATIONS``.

    Instance norm is ``GroupNormalization`` with one group per channel (per-sample statistics,
    learned scale and offset), which is what ``nn.InstanceNorm2d(affine=True)`` computes.
    ``"none"`` is an ``Identity`` layer (EDSR and Nah et al.'s DeepDeblur drop batch
    normalization); keeping a named layer keeps the layer names of every variant the same.
    """
    if norm == "batch":
        return layers.BatchNormalization(name=name)
    if norm == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    if norm == "none":
        return layers.Identity(name=name)
    raise ValueError(f"norm must be one of {NORMALIZATIONS}, got {norm!r}")


def res_block(x, filters, name, norm="batch", dropout_rate=0.5, dropout_seed=None):
    """ReflPad 1, Conv 3x3, norm, ReLU, Dropout, ReflPad 1, Conv 3x3, norm, add the input.

    A seeded Dropout draws its masks from its own seed state on every backend (unseeded, Keras'
    PyTorch backend uses torch's global generator, which a saved training state cannot restore).
    """
    shortcut = x
    x = ReflectionPadding2D(1, name=f"{name}_pad1")(x)
    x = layers.Conv2D(filters, 3, name=f"{name}_conv1")(x)
    x = normalization(norm, f"{name}_norm1")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, seed=dropout_seed, name=f"{name}_dropout")(x)
    x = ReflectionPadding2D(1, name=f"{name}_pad2")(x)
    x = layers.Conv2D(filters, 3, name=f"{name}_conv2")(x)
    x = normalization(norm, f"{name}_norm2")(x)
    return layers.Add(name=f"{name}_add")([shortcut, x])


def with_layer_dtypes(model, dtype_of):
    """A copy of ``model`` whose every layer computes in ``dtype_of(layer)`` (a dtype policy name),
    holding the same weights (mixed precision keeps weights in float32, so they copy exactly)."""

    def clone_layer(layer):
        config = layer.get_config()
        config["dtype"] = dtype_of(layer)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone_layer)
    copy.set_weights(model.get_weights())
    return copy
