"""The shipped default weights (weights/generator.h5): they load, export to .keras alike, and deblur.

The quality bounds sit a little under the figures in weights/README.md, so a broken file, a
loader or inference change that alters the outputs, or weights replaced by worse ones fail here.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import invoke_script
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import deblurgan
from deblurgan.pairing import pair_images

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights" / "generator.h5"

# Mean 8-bit PSNR gain (dB) over the blurred inputs, a little under the measured figures
MIN_PSNR_GAIN = {"test": 0.8, "holdout": 0.35}  # measured +0.87 and +0.44

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generator():
    return deblurgan.load_generator(WEIGHTS)


def _to_8bit(unit):
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.mark.backend  # the shipped file loads on every backend
def test_the_documented_keras_export_is_the_same_network(generator, tmp_path):
    # weights/README.md's command for the untracked weights/generator.keras
    options = ["--format", "keras", "--output", tmp_path / "g.keras"]
    assert invoke_script("export", "--weight_path", WEIGHTS, *options).returncode == 0
    as_keras = deblurgan.load_generator(tmp_path / "g.keras")
    assert generator.count_params() == as_keras.count_params() == 11_378_179
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 96, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(as_keras(x)), keras.ops.convert_to_numpy(generator(x)), atol=1e-6
    )
    # the documented variant: no normalization layers, residual clip output
    kinds = {type(layer).__name__ for layer in generator.layers}
    assert not kinds & {"BatchNormalization", "GroupNormalization", "Dropout"}
    assert generator.get_layer("global_skip").mode == "clip"


# Full-size inference, once (under TensorFlow): test_backends.py shows that the same weights give
# the same outputs on the other backends.
@pytest.mark.parametrize("split", ["test", "holdout"])
def test_default_weights_deblur_the_sample_sets(generator, split):
    pairs = pair_images(REPO / "images" / split)
    assert len(pairs) == 6
    gains, ssim_gains = [], []
    for blurred_path, sharp_path in pairs:
        blurred = deblurgan.read_image(blurred_path).pixels
        sharp8 = _to_8bit(deblurgan.read_image(sharp_path).pixels)
        blurred8, restored8 = (
            _to_8bit(blurred),
            _to_8bit(deblurgan.deblur_array(generator, blurred, precision="fp32")),
        )
        assert restored8.shape == sharp8.shape
        gains.append(
            peak_signal_noise_ratio(sharp8, restored8, data_range=255)
            - peak_signal_noise_ratio(sharp8, blurred8, data_range=255)
        )
        ssim = [
            structural_similarity(
                sharp8, x, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5
            )
            for x in (restored8, blurred8)
        ]
        ssim_gains.append(ssim[0] - ssim[1])
    assert np.mean(gains) >= MIN_PSNR_GAIN[split]
    assert np.mean(ssim_gains) > 0.0
