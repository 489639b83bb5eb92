"""Image quality metrics: PSNR, SSIM, the variance of the Laplacian (a no-reference sharpness score), FID.

Two families with the same definitions:

* NumPy functions (:func:`psnr`, :func:`ssim`, :func:`laplacian_variance`) for evaluation on
  whole ``(height, width, 3)`` images, uint8 or float in ``[0, data_range]``.
* ``keras.ops`` functions (:func:`psnr_ops`, :func:`ssim_ops`) for batches in the networks'
  ``[-1, 1]`` range, usable as validation metrics during training on any backend.

SSIM follows Wang et al. (2004) as scikit-image computes it with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: an 11x11 Gaussian window
(sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, the SSIM map averaged over the pixels
whose window lies inside the image, then over the channels.
"""

import warnings

import numpy as np
from keras import ops
from scipy import linalg, ndimage

from deblurgan.errors import DeblurGANError
from deblurgan.io import to_uint8

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5: the 11x11 window of Wang et al.
SSIM_MIN_SIDE = 2 * SSIM_RADIUS + 1
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# The 3x3 Laplacian (4-neighbour), the kernel of cv2.Laplacian(ksize=1) used by Pech-Pacheco et al.
LAPLACIAN_KERNEL = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
# ITU-R BT.601 luma, as Pillow's convert("L").
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def _pair(reference, restored, data_range):
    """Both images as float64, and the data range: ``None`` is 8-bit values (255), refused for two
    float images within [0, 1], which read_image and deblur_array return and which would score
    48 dB too high."""
    reference, restored = np.asarray(reference), np.asarray(restored)
    if reference.shape != restored.shape:
        raise DeblurGANError(f"images differ in shape: {reference.shape} vs {restored.shape}")
    if data_range is None:
        floats = reference.dtype.kind == restored.dtype.kind == "f"
        if floats and reference.size and max(reference.max(), restored.max()) <= 1.0:
            raise DeblurGANError(
                "data_range=None: these float images lie in [0, 1] but the default range is 8-bit "
                "(255); pass data_range=1.0 (or use metrics.score_8bit)",
                parameter="data_range",
            )
        data_range = 255.0
    return reference.astype(np.float64), restored.astype(np.float64), float(data_range)


def psnr(reference, restored, data_range=None):
    """Peak signal-to-noise ratio in dB over the whole image and all channels.

    Args:
        reference: the sharp image, ``(height, width, channels)``, uint8 or float in
            ``[0, data_range]``.
        restored: the image to score, same shape and range.
        data_range: the largest possible pixel value minus the smallest; None: 255 (8-bit
            values), and an error for float images within [0, 1] (pass 1.0 for those).

    Returns:
        float; ``inf`` for identical images.

    Example:
        >>> a = np.zeros((4, 4, 3)); b = a + 2.0
        >>> round(psnr(a, b), 2)
        42.11
    """
    reference, restored, data_range = _pair(reference, restored, data_range)
    mse = np.mean((reference - restored) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(reference, restored, data_range=None):
    """Structural similarity, equal to scikit-image's Gaussian-window SSIM (see the module doc).

    Args:
        reference: ``(height, width)`` or ``(height, width, channels)``, at least 11x11,
            uint8 or float in ``[0, data_range]``.
        restored: the image to score, same shape and range.
        data_range: as :func:`psnr`'s.

    Returns:
        float in [-1, 1]; 1 for identical images.
    """
    reference, restored, data_range = _pair(reference, restored, data_range)
    if reference.ndim == 2:
        reference, restored = reference[..., None], restored[..., None]
    height, width = reference.shape[:2]
    if min(height, width) < SSIM_MIN_SIDE:
        raise DeblurGANError(f"SSIM needs images of at least 11x11 pixels, got {height}x{width}")
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    scores = []
    for channel in range(reference.shape[-1]):
        x, y = reference[..., channel], restored[..., channel]
        mu_x, mu_y = _gaussian(x), _gaussian(y)
        var_x = _gaussian(x * x) - mu_x * mu_x
        var_y = _gaussian(y * y) - mu_y * mu_y
        cov = _gaussian(x * y) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        )
        r = SSIM_RADIUS
        scores.append(ssim_map[r:-r, r:-r].mean())
    return float(np.mean(scores))


PSNR_CAP = 100.0  # identical images have infinite PSNR; JSON, logs and means need a finite number


def check_scorable(path, image):
    """Raises, naming ``path``, if ``image`` is too small for SSIM's window (11x11)."""
    height, width = image.shape[:2]
    if min(height, width) < SSIM_MIN_SIDE:
        raise DeblurGANError(
            f"{path} is {width}x{height}: too small to score (SSIM needs at least 11x11 pixels)"
        )


def psnr_8bit(sharp01, image01):
    """PSNR in dB of two [0, 1] images as they are saved (rounded to 8 bits), capped at ``PSNR_CAP``."""
    return min(psnr(to_uint8(sharp01), to_uint8(image01)), PSNR_CAP)


def score_8bit(sharp01, image01):
    """The project's one score of an image against its sharp reference: ``{"psnr", "ssim"}``.

    Both images are [0, 1] floats rounded to 8 bits first, as they would be saved, so evaluation
    (``scripts/test.py``), training's validation and the blur dataset's PSNR agree to the last digit.
    """
    return {"psnr": psnr_8bit(sharp01, image01), "ssim": ssim(to_uint8(sharp01), to_uint8(image01))}


def _gaussian(image):
    return ndimage.gaussian_filter(image, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")


def laplacian_variance(image):
    """Sharpness without a reference: the variance of the Laplacian of the luminance.

    Higher is sharper (Pech-Pacheco et al., 2000). The image is converted to luminance (BT.601),
    kept on its own scale (so compare images of the same range, e.g. uint8 0..255), filtered with
    the 3x3 Laplacian, and the variance is taken over the interior (border pixels, whose value
    would depend on a padding convention, are left out).

    Args:
        image: ``(height, width)`` or ``(height, width, 3)``, at least 3x3.

    Returns:
        float >= 0; 0 for a constant (or linear-ramp) image.
    """
    image = np.asarray(image, dtype=np.float64)
    gray = image @ LUMA_WEIGHTS if image.ndim == 3 else image
    if min(gray.shape) < 3:
        raise DeblurGANError(f"laplacian_variance needs at least 3x3 pixels, got {gray.shape}")
    laplacian = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    return float(laplacian.var())


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """The Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2), the core of FID.

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 @ sigma2))``, computed in float64
    with ``scipy.linalg.sqrtm`` as the reference implementations (TTUR, pytorch-fid) do:

    - when the square root is not finite (a singular product, e.g. fewer samples than features),
      it is recomputed with ``eps * I`` added to both covariances;
    - round-off can leave tiny imaginary parts: they are dropped when every diagonal imaginary part
      is within 1e-3 of 0, and a ValueError is raised otherwise.

    Args:
        mu1, mu2: mean feature vectors, shape ``(d,)``.
        sigma1, sigma2: covariance matrices, shape ``(d, d)``.
        eps: the diagonal offset used only when the first square root is not finite.

    Returns:
        float >= 0 (up to round-off); 0 for identical Gaussians.

    Example:
        >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 6)
        4.0
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise DeblurGANError(
            f"mu1, mu2: mean vectors must be 1-D of one length, got {mu1.shape} and {mu2.shape}", "mu1"
        )
    if sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise DeblurGANError(
            f"sigma1, sigma2: covariances must be {mu1.shape * 2} like the means, got {sigma1.shape} and "
            f"{sigma2.shape}",
            "sigma1",
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a singular product is handled below, as disp=False did
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest = np.max(np.abs(np.diagonal(covmean).imag))
        if largest > 1e-3:
            raise DeblurGANError(
                f"sigma1, sigma2: sqrtm(sigma1 @ sigma2) has imaginary parts up to {largest:.3g}: the "
                "covariances are not valid (symmetric positive semi-definite) or badly conditioned",
                "sigma1",
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(images_a, images_b, feature_extractor=None, batch_size=16, progress=False):
    """Frechet Inception Distance between two sets of images (lower: more alike).

    Args:
        images_a, images_b: sequences (at least 2 each) of ``(height, width, 3)`` images, uint8 or
            float in [0, 1]; sizes may differ.
        feature_extractor: a Keras model mapping a batch in [-1, 1] to features ``(batch, d)``
            (a fixed input size means images are resized to it); ``None`` builds
            :func:`deblurgan.fid.inception_feature_extractor` with ImageNet weights.
        batch_size: images per forward pass.

    See :mod:`deblurgan.fid` for how features are taken and how to provide weights offline.
    """
    from deblurgan import fid as fid_module  # keras.applications is imported only when needed

    return fid_module.fid(images_a, images_b, feature_extractor, batch_size=batch_size, progress=progress)


# ----------------------------------------------------------------------------- keras.ops versions


def _to_pixels(batch):
    """[-1, 1] -> [0, 255], float32."""
    return (ops.cast(batch, "float32") + 1.0) * 127.5


def psnr_ops(y_true, y_pred):
    """PSNR (dB, 8-bit data range) of each image in a ``[-1, 1]`` batch, averaged over the batch.

    Matches :func:`psnr` on the images mapped to ``[0, 255]`` (without rounding). Identical images
    give a large finite value (the mean squared error is floored at 1e-10).

    Args:
        y_true: sharp images, ``(batch, height, width, channels)`` in ``[-1, 1]``.
        y_pred: generator outputs, same shape.
    """
    y_true, y_pred = _to_pixels(y_true), _to_pixels(y_pred)
    mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
    mse = ops.maximum(mse, 1e-10)
    per_image = 10.0 * ops.log(255.0**2 / mse) / np.log(10.0)
    return ops.mean(per_image)


def _gaussian_window(channels):
    """The normalised 11x11 Gaussian as a depthwise kernel ``(11, 11, channels, 1)``."""
    offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    g /= g.sum()
    window = np.outer(g, g)[:, :, None, None]
    return np.tile(window, (1, 1, channels, 1)).astype(np.float32)


def ssim_ops(y_true, y_pred):
    """SSIM of each image in a ``[-1, 1]`` batch (8-bit data range), averaged over the batch.

    Same definition as :func:`ssim`: a "valid" depthwise convolution with the 11x11 Gaussian
    computes the statistics exactly on the pixels :func:`ssim` averages over.

    Args:
        y_true: sharp images, ``(batch, height, width, channels)`` in ``[-1, 1]``, at least 11x11.
        y_pred: generator outputs, same shape.
    """
    x, y = _to_pixels(y_true), _to_pixels(y_pred)
    window = ops.convert_to_tensor(_gaussian_window(x.shape[-1]))

    def blur(t):
        return ops.depthwise_conv(t, window, strides=1, padding="valid")

    c1 = (SSIM_K1 * 255.0) ** 2
    c2 = (SSIM_K2 * 255.0) ** 2
    mu_x, mu_y = blur(x), blur(y)
    # (Co)variances are shift-invariant; centring on 127.5 keeps E[x^2] - E[x]^2 from losing
    # float32 digits to cancellation.
    xc, yc = x - 127.5, y - 127.5
    mu_xc, mu_yc = mu_x - 127.5, mu_y - 127.5
    var_x = blur(xc * xc) - mu_xc * mu_xc
    var_y = blur(yc * yc) - mu_yc * mu_yc
    cov = blur(xc * yc) - mu_xc * mu_yc
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ops.mean(ops.mean(ssim_map, axis=(1, 2, 3)))
