"""Custom layers and the residual blocks (Sicara/EDSR res_block, ESRGAN RRDB) of the generators.

Every custom layer uses ``keras.ops`` only (so it runs on TensorFlow, JAX and PyTorch), stores its
constructor arguments under the same names, returns exactly them from ``get_config`` and is
registered as serializable, so ``keras.models.load_model`` finds it after ``import deblurgan``
without ``custom_objects``.
"""

import numbers

import keras
from keras import layers, ops

from deblurgan.errors import DeblurGANError

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
            raise DeblurGANError(
                f"padding={padding!r}: give ReflectionPadding2D an int or (pad_height, pad_width) of "
                "non-negative ints",
                "padding",
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
            raise DeblurGANError(f"mode={mode!r}: GlobalSkip takes one of {', '.join(self.MODES)}", "mode")
        self.mode = mode

    def call(self, inputs):
        blurred, residual = inputs
        sizes = tuple(blurred.shape[1:3]), tuple(residual.shape[1:3])
        if None not in sizes[0] + sizes[1] and sizes[0] != sizes[1]:  # a backend's shape error otherwise
            raise DeblurGANError(
                f"a {sizes[0][1]}x{sizes[0][0]} input: the generator takes heights and widths divisible "
                "by 4 (it halves them twice); deblurgan.deblur_array pads any size and crops back",
                "inputs",
            )
        if self.mode == "average":
            return (blurred + residual) / 2.0
        return ops.clip(blurred + residual, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="deblurgan")
class DepthToSpace(layers.Layer):
    """Sub-pixel shuffle (Shi et al. 2016): ``(h, w, s*s*c)`` -> ``(h*s, w*s, c)``.

    Channel order is TensorFlow's ``tf.nn.depth_to_space`` (and ``keras.ops.depth_to_space``):
    ``output[y*s + i, x*s + j, k] = input[y, x, (i*s + j)*c + k]``. PyTorch's ``nn.PixelShuffle``
    reads ``input[k*s*s + i*s + j]`` instead; the two agree only for one output channel. Written
    with ``keras.ops`` reshape/transpose (``keras.ops.depth_to_space`` needs Keras 3.12+).

    Args:
        block_size: the upscaling factor ``s`` (at least 2).

    Example:
        >>> DepthToSpace(2)(keras.ops.zeros((1, 4, 6, 12))).shape
        (1, 8, 12, 3)
    """

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(block_size, numbers.Integral) or block_size < 2:
            raise DeblurGANError(
                f"block_size={block_size!r}: DepthToSpace needs an int of at least 2", "block_size"
            )
        self.block_size = int(block_size)

    def call(self, inputs):
        s = self.block_size
        shape = ops.shape(inputs)
        height, width, channels = shape[1], shape[2], inputs.shape[-1] // (s * s)
        x = ops.reshape(inputs, (-1, height, width, s, s, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (batch, y, i, x, j, c)
        return ops.reshape(x, (-1, height * s, width * s, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        s = self.block_size
        if channels is not None and channels % (s * s):
            raise DeblurGANError(
                f"DepthToSpace(block_size={s}) needs channels divisible by {s * s}, got {channels}",
                "block_size",
            )
        return (
            batch,
            None if height is None else height * s,
            None if width is None else width * s,
            None if channels is None else channels // (s * s),
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="deblurgan")
class ScaledAdd(layers.Layer):
    """``shortcut + scale * branch``, called on ``[shortcut, branch]``: a residual connection with
    a scaled branch (EDSR's residual scaling; ESRGAN's 0.2 in its dense and RRDB blocks).

    Args:
        scale: the factor applied to the branch.
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, branch = inputs
        return shortcut + self.scale * branch

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


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
    raise DeblurGANError(f"norm={norm!r}: choose one of {', '.join(NORMALIZATIONS)}", "norm")


def res_block(
    x,
    filters,
    name,
    norm="batch",
    dropout_rate=0.5,
    dropout_seed=None,
    residual_scale=1.0,
    zero_init=False,
):
    """ReflPad 1, Conv 3x3, norm, ReLU, Dropout, ReflPad 1, Conv 3x3, norm, add the input.

    A seeded Dropout draws its masks from its own seed state on every backend (unseeded, Keras'
    PyTorch backend uses torch's global generator, which a saved training state cannot restore).
    ``residual_scale`` != 1 adds ``residual_scale * branch`` (EDSR) with a :class:`ScaledAdd`;
    ``zero_init`` starts the second convolution at zero, so the block starts as the identity. With
    the defaults the layers are exactly the Sicara block's.
    """
    shortcut = x
    x = ReflectionPadding2D(1, name=f"{name}_pad1")(x)
    x = layers.Conv2D(filters, 3, name=f"{name}_conv1")(x)
    x = normalization(norm, f"{name}_norm1")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, seed=dropout_seed, name=f"{name}_dropout")(x)
    x = ReflectionPadding2D(1, name=f"{name}_pad2")(x)
    init = "zeros" if zero_init else "glorot_uniform"
    x = layers.Conv2D(filters, 3, kernel_initializer=init, name=f"{name}_conv2")(x)
    x = normalization(norm, f"{name}_norm2")(x)
    if residual_scale != 1.0:
        return ScaledAdd(residual_scale, name=f"{name}_add")([shortcut, x])
    return layers.Add(name=f"{name}_add")([shortcut, x])


def dense_block(x, growth, name):
    """ESRGAN's residual dense block: five Conv 3x3 ("same" padding, no norm), each seeing the
    concatenation of the block input and every earlier output; ``growth`` channels and LeakyReLU
    0.2 after the first four, the fifth back to the input's channels; ``input + 0.2 * fifth``."""
    channels = x.shape[-1]
    features = [x]
    for k in range(1, 5):
        seen = features[0] if k == 1 else layers.Concatenate(name=f"{name}_concat{k}")(features)
        y = layers.Conv2D(growth, 3, padding="same", name=f"{name}_conv{k}")(seen)
        features.append(layers.LeakyReLU(0.2, name=f"{name}_lrelu{k}")(y))
    seen = layers.Concatenate(name=f"{name}_concat5")(features)
    y = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv5")(seen)
    return ScaledAdd(0.2, name=f"{name}_add")([x, y])


def rrdb_block(x, growth, name):
    """ESRGAN's residual-in-residual dense block: three :func:`dense_block` in a chain,
    ``input + 0.2 * chain``. No normalization inside. (No zero-initialised variant: the chain carries
    its input through the dense blocks' skips, so no zeroed convolution makes the block the identity.)"""
    shortcut = x
    for j in range(1, 4):
        x = dense_block(x, growth, f"{name}_dense_{j}")
    return ScaledAdd(0.2, name=f"{name}_add")([shortcut, x])


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
