import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deblurgan.errors import DeblurGANError
from deblurgan.metrics import laplacian_variance, psnr, psnr_ops, ssim, ssim_ops


def _pair(seed=0, shape=(40, 52, 3)):
    rng = np.random.default_rng(seed)
    sharp = ndimage.gaussian_filter(rng.uniform(0, 255, shape), sigma=(2, 2, 0))
    sharp = np.clip(sharp * 3 - 255, 0, 255).astype(np.uint8)  # stretch: real contrast
    noisy = np.clip(sharp + rng.normal(0, 12, shape), 0, 255).astype(np.uint8)
    return sharp, noisy


def _skimage_ssim(a, b):
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=255
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_psnr_matches_skimage(seed):
    sharp, noisy = _pair(seed)
    expected = peak_signal_noise_ratio(sharp, noisy, data_range=255)
    assert psnr(sharp, noisy) == pytest.approx(expected, abs=1e-9)
    # Floats in [0, 1] with data_range=1 give the same number.
    assert psnr(sharp / 255.0, noisy / 255.0, data_range=1.0) == pytest.approx(psnr(sharp, noisy), abs=1e-9)
    assert psnr(sharp, sharp) == float("inf")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_skimage(seed):
    sharp, noisy = _pair(seed)
    assert ssim(sharp, noisy) == pytest.approx(_skimage_ssim(sharp, noisy), abs=1e-6)
    floats = noisy.astype(np.float32) + 0.25
    assert ssim(sharp, floats) == pytest.approx(_skimage_ssim(sharp.astype(np.float64), floats), abs=1e-6)
    assert ssim(sharp, sharp) == pytest.approx(1.0)


def test_ssim_rejects_mismatch_and_tiny_images():
    with pytest.raises(DeblurGANError, match="shape"):
        ssim(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(DeblurGANError, match="11x11"):
        ssim(np.zeros((10, 20, 3), np.uint8), np.zeros((10, 20, 3), np.uint8))


def test_float_images_in_0_1_need_their_data_range():
    """read_image and deblur_array give floats in [0, 1]; the 8-bit default would add 48 dB."""
    rng = np.random.default_rng(0)
    sharp = rng.uniform(0, 1, (16, 16, 3))
    noisy = np.clip(sharp + rng.normal(0, 0.05, sharp.shape), 0, 1)
    for metric in (psnr, ssim):
        with pytest.raises(DeblurGANError, match=r"lie in \[0, 1\] .*; pass data_range=1.0") as error:
            metric(sharp, noisy)
        assert error.value.parameter == "data_range"
    expected = peak_signal_noise_ratio(sharp, noisy, data_range=1.0)
    assert psnr(sharp, noisy, data_range=1.0) == pytest.approx(expected, abs=1e-9)
    assert psnr(sharp * 255, noisy * 255) == pytest.approx(expected, abs=1e-9)  # 8-bit values as floats


def test_laplacian_variance_by_hand_and_ranks_blur():
    # A single bright pixel of value 10 on a 5x5 gray image: the Laplacian on the 3x3 interior is
    # -40 at the centre and 10 at its 4 neighbours, 0 at the corners.
    image = np.zeros((5, 5))
    image[2, 2] = 10
    interior = np.array([0, 10, 0, 10, -40, 10, 0, 10, 0], dtype=np.float64)
    assert laplacian_variance(image) == pytest.approx(interior.var())
    # Constant and linear ramps have no curvature.
    ramp = np.tile(np.arange(16.0), (16, 1))
    assert laplacian_variance(np.stack([ramp] * 3, -1)) == pytest.approx(0.0, abs=1e-9)
    sharp, _ = _pair()
    blurred = ndimage.gaussian_filter(sharp.astype(np.float64), sigma=(1.5, 1.5, 0))
    assert laplacian_variance(sharp) > 2 * laplacian_variance(blurred)


@pytest.mark.backend
def test_ops_metrics_match_numpy():
    batch = [_pair(seed) for seed in range(3)]
    sharp = np.stack([s for s, _ in batch]).astype(np.float32) / 127.5 - 1.0
    noisy = np.stack([n for _, n in batch]).astype(np.float32) / 127.5 - 1.0
    expected_psnr = np.mean([psnr(s, n) for s, n in batch])
    expected_ssim = np.mean([_skimage_ssim(s, n) for s, n in batch])
    assert float(psnr_ops(sharp, noisy)) == pytest.approx(expected_psnr, abs=1e-3)
    assert float(ssim_ops(sharp, noisy)) == pytest.approx(expected_ssim, abs=1e-4)
    assert float(ssim_ops(sharp, sharp)) == pytest.approx(1.0, abs=1e-5)
    assert float(psnr_ops(sharp, sharp)) > 100
