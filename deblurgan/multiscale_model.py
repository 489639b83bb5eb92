"""Nah et al.'s multi-scale deblurring network (DeepDeblur, CVPR 2017), its Gaussian pyramid and loss.

The network restores the image coarse to fine. Scale ``k`` (1 = full resolution, ``n_scales`` =
coarsest) sees the blurred image at ``1 / 2**(k-1)`` resolution, concatenated (except at the
coarsest scale) with the up-convolved restoration of scale ``k + 1``. Each scale is a 5x5 conv to
``n_filters``, ``n_blocks`` residual blocks (conv-ReLU-conv, added to the input, no ReLU after the
add, no normalization) and a 5x5 conv back to RGB: 40 convolutions per scale for 19 blocks. Every
scale's restoration is an output (finest first), so the content loss can supervise all of them;
deblurring uses the finest.

The pyramid is built inside the model (:class:`GaussianDownsample2D`), so the model takes one
image, like every other generator here. Height and width must be divisible by
``2 ** (n_scales - 1)`` (4 for three scales, which ``deblurgan.inference`` pads to).

Parameters for the paper's configuration (3 scales, 19 blocks, 64 filters, 5x5 kernels):
11,719,953. Nah et al. give the layer structure rather than a total; from it: per scale the first
conv (5*5*c*64 + 64, c = 3 at the coarsest scale, 6 elsewhere), 38 block convs (5*5*64*64 + 64) and
the RGB conv (5*5*64*3 + 3), plus two 3-to-3 5x5 up-convolutions (228 each):
3,903,299 + 2 * 3,908,099 + 2 * 228 = 11,719,953.
"""

import weakref

import keras
import numpy as np
from keras import layers, ops

from deblurgan.errors import DeblurGANError
from deblurgan.losses import content_loss

BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # the Burt-Adelson Gaussian pyramid kernel


@keras.saving.register_keras_serializable(package="deblurgan")
class GaussianDownsample2D(layers.Layer):
    """Halves height and width: a fixed 5x5 binomial (Gaussian) blur, reflect padding, stride 2.

    One level of a Gaussian pyramid (Burt & Adelson); it has no weights. ``kernel_size`` and
    ``strides`` are exposed so ``deblurgan.inference.receptive_field_radius`` counts the layer.
    """

    kernel_size = (5, 5)
    strides = (2, 2)

    def call(self, inputs):
        channels = inputs.shape[-1]
        kernel = np.outer(BINOMIAL_5, BINOMIAL_5)[:, :, None, None]
        kernel = ops.convert_to_tensor(np.tile(kernel, (1, 1, channels, 1)), dtype=inputs.dtype)
        padded = ops.pad(inputs, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="reflect")
        return ops.depthwise_conv(padded, kernel, strides=2, padding="valid")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        half = [None if size is None else (size + 1) // 2 for size in (height, width)]
        return (batch, half[0], half[1], channels)


def gaussian_pyramid(images, n_scales=3):
    """``[images, images / 2, images / 4, ...]`` (``n_scales`` levels), as the model builds it.

    The targets of the multi-scale content loss: the sharp image's pyramid.
    """
    downsample = GaussianDownsample2D()
    levels = [ops.convert_to_tensor(images)]
    for _ in range(n_scales - 1):
        levels.append(downsample(levels[-1]))
    return levels


def torch_default_init():
    """Torch's (and PyTorch's) default convolution kernel init, which DeepDeblur trained from:
    uniform in +-1/sqrt(fan_in). With Keras' Glorot init instead, each unscaled residual block
    multiplies the signal's variance by about 1.5, and a fresh paper-size network's finest output
    had a standard deviation near 40 for inputs in [-1, 1]; with this one, about 0.2. (Biases start at
    zero, not Torch's uniform draw.)"""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def _conv(filters, kernel_size, name):
    return layers.Conv2D(
        filters, kernel_size, padding="same", kernel_initializer=torch_default_init(), name=name
    )


def _scale_branch(x, scale, n_blocks, n_filters, kernel_size):
    """Conv, ``n_blocks`` residual blocks (conv-ReLU-conv + input), conv to RGB, for one scale."""
    prefix = f"scale_{scale}"
    x = _conv(n_filters, kernel_size, f"{prefix}_head_conv")(x)
    for i in range(1, n_blocks + 1):
        name = f"{prefix}_res_block_{i}"
        y = _conv(n_filters, kernel_size, f"{name}_conv1")(x)
        y = layers.Activation("relu", name=f"{name}_relu")(y)
        y = _conv(n_filters, kernel_size, f"{name}_conv2")(y)
        x = layers.Add(name=f"{name}_add")([x, y])
    return _conv(3, kernel_size, f"{prefix}_output")(x)


def multiscale_generator_model(
    input_shape=(None, None, 3), n_scales=3, n_blocks=19, n_filters=64, kernel_size=5, name="generator"
):
    """DeepDeblur's multi-scale generator (Nah et al. 2017); see the module doc.

    Args:
        input_shape: ``(height, width, 3)``, ``None`` for any size divisible by ``2**(n_scales-1)``.
        n_scales: pyramid levels (3: 1, 1/2, 1/4).
        n_blocks: residual blocks per scale (19).
        n_filters: channels inside each scale (64).
        kernel_size: of every convolution and up-convolution (5).
        name: model name.

    Returns:
        A ``keras.Model`` from the blurred image in [-1, 1] to ``n_scales`` restorations, finest
        (full resolution) first. The outputs are linear (no tanh), as in the paper.

    Example:
        >>> g = multiscale_generator_model(n_blocks=1, n_filters=8)
        >>> [tuple(o.shape) for o in g(keras.ops.zeros((1, 32, 32, 3)))]
        [(1, 32, 32, 3), (1, 16, 16, 3), (1, 8, 8, 3)]
    """
    if n_scales < 1:
        raise DeblurGANError(f"n_scales={n_scales}: must be at least 1", "n_scales")
    if kernel_size % 2 == 0:  # "same" padding of an even kernel is lopsided
        raise DeblurGANError(
            f"kernel_size={kernel_size}: use an odd size; an even one shifts the image by half a pixel "
            "per convolution",
            "kernel_size",
        )
    inputs = keras.Input(shape=input_shape, name="blurred")
    pyramid = [inputs]
    for scale in range(2, n_scales + 1):
        pyramid.append(GaussianDownsample2D(name=f"pyramid_{scale}")(pyramid[-1]))
    outputs = []
    for scale in range(n_scales, 0, -1):
        x = pyramid[scale - 1]
        if outputs:
            coarser = layers.Conv2DTranspose(
                3, kernel_size, strides=2, padding="same", kernel_initializer=torch_default_init(),
                name=f"scale_{scale}_upconv",
            )(outputs[0])  # fmt: skip
            x = layers.Concatenate(name=f"scale_{scale}_concat")([x, coarser])
        outputs.insert(0, _scale_branch(x, scale, n_blocks, n_filters, kernel_size))
    return keras.Model(inputs, outputs, name=name)


def multiscale_content_loss(y_true, outputs, loss="mse"):
    """The mean over scales of ``loss`` between each output and the sharp image's pyramid level.

    Args:
        y_true: sharp images ``(batch, height, width, 3)`` in [-1, 1].
        outputs: the model's outputs, finest first (a single tensor counts as one scale).
        loss: ``"mse"`` (the paper's), ``"l1"``, or any ``(y_true, y_pred) -> scalar``.
    """
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    loss_fn = content_loss(loss) if isinstance(loss, str) else loss
    targets = gaussian_pyramid(y_true, len(outputs))
    return ops.mean(ops.stack([loss_fn(t, o) for t, o in zip(targets, outputs, strict=True)]))


_finest = weakref.WeakKeyDictionary()


def finest_output(generator):
    """``generator`` itself when it has one output, else a model sharing its layers that returns
    only the first (finest) output; cached per generator, so calling it per photo is cheap."""
    outputs = getattr(generator, "outputs", None)  # engines other than Keras run one output
    if not outputs or len(outputs) == 1:
        return generator
    if generator not in _finest:
        _finest[generator] = keras.Model(generator.inputs, generator.outputs[0], name=generator.name)
    return _finest[generator]
