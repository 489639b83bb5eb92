"""Tests for deblurgan.multiscale_model (Nah et al.'s DeepDeblur generator): structure, pyramid, loss,
saving, and deblurring with the finest output."""

import json

import keras
import numpy as np
import pytest
from scipy import ndimage

import deblurgan
from deblurgan import multiscale_model
from deblurgan.errors import DeblurGANError
from deblurgan.inference import deblur_array, receptive_field_radius
from deblurgan.model import multiscale_generator_model
from tests.conftest import randomize_weights

RNG = np.random.default_rng(0)


def tiny(seed=0, **options):
    options = {"n_blocks": 1, "n_filters": 8, **options}
    return randomize_weights(multiscale_generator_model(**options), seed=seed)


def np_(x):
    return keras.ops.convert_to_numpy(x)


def inbound(model, layer_name):
    """The names of the layers feeding ``layer_name``, read from the saved config."""
    entry = next(e for e in model.get_config()["layers"] if e["name"] == layer_name)
    text = json.dumps(entry["inbound_nodes"])
    return sorted(layer.name for layer in model.layers if f'"{layer.name}"' in text)


@pytest.mark.backend
def test_outputs_every_scale_finest_first_with_coarse_to_fine_links():
    g = tiny(n_scales=3)
    outputs = g(RNG.uniform(-1, 1, (2, 32, 48, 3)).astype("float32"))
    assert [tuple(o.shape) for o in outputs] == [(2, 32, 48, 3), (2, 16, 24, 3), (2, 8, 12, 3)]
    assert inbound(g, "scale_1_concat") == ["blurred", "scale_1_upconv"]
    assert inbound(g, "scale_1_upconv") == ["scale_2_output"]
    assert inbound(g, "scale_2_concat") == ["pyramid_2", "scale_2_upconv"]
    assert inbound(g, "scale_3_head_conv") == ["pyramid_3"]  # the coarsest scale sees only its level
    kinds = {type(layer).__name__ for layer in g.layers}
    assert not kinds & {"BatchNormalization", "GroupNormalization", "LayerNormalization"}
    convs = [layer for layer in g.layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) == 3 * (2 + 2 * 1) and all(c.kernel_size == (5, 5) for c in convs)


@pytest.mark.backend
def test_residual_block_is_conv_relu_conv_plus_input_without_relu_after_the_add():
    g = tiny(n_scales=1)
    conv2 = g.get_layer("scale_1_res_block_1_conv2")
    conv2.set_weights([np.zeros_like(w) for w in conv2.get_weights()])
    probe = keras.Model(
        g.input, [g.get_layer("scale_1_head_conv").output, g.get_layer("scale_1_res_block_1_add").output]
    )
    head, block = probe(RNG.uniform(-1, 1, (1, 16, 16, 3)).astype("float32"))
    assert np_(head).min() < 0  # a ReLU after the add would have clipped these
    np.testing.assert_allclose(np_(block), np_(head), atol=1e-6)


@pytest.mark.backend
def test_pyramid_level_is_the_binomial_blur_with_mirror_borders_then_every_second_pixel():
    image = RNG.uniform(-1, 1, (1, 20, 14, 3)).astype("float32")
    kernel = np.array([1, 4, 6, 4, 1]) / 16
    expected = ndimage.convolve1d(
        ndimage.convolve1d(image, kernel, axis=1, mode="mirror"), kernel, axis=2, mode="mirror"
    )
    levels = multiscale_model.gaussian_pyramid(image, 3)
    np.testing.assert_allclose(np_(levels[1]), expected[:, ::2, ::2], atol=1e-6)
    assert tuple(levels[2].shape) == (1, 5, 4, 3)
    constant = np.full((1, 8, 8, 3), 0.25, "float32")
    np.testing.assert_allclose(np_(multiscale_model.GaussianDownsample2D()(constant)), 0.25, atol=1e-7)


@pytest.mark.backend
def test_multiscale_content_loss_is_the_mean_over_scales_of_the_loss_to_the_sharp_pyramid():
    sharp = RNG.uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    targets = [np_(t) for t in multiscale_model.gaussian_pyramid(sharp, 3)]
    outputs = [t + offset for t, offset in zip(targets, (0.1, 0.2, 0.5), strict=True)]
    # MSE per scale: 0.01, 0.04, 0.25 -> mean 0.1; L1: 0.1, 0.2, 0.5 -> 0.8 / 3
    assert float(multiscale_model.multiscale_content_loss(sharp, outputs)) == pytest.approx(0.1, rel=1e-5)
    assert float(multiscale_model.multiscale_content_loss(sharp, outputs, "l1")) == pytest.approx(
        0.8 / 3, rel=1e-5
    )
    assert float(multiscale_model.multiscale_content_loss(sharp, sharp + 0.5)) == pytest.approx(0.25)


def test_saved_as_h5_and_loaded_by_load_generator(tmp_path):
    g = tiny(seed=3)
    path = deblurgan.save_model(g, tmp_path / "multiscale.h5")
    x = RNG.uniform(-1, 1, (1, 24, 24, 3)).astype("float32")
    for loaded in (deblurgan.load_generator(path), keras.models.load_model(path)):
        for got, want in zip(loaded(x), g(x), strict=True):
            np.testing.assert_allclose(np_(got), np_(want), atol=1e-6)
    with pytest.raises(deblurgan.DeblurGANError, match="this is a generator file, not a critic"):
        deblurgan.load_critic(path)


def test_deblurring_uses_the_finest_output_and_tiles_exactly():
    g = tiny(seed=4)
    photo = RNG.uniform(0, 1, (250, 262, 3)).astype("float32")
    single = deblur_array(g, photo, precision="fp32")  # not "auto": bf16 on CPUs that have it
    padded = np.pad(photo, ((0, 2), (0, 2), (0, 0)), mode="reflect") * 2 - 1
    finest = np_(g(padded[None])[0])[0, :250, :262]
    np.testing.assert_allclose(single, np.clip((finest + 1) / 2, 0, 1), atol=1e-5)
    radius = receptive_field_radius(g)
    assert radius == 77
    tiled = deblur_array(g, photo, tile_size=2 * 80 + 40, overlap=radius, batch_size=8, precision="fp32")
    assert np.abs(tiled - single).max() < 1e-4


@pytest.mark.slow
def test_full_size_parameter_count_matches_the_papers_layer_structure():
    """3 scales of 5x5 convolutions: first conv (3 or 6 channels in), 19 blocks of two 64-to-64
    convs, a conv to RGB; two 3-to-3 up-convolutions (see the module doc): 11,719,953."""
    per_block_conv = 5 * 5 * 64 * 64 + 64
    tail = 5 * 5 * 64 * 3 + 3
    coarsest = 5 * 5 * 3 * 64 + 64 + 38 * per_block_conv + tail
    finer = 5 * 5 * 6 * 64 + 64 + 38 * per_block_conv + tail
    expected = coarsest + 2 * finer + 2 * (5 * 5 * 3 * 3 + 3)
    g = multiscale_generator_model()
    assert g.count_params() == expected == 11_719_953
    assert sum(type(layer).__name__ == "Conv2D" for layer in g.layers) == 3 * 40


def test_kernels_start_as_torch_does_and_a_fresh_paper_network_keeps_the_signal_in_range():
    """DeepDeblur's init (Torch's default): kernels uniform in +-1/sqrt(fan_in), standard deviation
    1/sqrt(3 fan_in). Glorot's, larger here, grew the finest output of a fresh network to std ~40."""
    keras.utils.set_random_seed(0)
    g = multiscale_generator_model()
    for name, fan_in in (("scale_1_res_block_1_conv1", 5 * 5 * 64), ("scale_2_head_conv", 5 * 5 * 6)):
        kernel = keras.ops.convert_to_numpy(g.get_layer(name).kernel)
        assert np.abs(kernel).max() <= 1 / np.sqrt(fan_in)
        assert np.std(kernel) == pytest.approx(1 / np.sqrt(3 * fan_in), rel=0.05)
    first, second = (g.get_layer(f"scale_1_res_block_{i}_conv1").kernel for i in (1, 2))
    assert not np.allclose(keras.ops.convert_to_numpy(first), keras.ops.convert_to_numpy(second))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    finest = keras.ops.convert_to_numpy(g(x)[0])
    assert 0.01 < finest.std() < 1.0


def test_an_even_kernel_size_is_refused():
    """Keras' "same" padding of an even kernel is lopsided: each convolution would shift the image."""
    with pytest.raises(DeblurGANError, match="kernel_size=4: use an odd size"):
        multiscale_generator_model(n_blocks=1, n_filters=4, kernel_size=4)
