"""Frequency separation (Fritsche et al., DSGAN, ICCV-W 2019): low-pass content loss, high-pass critic input.

DSGAN trains the pixel (content) loss on low frequencies only and shows the critic only the high
frequencies, so each loss acts where it is trustworthy: the low-pass L1 keeps colours and shapes of
the target, and the critic judges texture and edges.

The low-pass is DSGAN's: a ``k x k`` box filter (average pooling, stride 1), here with reflect
padding so the output keeps the input's size and borders are not darkened. Its response at the
Nyquist frequency is ``1/k`` per axis: a one-pixel checkerboard keeps ``1/25`` of its amplitude
(k = 5), so ``highpass`` passes ``24/25`` of it. Images are ``(batch, height, width, channels)``;
height and width must exceed ``k // 2``. ``keras.ops`` only.
"""

import keras
from keras import layers, ops

from deblurgan.errors import DeblurGANError

LOWPASS_KERNEL_SIZE = 5


def _check_kernel_size(kernel_size):
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise DeblurGANError(f"kernel_size={kernel_size!r}: must be an odd positive int", "kernel_size")


def lowpass(images, kernel_size=LOWPASS_KERNEL_SIZE):
    """The mean of each ``kernel_size x kernel_size`` neighbourhood, borders reflected (no edge repeat).

    Example:
        >>> lowpass(keras.ops.ones((1, 8, 8, 3))).shape
        (1, 8, 8, 3)
    """
    _check_kernel_size(kernel_size)
    images = ops.convert_to_tensor(images)
    pad = kernel_size // 2
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="reflect")
    return ops.average_pool(padded, kernel_size, strides=1, padding="valid")


def highpass(images, kernel_size=LOWPASS_KERNEL_SIZE):
    """``images - lowpass(images)``: what the DSGAN critic sees."""
    images = ops.convert_to_tensor(images)
    return ops.subtract(images, lowpass(images, kernel_size))


def lowpass_l1_loss(y_true, y_pred, kernel_size=LOWPASS_KERNEL_SIZE):
    """Mean absolute difference of the low-passed sharp target and the low-passed output (DSGAN's
    "color loss"); weighted by ``lowpass_weight`` in training."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true, dtype=y_pred.dtype)
    return ops.mean(ops.abs(ops.subtract(lowpass(y_true, kernel_size), lowpass(y_pred, kernel_size))))


@keras.saving.register_keras_serializable(package="deblurgan")
class HighPass2D(layers.Layer):
    """:func:`highpass` as a layer, to put in front of a critic (``critic_input="highpass"``).

    Args:
        kernel_size: the box filter's side (5, as DSGAN).
    """

    def __init__(self, kernel_size=LOWPASS_KERNEL_SIZE, **kwargs):
        super().__init__(**kwargs)
        _check_kernel_size(kernel_size)
        self.kernel_size = kernel_size

    def call(self, inputs):
        return highpass(inputs, self.kernel_size)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


def highpass_critic(critic, name=None):
    """``x -> critic(highpass(x))``: a model whose critic sees only high frequencies."""
    inputs = keras.Input(shape=critic.input_shape[1:], name="image")
    outputs = critic(HighPass2D(name="highpass")(inputs))
    return keras.Model(inputs, outputs, name=name or f"highpass_{critic.name}")
