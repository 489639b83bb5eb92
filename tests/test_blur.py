import numpy as np
import pytest
from scipy import ndimage

from deblurgan import blur
from deblurgan.errors import DeblurGANError


def _natural_image(height=64, width=96, seed=0):
    """Smooth random shapes plus edges: a stand-in for a photo with structure at many scales."""
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.random((height, width, 3)), sigma=(2, 2, 0))
    image[height // 3 : 2 * height // 3, width // 4 : width // 2] += 0.4
    return np.clip(image, 0, 1).astype(np.float32)


def _laplacian_variance(image):
    return ndimage.laplace(image.mean(axis=-1).astype(np.float64)).var()


@pytest.mark.parametrize("seed", range(5))
def test_trajectory_kernels_are_normalised_and_fit_the_canvas(seed):
    rng = np.random.default_rng(seed)
    path = blur.trajectory(rng)
    assert path.shape == (2000, 2)
    assert path.min() >= 0 and path.max() <= 63
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    np.testing.assert_allclose(steps, 60 / 1999, rtol=1e-9)  # constant speed, 60 px in all
    for kernel in blur.random_psfs(np.random.default_rng(seed)):
        assert kernel.shape == (64, 64) and kernel.dtype == np.float32
        assert kernel.min() >= 0
        assert abs(float(kernel.sum(dtype=np.float64)) - 1) < 1e-6


def test_longer_exposure_spreads_the_kernel():
    psfs = blur.random_psfs(np.random.default_rng(3), exposures=(0.01, 0.1, 0.5, 1.0))
    support = [(k > 1e-6).sum() for k in psfs]
    assert support == sorted(support) and support[0] < support[-1]


def test_random_shakes_use_deblurgans_three_exposures_never_the_near_delta_one():
    """DeblurGAN renders a path at 1/100, 1/10, 1/2 and 1 but blurs at one of the last three
    (part=np.random.choice([1, 2, 3])); 1/100 had made a fifth of the default pairs all but sharp."""
    rng = np.random.default_rng(0)
    drawn = [blur.random_kernel(rng, linear_probability=0.0) for _ in range(60)]
    assert {description for _, description in drawn} == {"shake@0.1", "shake@0.5", "shake@1"}
    from deblurgan.blur_dataset import BlurOptions

    assert BlurOptions().exposures == blur.DEFAULT_EXPOSURES == (0.1, 0.5, 1.0)
    one_hundredth = blur.psf_from_trajectory(blur.trajectory(np.random.default_rng(1)), exposure=0.01)
    assert (one_hundredth > 1e-6).sum() <= 8  # what is left out: a kernel of a few pixels


@pytest.mark.parametrize("length,angle", [(0, 0), (1.5, 10), (9, 0), (20, 45), (31, 125)])
def test_linear_kernel(length, angle):
    kernel = blur.linear_motion_kernel(length, angle)
    assert kernel.min() >= 0 and abs(float(kernel.sum(dtype=np.float64)) - 1) < 1e-6
    assert kernel.shape[0] % 2 == 1
    centre = kernel.shape[0] // 2
    assert blur.kernel_centre(kernel) == (centre, centre)
    if angle == 0:  # a horizontal line: one row, length + 1 pixels wide
        assert set(np.flatnonzero(kernel.sum(axis=1) > 1e-6)) == {centre}


def test_same_seed_same_kernels_and_images_different_seed_differs():
    image = _natural_image()

    def draw(seed):
        rng = np.random.default_rng(seed)
        return blur.random_psfs(rng), blur.random_blur(image, rng, noise_sigma=(0.0, 0.02))

    kernels_a, (blurred_a, kernel_a) = draw(7)
    kernels_b, (blurred_b, kernel_b) = draw(7)
    kernels_c, (blurred_c, _) = draw(8)
    for a, b in zip(kernels_a, kernels_b, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(blurred_a, blurred_b)
    np.testing.assert_array_equal(kernel_a, kernel_b)
    assert not np.array_equal(kernels_a[-1], kernels_c[-1])
    assert not np.array_equal(blurred_a, blurred_c)


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 64, 3), (5, 90, 3), (40, 29)])
def test_constant_image_stays_constant_for_any_size(shape):
    kernel = blur.random_psfs(np.random.default_rng(1))[-1]
    image = np.full(shape, 0.8, np.float32)
    blurred = blur.blur_image(image, kernel)
    assert blurred.shape == shape and blurred.dtype == np.float32
    np.testing.assert_allclose(blurred, 0.8, atol=1e-5)  # borders do not darken


def test_blur_matches_direct_convolution_and_keeps_the_mean():
    image = _natural_image(40, 56)
    kernel = blur.linear_motion_kernel(6, 30)
    blurred = blur.blur_image(image, kernel)
    # Independent reference: direct correlation with the flipped kernel, reflect borders (numpy's
    # "reflect" is scipy's "mirror"); odd linear kernels are centred on their middle pixel.
    reference = np.stack([ndimage.convolve(image[..., c], kernel, mode="mirror") for c in range(3)], axis=-1)
    np.testing.assert_allclose(blurred, reference, atol=1e-5)
    assert abs(blurred.mean() - image.mean()) < 0.01
    np.testing.assert_allclose(blurred.mean(axis=(0, 1)), image.mean(axis=(0, 1)), atol=0.01)


def test_off_centre_delta_kernel_does_not_shift_the_image():
    image = _natural_image(32, 48)
    kernel = np.zeros((9, 9), np.float32)
    kernel[1, 6] = 1.0  # a shifted delta: the centre of mass is the delta itself
    np.testing.assert_allclose(blur.blur_image(image, kernel), image, atol=1e-6)


def test_blur_reduces_laplacian_variance():
    image = _natural_image(96, 128)
    for kernel in [blur.linear_motion_kernel(9, 20), blur.random_psfs(np.random.default_rng(2))[-1]]:
        assert _laplacian_variance(blur.blur_image(image, kernel)) < 0.5 * _laplacian_variance(image)


def test_blur_reduces_laplacian_variance_of_a_photo():
    data = pytest.importorskip("skimage.data")
    photo = data.chelsea().astype(np.float32) / 255.0
    sharpness = _laplacian_variance(photo)
    for seed in range(3):
        blurred, _ = blur.random_blur(photo, np.random.default_rng(seed), exposures=(0.5, 1.0))
        assert _laplacian_variance(blurred) < 0.7 * sharpness
        assert abs(blurred.mean() - photo.mean()) < 2 / 255  # brightness kept, no stretch


def test_noise_and_jpeg():
    image = _natural_image()
    noisy = blur.add_noise(image, np.random.default_rng(0), 0.05)
    assert 0.03 < np.std(noisy - image) < 0.06 and noisy.min() >= 0 and noisy.max() <= 1
    recompressed = blur.jpeg_recompress(image, 30)
    assert recompressed.shape == image.shape and recompressed.dtype == np.float32
    error = np.abs(recompressed - image).mean()
    assert 0 < error < 0.05


def test_bad_arguments():
    with pytest.raises(DeblurGANError, match="exposure"):
        blur.psf_from_trajectory(blur.trajectory(np.random.default_rng(0)), exposure=0)
    with pytest.raises(DeblurGANError, match="fit"):
        blur.trajectory(np.random.default_rng(0), canvas=32, max_length=60)
