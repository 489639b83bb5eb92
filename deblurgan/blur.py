"""Synthetic motion blur: camera-shake trajectories, point-spread functions and blurring.

Trajectories follow Boracchi & Foi (2012), "Modeling the performance of image restoration from
motion blur", as DeblurGAN used them: a point moves at constant speed for ``n_steps`` steps with
random inertia (a pull back to the start), random gaussian shake and rare abrupt "big shakes";
the part of the path covered during an exposure fraction is splatted bilinearly into a kernel.

Unlike the reference scripts, kernels are non-negative and sum to 1, images are never min-max
stretched (blurring keeps colours and brightness), any height and width works, every random draw
comes from a ``numpy.random.Generator`` that the caller seeds, and blurring uses FFTs with reflect
padding so that borders do not darken.

Example:
    >>> rng = np.random.default_rng(0)
    >>> kernel = psf_from_trajectory(trajectory(rng), exposure=0.5)
    >>> blurred = blur_image(np.full((48, 80, 3), 0.25, np.float32), kernel)
    >>> bool(np.allclose(blurred, 0.25, atol=1e-5))
    True
"""

import io
import logging

import numpy as np
from PIL import Image
from scipy import fft

from deblurgan.errors import DeblurGANError

logger = logging.getLogger(__name__)

# Exposure fractions at which Boracchi & Foi (and DeblurGAN's PSF class) render a trajectory.
PSF_EXPOSURES = (1 / 100, 1 / 10, 1 / 2, 1.0)
# The ones DeblurGAN blurs its training images at: its BlurImage(..., part=np.random.choice([1, 2,
# 3])) takes one of the last three. 1/100 covers about 0.6 px of the path: next to no blur.
DEFAULT_EXPOSURES = PSF_EXPOSURES[1:]
# DeblurGAN draws the trajectory "anxiety" (its ``expl``) from these values.
DEFAULT_ANXIETIES = (0.01, 0.009, 0.008, 0.007, 0.005, 0.003)


def trajectory(
    rng,
    canvas=64,
    n_steps=2000,
    max_length=60,
    anxiety=None,
    inertia=None,
    big_shake_probability=None,
    gaussian_shake=None,
):
    """A random camera-shake path, centred on a ``canvas`` x ``canvas`` grid.

    Args:
        rng: ``numpy.random.Generator``; the only source of randomness.
        canvas: side of the kernel grid in pixels; the path's bounding box is centred on it.
        n_steps: number of positions along the path.
        max_length: length of the path in pixels (the point moves at constant speed).
        anxiety: scale of the random changes of direction; default: one of ``DEFAULT_ANXIETIES``.
        inertia: pull back towards the start (Boracchi & Foi's centripetal term); default U(0, 0.7).
        big_shake_probability: chance of an abrupt turn per step, times ``anxiety``;
            default U(0, 0.2).
        gaussian_shake: gain of the gaussian jitter; default U(0, 10).

    Returns:
        float64 array (n_steps, 2) of (row, column) positions inside [0, canvas - 1].
    """
    if max_length > canvas - 2:
        raise DeblurGANError(f"max_length={max_length}: does not fit a canvas of {canvas} px", "max_length")
    anxiety = rng.choice(DEFAULT_ANXIETIES) if anxiety is None else anxiety
    inertia = 0.7 * rng.random() if inertia is None else inertia
    big_shake_probability = 0.2 * rng.random() if big_shake_probability is None else big_shake_probability
    gaussian_shake = 10.0 * rng.random() if gaussian_shake is None else gaussian_shake

    step = max_length / (n_steps - 1)
    angle = 2 * np.pi * rng.random()
    velocity = np.exp(1j * angle) * step
    # Draw every random number up front (vectorised) in a fixed order, so a seed fixes the path.
    shake_draws = rng.random(n_steps - 1)
    turn_draws = rng.random(n_steps - 1)
    jitter = rng.standard_normal(n_steps - 1) + 1j * rng.standard_normal(n_steps - 1)
    positions = np.zeros(n_steps, dtype=np.complex128)
    for t in range(n_steps - 1):
        if shake_draws[t] < big_shake_probability * anxiety:
            # An abrupt turn: roughly reverse the direction, within +-0.5 rad.
            kick = 2 * velocity * np.exp(1j * (np.pi + turn_draws[t] - 0.5))
        else:
            kick = 0
        velocity = velocity + kick + anxiety * (gaussian_shake * jitter[t] - inertia * positions[t]) * step
        velocity = velocity / abs(velocity) * step  # constant speed
        positions[t + 1] = positions[t] + velocity
    path = np.stack([positions.imag, positions.real], axis=-1)
    # Centre the bounding box on the canvas grid.
    centre_of_box = (path.min(axis=0) + path.max(axis=0)) / 2
    return path - centre_of_box + (canvas - 1) / 2


def _splat(points, weights, shape):
    """Adds ``weights`` at sub-pixel ``points`` (row, col) into a zero grid, bilinearly."""
    grid = np.zeros(shape, dtype=np.float64)
    points = np.clip(points, 0, np.array(shape) - 1)
    top_left = np.minimum(np.floor(points).astype(np.int64), np.array(shape) - 2)
    top_left = np.maximum(top_left, 0)
    frac = points - top_left
    for dr in (0, 1):
        for dc in (0, 1):
            share = (frac[:, 0] if dr else 1 - frac[:, 0]) * (frac[:, 1] if dc else 1 - frac[:, 1])
            np.add.at(grid, (top_left[:, 0] + dr, top_left[:, 1] + dc), weights * share)
    return grid


def _normalise(kernel):
    kernel = np.maximum(kernel, 0.0)
    total = kernel.sum()
    if total <= 0:
        raise ValueError("the kernel is empty")
    return (kernel / total).astype(np.float32)


def psf_from_trajectory(path, canvas=64, exposure=1.0):
    """Renders the first ``exposure`` fraction of ``path`` into a normalised kernel.

    Every position is weighted by the time the point spends there (constant speed: equal time per
    step; the last, partial step gets its fraction), and splatted bilinearly.

    Args:
        path: (n_steps, 2) positions from :func:`trajectory`.
        canvas: kernel side in pixels.
        exposure: fraction of the path's duration in (0, 1].

    Returns:
        float32 (canvas, canvas) kernel, non-negative, summing to 1.
    """
    if not 0 < exposure <= 1:
        raise DeblurGANError(f"exposure={exposure}: must be in (0, 1]", "exposure")
    n_steps = len(path)
    end = exposure * (n_steps - 1)  # time, in steps, at which the shutter closes
    # Resample the path at (at least) two points per step up to the closing time; at constant
    # speed equal times mean equal weights (trapezoid rule for the two ends).
    times = np.linspace(0.0, end, max(2, int(np.ceil(end * 2)) + 1))
    points = np.stack([np.interp(times, np.arange(n_steps), path[:, axis]) for axis in (0, 1)], axis=-1)
    weights = np.ones(len(times))
    weights[[0, -1]] = 0.5
    return _normalise(_splat(points, weights, (canvas, canvas)))


def random_psfs(rng, canvas=64, exposures=PSF_EXPOSURES, **trajectory_options):
    """Kernels of one random trajectory at several exposure fractions (Boracchi & Foi's set).

    Returns:
        list of float32 (canvas, canvas) kernels, one per exposure.
    """
    path = trajectory(rng, canvas=canvas, **trajectory_options)
    return [psf_from_trajectory(path, canvas=canvas, exposure=e) for e in exposures]


def linear_motion_kernel(length, angle, size=None):
    """A straight, uniform motion blur of ``length`` pixels at ``angle`` degrees (counter-clockwise).

    Args:
        length: path length in pixels (0 gives the identity kernel).
        angle: direction in degrees, 0 = horizontal.
        size: odd kernel side; default the smallest odd size that holds the path.

    Returns:
        float32 (size, size) kernel, non-negative, summing to 1, centred on its middle pixel.
    """
    if size is None:
        size = int(np.ceil(length)) + 3
        size += 1 - size % 2
    if length > size - 2:
        raise DeblurGANError(f"length={length}: the motion does not fit a {size} px kernel", "length")
    centre = (size - 1) / 2
    samples = max(2, int(np.ceil(length * 8)) + 1)
    offsets = np.linspace(-length / 2, length / 2, samples)
    theta = np.deg2rad(angle)
    points = np.stack([centre - offsets * np.sin(theta), centre + offsets * np.cos(theta)], axis=-1)
    weights = np.ones(samples)
    weights[[0, -1]] = 0.5
    return _normalise(_splat(points, weights, (size, size)))


def _crop_to_support(kernel, threshold=0.0):
    rows = np.flatnonzero(kernel.max(axis=1) > threshold)
    cols = np.flatnonzero(kernel.max(axis=0) > threshold)
    return kernel[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def kernel_centre(kernel):
    """(row, col) index of the kernel's centre of mass, rounded to the nearest pixel."""
    rows, cols = np.indices(kernel.shape)
    total = kernel.sum()
    return int(np.round((rows * kernel).sum() / total)), int(np.round((cols * kernel).sum() / total))


def blur_image(image01, kernel):
    """Convolves an image with ``kernel`` (FFT, reflect padding), keeping brightness and colours.

    The kernel's centre of mass stays on the output pixel, so the blurred image is not shifted
    against the sharp one (what paired training needs). Borders are reflected, not zero-padded.

    Args:
        image01: float array (height, width) or (height, width, channels) in [0, 1].
        kernel: 2-D non-negative kernel; it is normalised to sum 1.

    Returns:
        float32 array of the input's shape, clipped to [0, 1].
    """
    image = np.asarray(image01, dtype=np.float32)
    kernel = _normalise(np.asarray(kernel, dtype=np.float64))
    kernel = _crop_to_support(kernel)
    centre_row, centre_col = kernel_centre(kernel)
    height, width = kernel.shape
    # With 'valid' convolution, output[i] = sum_k kernel[k] * padded[i + size - 1 - k]; padding
    # (size - 1 - centre) before and (centre) after maps kernel[centre] onto image[i].
    pad = [(height - 1 - centre_row, centre_row), (width - 1 - centre_col, centre_col)]
    squeeze = image.ndim == 2
    if squeeze:
        image = image[..., None]
    padded = np.pad(image, pad + [(0, 0)], mode="reflect")
    blurred = np.clip(_fft_convolve_valid(padded, kernel.astype(np.float32)), 0.0, 1.0)
    return blurred[..., 0] if squeeze else blurred


def _fft_convolve_valid(padded, kernel):
    """'valid' 2-D convolution of every channel of ``padded`` (h, w, c) with ``kernel``, in float32.

    Channels-first real FFTs of a fast length: about twice as fast as ``scipy.signal.fftconvolve``
    on a 1280x720 RGB image.
    """
    channels = np.ascontiguousarray(np.moveaxis(padded, -1, 0))
    height, width = channels.shape[1:]
    kernel_h, kernel_w = kernel.shape
    shape = (fft.next_fast_len(height, real=True), fft.next_fast_len(width, real=True))
    spectrum = fft.rfft2(channels, s=shape) * fft.rfft2(kernel, s=shape)
    full = fft.irfft2(spectrum, s=shape)
    return np.moveaxis(full[:, kernel_h - 1 : height, kernel_w - 1 : width], 0, -1).astype(np.float32)


def add_noise(image01, rng, sigma):
    """Adds gaussian sensor noise of standard deviation ``sigma`` (in [0, 1] units), clipped."""
    noise = rng.standard_normal(np.shape(image01)).astype(np.float32) * np.float32(sigma)
    return np.clip(np.asarray(image01, dtype=np.float32) + noise, 0.0, 1.0)


def jpeg_recompress(image01, quality):
    """Encodes the image as JPEG at ``quality`` (1-95) in memory and decodes it back, in [0, 1]."""
    image = np.asarray(image01, dtype=np.float32)
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded, dtype=np.float32) / 255.0


def random_kernel(
    rng, canvas=64, exposures=DEFAULT_EXPOSURES, linear_probability=0.25, linear_length=(3, 25)
):
    """One random blur kernel: a camera-shake PSF at a random exposure, or a linear motion.

    Args:
        rng: ``numpy.random.Generator``.
        canvas: trajectory kernel side.
        exposures: exposure fractions to choose from, uniformly (DeblurGAN's 1/10, 1/2 and 1).
        linear_probability: chance of a straight motion instead of a shake.
        linear_length: (min, max) length in pixels of straight motions.

    Returns:
        (kernel, description) where description is a short string such as ``"shake@0.5"``.
    """
    if rng.random() < linear_probability:
        length = rng.uniform(*linear_length)
        angle = rng.uniform(0, 180)
        return linear_motion_kernel(length, angle), f"linear {length:.1f}px {angle:.0f}deg"
    exposure = float(exposures[rng.integers(len(exposures))])
    path = trajectory(rng, canvas=canvas)
    return psf_from_trajectory(path, canvas=canvas, exposure=exposure), f"shake@{exposure:g}"


def random_blur(image01, rng, noise_sigma=(0.0, 0.0), jpeg_quality=None, **kernel_options):
    """Blurs an image with a random kernel from :func:`random_kernel`, then optional noise and JPEG.

    Args:
        image01: float (height, width, 3) in [0, 1].
        rng: ``numpy.random.Generator``.
        noise_sigma: (min, max) standard deviation of gaussian noise; (0, 0) adds none.
        jpeg_quality: None, or (min, max) JPEG quality for re-compression.
        **kernel_options: passed to :func:`random_kernel`.

    Returns:
        (blurred float32 image in [0, 1], float32 kernel).
    """
    kernel, _ = random_kernel(rng, **kernel_options)
    blurred = blur_image(image01, kernel)
    if noise_sigma[1] > 0:
        blurred = add_noise(blurred, rng, rng.uniform(*noise_sigma))
    if jpeg_quality is not None:
        blurred = jpeg_recompress(blurred, rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
    return blurred, kernel
