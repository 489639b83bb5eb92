"""Loss terms for DeblurGAN training: adversarial, perceptual and pixel content losses, gradient penalty.

Everything here uses ``keras.ops`` only, so it runs on the TensorFlow, JAX and PyTorch backends;
the backend-specific gradient code lives in ``deblurgan.training``.

Images are in [-1, 1] (``deblurgan.io.preprocess_image``). Every loss returns a scalar: the mean
over all elements (batch included).

The perceptual loss compares VGG features of the sharp and the restored image:

- ``network="vgg16"`` (Sicara default): VGG16 ``block3_conv3`` output, after its ReLU.
- ``network="vgg19"`` (DeblurGAN paper): VGG19 conv3_3 *before* its ReLU, as the paper's PyTorch
  code cuts ``vgg19.features`` right after that convolution.

VGG weights are ``"imagenet"`` (the Keras "notop" file, downloaded once into ``~/.keras/models/``
or ``$KERAS_HOME/models/``), the path of that file saved locally (for machines without internet),
or ``None`` (random initialisation, for tests).
"""

import functools
import logging
from pathlib import Path

import h5py
import keras
from keras import layers, ops

from deblurgan.distribution import global_mean
from deblurgan.errors import DeblurGANError
from deblurgan.pretrained import cached_weights_path, download_help, first_line

log = logging.getLogger(__name__)

_KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications"

# network -> (file name in the Keras cache, official URL, md5 that keras.utils.get_file checks)
VGG_WEIGHTS = {
    "vgg16": (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_KERAS_WEIGHTS_URL}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "vgg19": (
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_KERAS_WEIGHTS_URL}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6",
    ),
}
VGG_NETWORKS = tuple(VGG_WEIGHTS)
FEATURE_LAYER = "block3_conv3"
CONTENT_LOSSES = ("perceptual", "l1", "mse", "charbonnier", "l1+fft")
CHARBONNIER_EPSILON = 1e-3
FFT_WEIGHT = 0.1  # MIMO-UNet's weight of the FFT L1 next to the L1

# ImageNet mean pixel in BGR order, the "caffe" preprocessing the Keras VGG weights expect.
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)


def wasserstein_loss(y_true, y_pred):
    """The critic's Wasserstein loss, ``mean(y_true * y_pred)`` (Sicara's definition).

    With labels ``+1`` for real and ``-1`` for generated images (Sicara's convention) minimising
    it drives the critic's scores apart; the generator uses it with the labels of real images.

    Example:
        >>> float(wasserstein_loss(np.array([[1.0], [-1.0]]), np.array([[0.5], [2.0]])))
        -0.75
    """
    return ops.mean(ops.multiply(y_true, y_pred))


def l1_loss(y_true, y_pred):
    """Mean absolute pixel difference over everything (images in [-1, 1])."""
    return ops.mean(ops.abs(ops.subtract(y_true, y_pred)))


def mse_loss(y_true, y_pred):
    """Mean squared pixel difference over everything (images in [-1, 1])."""
    return ops.mean(ops.square(ops.subtract(y_true, y_pred)))


def charbonnier_loss(y_true, y_pred, epsilon=CHARBONNIER_EPSILON):
    """Mean of ``sqrt((y_true - y_pred)^2 + epsilon^2)``, a smooth L1 (Charbonnier; LapSRN, MPRNet).

    Example:
        >>> round(float(charbonnier_loss(np.zeros(2), np.array([0.0, 0.5]))), 4)  # (0.001 + 0.500001) / 2
        0.2505
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true, dtype=y_pred.dtype)
    return ops.mean(ops.sqrt(ops.add(ops.square(ops.subtract(y_true, y_pred)), epsilon**2)))


def fft_l1_loss(y_true, y_pred):
    """MIMO-UNet's frequency loss: the mean absolute difference of the 2-D FFTs, real and imaginary
    parts alike, of each image's channels.

    The FFT is unnormalized (``numpy.fft.fft2``'s default, as MIMO-UNet's ``torch.rfft(...,
    normalized=False, onesided=False)``): the DC term is the sum of the pixels, so the loss of a
    noise-like error grows with ``sqrt(height * width)`` (MIMO-UNet trained 256 x 256 crops).
    Equals ``(mean |Re dF| + mean |Im dF|) / 2`` over batch, channels and frequencies, with
    ``dF = fft2(y_true) - fft2(y_pred)`` over height and width.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true, dtype=y_pred.dtype)
    difference = ops.transpose(ops.subtract(y_true, y_pred), (0, 3, 1, 2))  # FFT over the last two axes
    real, imaginary = ops.fft2((difference, ops.zeros_like(difference)))  # linear: fft(a) - fft(b)
    return ops.divide(ops.add(ops.mean(ops.abs(real)), ops.mean(ops.abs(imaginary))), 2.0)


def l1_fft_loss(y_true, y_pred, fft_weight=FFT_WEIGHT):
    """``l1_loss + fft_weight * fft_l1_loss`` (MIMO-UNet's content loss, one scale)."""
    return ops.add(l1_loss(y_true, y_pred), ops.multiply(fft_weight, fft_l1_loss(y_true, y_pred)))


def vgg_preprocess(images):
    """Maps images in [-1, 1] (RGB) to the input the Keras VGG weights expect ("caffe" mode).

    That is ``keras.applications.vgg16.preprocess_input`` applied to ``(images + 1) * 127.5``:
    scale to [0, 255], reorder RGB to BGR, subtract the ImageNet mean pixel (the Keras VGG weights
    were converted from Caffe and were trained on such inputs).
    """
    pixels = ops.multiply(ops.add(images, 1.0), 127.5)
    bgr = ops.flip(pixels, axis=-1)
    return ops.subtract(bgr, ops.convert_to_tensor(IMAGENET_MEAN_BGR, dtype=bgr.dtype))


def _check_network(network):
    if network not in VGG_NETWORKS:
        raise DeblurGANError(
            f"network={network!r}: network must be one of {', '.join(VGG_NETWORKS)}", "network"
        )


def imagenet_weights_path(network="vgg16"):
    """The local path of the Keras ImageNet "notop" weights for ``network``, downloading if needed.

    The file is looked up in ``$KERAS_HOME/models/`` (default ``~/.keras/models/``) and checked
    against its known md5; when it is missing or damaged, ``keras.utils.get_file`` downloads it.

    Raises:
        DeblurGANError: when the file is not cached and cannot be downloaded (offline machine);
            the message names the file, its official URL and how to pass a local copy.
    """
    _check_network(network)
    file_name, url, md5 = VGG_WEIGHTS[network]
    label = f"{network.upper()} ImageNet weights"
    return cached_weights_path(file_name, url, md5, label, "vgg_weights")


def _check_weights_file(path, network):
    """Errors, naming the file, for a missing file or one that is not HDF5."""
    if not path.is_file():
        what = "a folder, not a" if path.is_dir() else "no such"
        raise DeblurGANError(
            f"{path}: {what} {network.upper()} weights file; pass the path of the Keras notop "
            f"weights file ({VGG_WEIGHTS[network][0]}) or vgg_weights='imagenet'",
            mentions=("vgg_weights",),
        )
    if path.suffix not in (".h5", ".hdf5") or not h5py.is_hdf5(path):
        raise DeblurGANError(
            f"{path}: not a Keras {network.upper()} weights file (need an HDF5 .h5 file); "
            f"{download_help(*VGG_WEIGHTS[network][:2], 'vgg_weights')}",
            mentions=("vgg_weights",),
        )


def _full_vgg(network, weights_path):
    """Keras' own VGG16/VGG19 without its classifier, loaded from ``weights_path`` (or random)."""
    constructor = keras.applications.VGG16 if network == "vgg16" else keras.applications.VGG19
    try:
        return constructor(include_top=False, weights=weights_path, input_shape=(None, None, 3))
    except Exception as error:  # Keras raises many types for a foreign or damaged file
        raise DeblurGANError(
            f"{weights_path}: cannot load it as {network.upper()} notop weights ({first_line(error)}); "
            f"pass {VGG_WEIGHTS[network][0]} for vgg_network={network!r}",
            mentions=("vgg_network",),
        ) from None


def vgg_feature_extractor(network="vgg16", weights="imagenet"):
    """A frozen VGG truncated at ``block3_conv3``, for the perceptual loss.

    The model takes "caffe"-preprocessed images of any height and width (``vgg_preprocess``
    maps [-1, 1] images to that) and returns features at 1/4 resolution with 256 channels.
    It is built once: keep it, do not rebuild it per step. Its layers are frozen
    (``trainable = False``), so its weights never appear among trainable weights.

    Args:
        network: ``"vgg16"``: ``block3_conv3`` after its ReLU (Sicara); ``"vgg19"``:
            ``block3_conv3`` *before* its ReLU (the paper's conv3_3), built with the same layers
            and weights but no activation on that last convolution.
        weights: ``"imagenet"`` (Keras' notop file, cached in ``~/.keras/models/``), the path of
            that file (``.h5``, for offline machines), or ``None`` (random initialisation).

    Example:
        >>> extractor = vgg_feature_extractor("vgg16", weights=None)
        >>> extractor(vgg_preprocess(keras.ops.zeros((1, 32, 32, 3)))).shape
        (1, 8, 8, 256)
    """
    _check_network(network)
    if weights is None:
        weights_path = None
    elif isinstance(weights, str) and weights == "imagenet":
        weights_path = imagenet_weights_path(network)
    else:
        weights_path = Path(weights).expanduser()
        _check_weights_file(weights_path, network)
        weights_path = str(weights_path)
    full = _full_vgg(network, weights_path)

    # A fresh graph holding copies of the layers up to block3_conv3, so the blocks we do not use
    # are dropped and the last convolution can lose its ReLU (vgg19) without a Lambda layer.
    pre_relu = network == "vgg19"
    inputs = keras.Input(shape=(None, None, 3), name="vgg_input")
    x = inputs
    for layer in full.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        config = layer.get_config()
        if layer.name == FEATURE_LAYER and pre_relu:
            config["activation"] = "linear"
        copy = layer.__class__.from_config(config)
        x = copy(x)
        copy.set_weights(layer.get_weights())
        if layer.name == FEATURE_LAYER:
            break
    suffix = "_pre_relu" if pre_relu else ""
    extractor = keras.Model(inputs, x, name=f"{network}_{FEATURE_LAYER}{suffix}")
    extractor.trainable = False
    return extractor


class PerceptualLoss:
    """MSE between VGG features of the sharp (``y_true``) and restored (``y_pred``) images.

    Holds one frozen extractor (``self.extractor``), built when the loss is created. Both images
    go through the network in one batch. Gradients flow to ``y_pred`` on every backend; the VGG
    weights never change (under ``jax.jit`` they are traced as constants, so no stateless call is
    needed for them).

    Input scaling: images in [-1, 1] are converted to what the Keras VGG weights were trained on
    ("caffe": [0, 255], RGB -> BGR, minus the ImageNet mean pixel; see ``vgg_preprocess``). The
    Sicara port fed its [-1, 1] images to VGG16 unscaled, and DeblurGAN's own code fed them to
    torchvision's VGG19 unscaled too (DeblurGAN-v2 normalises them); ``input_scaling="none"``
    reproduces both, "caffe" gives the weights what they were trained on.

    Args:
        network: ``"vgg16"`` (Sicara, ``block3_conv3`` after ReLU) or ``"vgg19"`` (paper,
            conv3_3 before ReLU).
        weights: ``"imagenet"``, a local notop ``.h5`` file, or ``None``; see
            ``vgg_feature_extractor``.
        input_scaling: ``"caffe"`` (default) or ``"none"`` (Sicara's unscaled input).

    Example:
        >>> perceptual = PerceptualLoss(weights=None)
        >>> float(perceptual(keras.ops.zeros((1, 32, 32, 3)), keras.ops.zeros((1, 32, 32, 3))))
        0.0
    """

    INPUT_SCALINGS = ("caffe", "none")

    def __init__(self, network="vgg16", weights="imagenet", input_scaling="caffe"):
        if input_scaling not in self.INPUT_SCALINGS:
            choices = ", ".join(self.INPUT_SCALINGS)
            raise DeblurGANError(f"input_scaling={input_scaling!r}: choose one of {choices}", "input_scaling")
        self.network = network
        self.weights = weights
        self.input_scaling = input_scaling
        self.extractor = vgg_feature_extractor(network, weights)

    def __call__(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true, dtype=y_pred.dtype)
        images = ops.concatenate([y_true, y_pred], axis=0)
        if self.input_scaling == "caffe":
            images = vgg_preprocess(images)
        features_true, features_pred = ops.split(self.extractor(images), 2, axis=0)
        return ops.mean(ops.square(ops.subtract(features_true, features_pred)))


@functools.cache
def _default_perceptual_loss():
    return PerceptualLoss()


def perceptual_loss(y_true, y_pred):
    """Sicara-compatible function form: ``PerceptualLoss()`` (VGG16, ImageNet, caffe scaling).

    The extractor is built on the first call and reused afterwards.
    """
    return _default_perceptual_loss()(y_true, y_pred)


def gradient_penalty_from_gradients(gradients, epsilon=1e-12):
    """The WGAN-GP penalty ``mean over the batch of (||g||_2 - 1)^2``.

    Args:
        gradients: the critic's gradients with respect to its interpolated inputs,
            ``d critic(x_hat) / d x_hat``, shape ``(batch, ...)``; the norm is taken over all
            non-batch axes (the whole image, as in Gulrajani et al.).
        epsilon: added under the square root. The derivative of ``sqrt`` is infinite at 0, so a
            sample whose gradient is exactly zero (e.g. dead ReLUs) would make the penalty's own
            gradient NaN; ``1e-12`` avoids that and changes the norm by less than float32 rounding
            for any gradient larger than about ``1e-5``.

    Example:
        >>> g = np.full((2, 4, 4, 3), 0.5)   # norm = 0.5 * sqrt(48)
        >>> round(float(gradient_penalty_from_gradients(g)), 4)
        6.0718
    """
    gradients = ops.convert_to_tensor(gradients)
    axes = tuple(range(1, len(gradients.shape)))
    norms = ops.sqrt(ops.add(ops.sum(ops.square(gradients), axis=axes), epsilon))
    return ops.mean(ops.square(ops.subtract(norms, 1.0)))


def content_loss(name, **kwargs):
    """The content loss called ``name``: a callable ``(y_true, y_pred) -> scalar``.

    Args:
        name: ``"perceptual"`` (``PerceptualLoss(**kwargs)``), ``"l1"``, ``"mse"``, ``"charbonnier"``
            or ``"l1+fft"`` (:func:`l1_fft_loss`; the trainer logs its two parts, see
            ``DeblurGANTrainer``'s ``fft_weight``).
        **kwargs: passed to ``PerceptualLoss`` (``network``, ``weights``, ``input_scaling``);
            ``"l1+fft"`` takes ``fft_weight``; the other pixel losses take none.
    """
    if name == "perceptual":
        return PerceptualLoss(**kwargs)
    if name == "l1+fft":
        return functools.partial(l1_fft_loss, **kwargs)
    pixel_losses = {"l1": l1_loss, "mse": mse_loss, "charbonnier": charbonnier_loss}
    if name in pixel_losses:
        if kwargs:
            raise DeblurGANError(f"the {name} content loss takes no options, got {sorted(kwargs)}", "name")
        return pixel_losses[name]
    raise DeblurGANError(f"name={name!r}: content loss must be one of {', '.join(CONTENT_LOSSES)}", "name")


# ----------------------------------------------------------------------------- relativistic average GANs
# Scores are the critic's raw outputs (logits, no sigmoid), any shape (a PatchGAN map included); the
# "average" is the mean over the whole batch of the other kind of image. Each loss is the mean of its
# real and its fake term, as in the ESRGAN and DeblurGAN-v2 code (the papers write the plain sum).


def _relativistic(real_scores, fake_scores):
    """``C(x_r) - E[C(x_f)]`` and ``C(x_f) - E[C(x_r)]``."""
    fake_scores = ops.convert_to_tensor(fake_scores)
    real_scores = ops.convert_to_tensor(real_scores, dtype=fake_scores.dtype)
    # the averages of the whole batch, also when each TensorFlow replica holds a share of it
    return real_scores - global_mean(fake_scores), fake_scores - global_mean(real_scores)


def ragan_critic_loss(real_scores, fake_scores):
    """RaGAN critic loss with binary cross-entropy (Jolicoeur-Martineau 2018; ESRGAN).

    ``(BCE(real - mean(fake), 1) + BCE(fake - mean(real), 0)) / 2``, with
    ``BCE(z, 1) = -log sigmoid(z) = softplus(-z)`` and ``BCE(z, 0) = softplus(z)`` (stable for
    large scores).

    Example:
        >>> round(float(ragan_critic_loss(np.array([1.0, 3.0]), np.array([0.0, 1.0]))), 6)
        0.248289
    """
    real_rel, fake_rel = _relativistic(real_scores, fake_scores)
    return (ops.mean(ops.softplus(-real_rel)) + ops.mean(ops.softplus(fake_rel))) / 2.0


def ragan_generator_loss(real_scores, fake_scores):
    """RaGAN generator loss (BCE): the critic's targets swapped,
    ``(BCE(real - mean(fake), 0) + BCE(fake - mean(real), 1)) / 2``; both terms carry gradient
    (the real scores depend on the generator through the fakes' mean)."""
    real_rel, fake_rel = _relativistic(real_scores, fake_scores)
    return (ops.mean(ops.softplus(real_rel)) + ops.mean(ops.softplus(-fake_rel))) / 2.0


def ragan_ls_critic_loss(real_scores, fake_scores):
    """Relativistic average least-squares critic loss (DeblurGAN-v2's RaGAN-LS).

    ``(mean((real - mean(fake) - 1)^2) + mean((fake - mean(real) + 1)^2)) / 2``.

    Example:
        >>> float(ragan_ls_critic_loss(np.array([1.0, 3.0]), np.array([0.0, 1.0])))
        0.875
    """
    real_rel, fake_rel = _relativistic(real_scores, fake_scores)
    return (ops.mean(ops.square(real_rel - 1.0)) + ops.mean(ops.square(fake_rel + 1.0))) / 2.0


def ragan_ls_generator_loss(real_scores, fake_scores):
    """RaGAN-LS generator loss: ``(mean((real - mean(fake) + 1)^2) + mean((fake - mean(real) - 1)^2)) / 2``.

    DeblurGAN-v2's code takes the means over pools of its last 50 batches of scores; these are the
    current batch's.
    """
    real_rel, fake_rel = _relativistic(real_scores, fake_scores)
    return (ops.mean(ops.square(real_rel + 1.0)) + ops.mean(ops.square(fake_rel - 1.0))) / 2.0


# gan mode -> (critic loss, generator loss), both (real_scores, fake_scores) -> scalar
RELATIVISTIC_LOSSES = {
    "ragan": (ragan_critic_loss, ragan_generator_loss),
    "ragan-ls": (ragan_ls_critic_loss, ragan_ls_generator_loss),
}
