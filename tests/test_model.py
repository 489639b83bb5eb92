"""The networks: sizes, layer order against the Sicara port, shapes, ranges and options."""

import keras
import numpy as np
import pytest

from deblurgan.errors import DeblurGANError
from deblurgan.model import (
    discriminator_model,
    generator_containing_discriminator_multiple_outputs,
    generator_model,
    patchgan_critic_model,
)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def _signature(layer):
    """(class name, the config values that define the layer) for comparing layer sequences."""
    config = layer.get_config()
    kind = type(layer).__name__
    keys = {
        "ReflectionPadding2D": ("padding",),
        "Conv2D": ("filters", "kernel_size", "strides", "padding"),
        "Conv2DTranspose": ("filters", "kernel_size", "strides", "padding"),
        "Activation": ("activation",),
        "Dropout": ("rate",),
        "UpSampling2D": ("size", "interpolation"),
        "GlobalSkip": ("mode",),
        "GroupNormalization": ("groups",),
        "LeakyReLU": ("negative_slope",),
        "Dense": ("units", "activation"),
    }.get(kind, ())
    return (kind, *(tuple(v) if isinstance(v, list) else v for v in (config[k] for k in keys)))


def _sicara_generator_spec(nf=64, n_blocks=9):
    """The Sicara port's generator, written out layer by layer from its model.py."""
    spec = [
        ("InputLayer",),
        ("ReflectionPadding2D", (3, 3)),
        ("Conv2D", nf, (7, 7), (1, 1), "valid"),
        ("BatchNormalization",),
        ("Activation", "relu"),
    ]
    for filters in (2 * nf, 4 * nf):
        spec += [("Conv2D", filters, (3, 3), (2, 2), "same"), ("BatchNormalization",), ("Activation", "relu")]
    block = [
        ("ReflectionPadding2D", (1, 1)),
        ("Conv2D", 4 * nf, (3, 3), (1, 1), "valid"),
        ("BatchNormalization",),
        ("Activation", "relu"),
        ("Dropout", 0.5),
        ("ReflectionPadding2D", (1, 1)),
        ("Conv2D", 4 * nf, (3, 3), (1, 1), "valid"),
        ("BatchNormalization",),
        ("Add",),
    ]
    spec += block * n_blocks
    for filters in (2 * nf, nf):
        spec += [
            ("UpSampling2D", (2, 2), "nearest"),
            ("Conv2D", filters, (3, 3), (1, 1), "same"),
            ("BatchNormalization",),
            ("Activation", "relu"),
        ]
    spec += [
        ("ReflectionPadding2D", (3, 3)),
        ("Conv2D", 3, (7, 7), (1, 1), "valid"),
        ("Activation", "tanh"),
        ("GlobalSkip", "average"),
    ]
    return spec


@pytest.mark.slow
def test_full_size_parameter_counts_match_sicara():
    assert generator_model().count_params() == 11_399_171
    assert discriminator_model().count_params() == 3_098_370


@pytest.mark.slow
def test_generator_layer_order_matches_sicara():
    g = generator_model()
    assert [_signature(layer) for layer in g.layers] == _sicara_generator_spec()


@pytest.mark.backend
def test_generator_skips_are_wired_to_the_right_tensors():
    g = generator_model(n_filters=8, n_blocks=3)
    adds = [layer for layer in g.layers if type(layer).__name__ == "Add"]
    assert len(adds) == 3
    # Each residual block adds its own input (the previous block's output) to its branch.
    assert adds[0].input[0] is g.get_layer("down_2_relu").output
    for previous, add in zip(adds, adds[1:], strict=False):
        assert add.input[0] is previous.output
    for i, add in enumerate(adds, start=1):
        assert add.input[1] is g.get_layer(f"res_block_{i}_norm2").output
    skip = g.get_layer("global_skip")
    assert skip.input[0] is g.inputs[0]
    assert skip.input[1] is g.get_layer("tail_tanh").output


@pytest.mark.backend
def test_a_size_not_divisible_by_4_names_the_rule_and_deblur_array():
    """g.predict on a 1000x750 photo (as Sicara's scripts ran the network) gave the backend's
    shape error in GlobalSkip (750 vs 752)."""
    g = generator_model(n_filters=4, n_blocks=1)
    with pytest.raises(
        DeblurGANError, match="a 42x30 input: the generator takes heights and widths divisible by 4"
    ):
        g(_inputs((1, 30, 42, 3)))
    assert tuple(g(_inputs((1, 32, 44, 3))).shape) == (1, 32, 44, 3)


@pytest.mark.backend
@pytest.mark.parametrize("output_mode", ["average", "clip"])
def test_generator_output_shape_and_range(output_mode, randomize_weights):
    g = randomize_weights(generator_model(n_filters=8, n_blocks=1, output_mode=output_mode), seed=1)
    x = _inputs((2, 36, 124, 3))
    x[0, :4] = 1.0  # the extremes of the input range too
    x[1, :4] = -1.0
    tanh = keras.Model(g.input, g.get_layer("tail_tanh").output)

    out = _numpy(g(x, training=False))
    residual = _numpy(tanh(x, training=False))

    assert out.shape == x.shape
    assert out.min() >= -1.0 and out.max() <= 1.0
    expected = (x + residual) / 2 if output_mode == "average" else np.clip(x + residual, -1, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    if output_mode == "clip":  # the random residual does push some pixels past the range
        assert np.any(np.abs(x + residual) > 1.0)


@pytest.mark.backend
def test_generator_accepts_a_fixed_input_shape():
    g = generator_model(input_shape=(36, 124, 3), n_filters=4, n_blocks=1)
    assert g.output_shape == (None, 36, 124, 3)


@pytest.mark.backend
def test_paper_preset_changes_the_documented_layers():
    sicara = generator_model(n_filters=8, n_blocks=1)
    paper = generator_model(n_filters=8, n_blocks=1, preset="paper")

    kinds = [type(layer).__name__ for layer in paper.layers]
    assert "BatchNormalization" not in kinds and "UpSampling2D" not in kinds
    norms = [layer for layer in paper.layers if type(layer).__name__ == "GroupNormalization"]
    assert len(norms) == 3 + 2 + 2  # head, two downsamplings, two per block, two upsamplings
    assert all(layer.groups == layer.input.shape[-1] for layer in norms)  # instance norm
    for name, filters in (("up_1_conv", 16), ("up_2_conv", 8)):
        assert _signature(paper.get_layer(name)) == ("Conv2DTranspose", filters, (3, 3), (2, 2), "same")
    assert paper.get_layer("global_skip").mode == "clip"
    assert paper.get_layer("res_block_1_dropout").rate == 0.5
    explicit = generator_model(n_filters=8, n_blocks=1, preset="sicara")
    assert [_signature(layer) for layer in explicit.layers] == [_signature(layer) for layer in sicara.layers]
    x = _inputs((1, 32, 32, 3))
    assert paper(x).shape == (1, 32, 32, 3)


@pytest.mark.backend
def test_generator_options_one_at_a_time():
    g = generator_model(n_filters=8, n_blocks=2, norm="instance", dropout_rate=0)
    kinds = [type(layer).__name__ for layer in g.layers]
    assert "Dropout" not in kinds and "BatchNormalization" not in kinds
    assert "UpSampling2D" in kinds and g.get_layer("global_skip").mode == "average"
    transpose = generator_model(n_filters=8, n_blocks=1, upsampling="transpose")
    assert type(transpose.get_layer("up_1_conv")).__name__ == "Conv2DTranspose"
    assert transpose.get_layer("up_1_conv").strides == (2, 2)


@pytest.mark.backend
def test_generator_without_normalization(tmp_path):
    batch = generator_model(n_filters=8, n_blocks=2, dropout_rate=0)
    plain = generator_model(n_filters=8, n_blocks=2, dropout_rate=0, norm="none")
    assert [layer.name for layer in plain.layers] == [layer.name for layer in batch.layers]
    kinds = {type(layer).__name__ for layer in plain.layers}
    assert not kinds & {"BatchNormalization", "GroupNormalization"}
    assert plain.count_params() < batch.count_params()
    # no statistics: one image's output does not depend on the others in the batch, in training
    # mode too, so tiling and batching cannot change results
    x = _inputs((2, 32, 32, 3))
    alone = keras.ops.convert_to_numpy(plain(x[:1], training=True))
    together = keras.ops.convert_to_numpy(plain(x, training=True))
    np.testing.assert_allclose(together[:1], alone, atol=1e-6)
    path = str(tmp_path / "plain.h5")
    plain.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(plain(x)))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"preset": "pix2pix"}, "preset"),
        ({"norm": "layer"}, "norm"),
        ({"output_mode": "sum"}, "mode"),
    ],
)
def test_generator_rejects_unknown_options(kwargs, word):
    with pytest.raises(DeblurGANError, match=word):
        generator_model(n_filters=4, n_blocks=1, **kwargs)


def _conv_signatures(model):
    return [_signature(layer) for layer in model.layers if type(layer).__name__ == "Conv2D"]


@pytest.mark.slow
def test_sicara_critic_layers():
    d = discriminator_model()
    filters = [layer.filters for layer in d.layers if type(layer).__name__ == "Conv2D"]
    strides = [layer.strides for layer in d.layers if type(layer).__name__ == "Conv2D"]
    assert filters == [64, 64, 128, 256, 512, 1]
    assert strides == [(2, 2)] * 4 + [(1, 1)] * 2
    assert [_signature(layer) for layer in d.layers if type(layer).__name__ == "Dense"] == [
        ("Dense", 1024, "tanh"),
        ("Dense", 1, "sigmoid"),
    ]
    assert d.input_shape == (None, 256, 256, 3) and d.output_shape == (None, 1)


@pytest.mark.backend
def test_sicara_critic_scores_in_unit_interval(randomize_weights):
    d = randomize_weights(discriminator_model(input_shape=(32, 32, 3), n_filters=4), seed=2)
    score = _numpy(d(_inputs((3, 32, 32, 3)), training=False))
    assert score.shape == (3, 1)
    assert np.all((score > 0) & (score < 1))


def _receptive_field(model):
    size = 1
    for layer in reversed(model.layers):
        if type(layer).__name__ == "Conv2D":
            size = size * layer.strides[0] + layer.kernel_size[0] - layer.strides[0]
    return size


@pytest.mark.backend
def test_patchgan_is_fully_convolutional_without_sigmoid(randomize_weights):
    c = randomize_weights(patchgan_critic_model(n_filters=8), seed=3)
    kinds = {type(layer).__name__ for layer in c.layers}
    assert not kinds & {"Dense", "Flatten", "BatchNormalization"}
    assert all(layer.get_config().get("activation") in (None, "linear") for layer in c.layers)

    scores = _numpy(c(_inputs((2, 64, 64, 3)) * 3))
    assert scores.shape == (2, 4, 4, 1)
    assert scores.min() < 0 or scores.max() > 1  # values no sigmoid could give
    assert _numpy(c(_inputs((1, 48, 80, 3)))).shape == (1, 3, 5, 1)


@pytest.mark.slow
def test_patchgan_default_has_three_stride_2_convolutions_after_the_first():
    c = patchgan_critic_model()
    assert [(layer.filters, layer.strides) for layer in c.layers if type(layer).__name__ == "Conv2D"] == [
        (64, (2, 2)),
        (128, (2, 2)),
        (256, (2, 2)),
        (512, (2, 2)),
        (512, (1, 1)),
        (1, (1, 1)),
    ]
    assert _receptive_field(c) == 142
    assert c(_inputs((1, 256, 256, 3))).shape == (1, 16, 16, 1)
    norms = [layer for layer in c.layers if type(layer).__name__ == "GroupNormalization"]
    assert len(norms) == 4 and all(layer.groups == layer.input.shape[-1] for layer in norms)


def test_patchgan_with_two_layers_is_the_70x70_pix2pix_critic():
    c = patchgan_critic_model(n_layers=2)
    strides = [layer.strides[0] for layer in c.layers if type(layer).__name__ == "Conv2D"]
    assert strides == [2, 2, 2, 1, 1]
    assert _receptive_field(c) == 70


@pytest.mark.backend
def test_combined_model_outputs_and_shares_weights(randomize_weights):
    g = randomize_weights(generator_model(n_filters=4, n_blocks=1), seed=4)
    d = randomize_weights(discriminator_model(input_shape=(32, 32, 3), n_filters=4), seed=5)
    gd = generator_containing_discriminator_multiple_outputs(g, d)
    x = _inputs((2, 32, 32, 3))

    restored, score = (_numpy(t) for t in gd(x, training=False))

    assert gd.input_shape == (None, 32, 32, 3)
    assert restored.shape == (2, 32, 32, 3) and score.shape == (2, 1)
    np.testing.assert_allclose(restored, _numpy(g(x, training=False)), atol=1e-6)
    np.testing.assert_allclose(score, _numpy(d(g(x, training=False), training=False)), atol=1e-6)
    assert g in gd.layers and d in gd.layers
    assert {id(v) for v in gd.weights} == {id(v) for v in g.weights + d.weights}
    # Same variables, not copies: changing g changes the combined model.
    g.get_layer("tail_conv").bias.assign(np.full(3, 0.5, "float32"))
    assert not np.allclose(_numpy(gd(x, training=False)[0]), restored)


@pytest.mark.backend
def test_combined_model_with_patchgan_takes_any_size():
    g = generator_model(n_filters=4, n_blocks=1)
    c = patchgan_critic_model(n_filters=4)
    gd = generator_containing_discriminator_multiple_outputs(g, c)
    restored, scores = gd(_inputs((1, 48, 64, 3)))
    assert tuple(restored.shape) == (1, 48, 64, 3) and tuple(scores.shape) == (1, 3, 4, 1)


@pytest.mark.backend
def test_zero_init_output_with_clip_starts_as_the_identity():
    g = generator_model(n_filters=4, n_blocks=1, output_mode="clip", zero_init_output=True)
    x = _inputs((2, 32, 36, 3))
    np.testing.assert_array_equal(_numpy(g(x, training=False)), _numpy(x))
