"""The custom layers against numpy references, their configs, and their argument checks."""

import keras
import numpy as np
import pytest

from deblurgan.errors import DeblurGANError
from deblurgan.layer_utils import GlobalSkip, ReflectionPadding2D, normalization, res_block

pytestmark = pytest.mark.backend


def _random(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


@pytest.mark.parametrize(
    "shape, padding",
    [((2, 5, 7, 3), 1), ((1, 9, 6, 2), 3), ((1, 7, 5, 4), (2, 1)), ((1, 4, 4, 1), (0, 3))],
)
def test_reflection_padding_equals_numpy_reflect(shape, padding):
    x = _random(shape)
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    expected = np.pad(x, [(0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)], mode="reflect")

    out = keras.ops.convert_to_numpy(ReflectionPadding2D(padding)(x))

    np.testing.assert_array_equal(out, expected)


def test_reflection_padding_mirrors_without_repeating_the_edge():
    row = np.arange(1, 5, dtype="float32").reshape(1, 1, 4, 1)
    out = keras.ops.convert_to_numpy(ReflectionPadding2D((0, 2))(row))
    assert out.ravel().tolist() == [3, 2, 1, 2, 3, 4, 3, 2]


def test_reflection_padding_shape_in_a_functional_model_with_unknown_size():
    inputs = keras.Input((None, None, 3))
    outputs = ReflectionPadding2D((3, 2))(inputs)
    assert tuple(outputs.shape) == (None, None, None, 3)
    assert ReflectionPadding2D((3, 2)).compute_output_shape((None, 10, 11, 3)) == (None, 16, 15, 3)


def _round_trip(layer):
    """Rebuilds ``layer`` from its config, through JSON-able serialization by registered name."""
    config = keras.saving.serialize_keras_object(layer)
    return keras.saving.deserialize_keras_object(config)


def test_reflection_padding_config_round_trip():
    layer = ReflectionPadding2D((2, 3), name="pad")
    rebuilt = _round_trip(layer)
    assert type(rebuilt) is ReflectionPadding2D
    assert rebuilt.get_config() == layer.get_config()
    assert rebuilt.padding == (2, 3) and rebuilt.name == "pad"
    x = _random((1, 6, 7, 2))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(rebuilt(x)), keras.ops.convert_to_numpy(layer(x))
    )


@pytest.mark.parametrize("mode", GlobalSkip.MODES)
def test_global_skip_config_round_trip(mode):
    layer = GlobalSkip(mode, name="skip")
    rebuilt = _round_trip(layer)
    assert type(rebuilt) is GlobalSkip and rebuilt.mode == mode
    assert rebuilt.get_config() == layer.get_config()
    blurred, residual = _random((1, 4, 4, 3), 1), _random((1, 4, 4, 3), 2) * 1.5
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(rebuilt([blurred, residual])),
        keras.ops.convert_to_numpy(layer([blurred, residual])),
    )


def test_custom_layers_are_registered_under_the_package_name():
    assert keras.saving.get_registered_name(ReflectionPadding2D) == "deblurgan>ReflectionPadding2D"
    assert keras.saving.get_registered_name(GlobalSkip) == "deblurgan>GlobalSkip"


def test_global_skip_modes_numerically():
    blurred = np.array([[-1.0, -0.5, 0.0, 0.5, 1.0, 0.9]], dtype="float32").reshape(1, 1, 6, 1)
    residual = np.array([[-1.0, 0.9, -0.25, 0.75, 0.5, -0.3]], dtype="float32").reshape(1, 1, 6, 1)

    average = keras.ops.convert_to_numpy(GlobalSkip("average")([blurred, residual])).ravel()
    clip = keras.ops.convert_to_numpy(GlobalSkip("clip")([blurred, residual])).ravel()

    np.testing.assert_allclose(average, [-1.0, 0.2, -0.125, 0.625, 0.75, 0.3], atol=1e-7)
    np.testing.assert_allclose(clip, [-1.0, 0.4, -0.25, 1.0, 1.0, 0.6], atol=1e-7)


def test_instance_normalization_is_per_sample_and_per_channel():
    x = _random((2, 5, 6, 4)) * np.array([1, 3, 0.2, 7], dtype="float32") + 2.0
    layer = normalization("instance", "norm")
    out = keras.ops.convert_to_numpy(layer(x))
    mean = x.mean(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # One sample's output does not depend on the rest of the batch.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x[:1])), out[:1], atol=1e-6)


def test_res_block_adds_its_input():
    inputs = keras.Input((8, 8, 4))
    block = keras.Model(inputs, res_block(inputs, 4, "rb", dropout_rate=0.0))
    for variable in block.weights:
        if variable.name == "kernel":
            variable.assign(np.zeros(variable.shape, "float32"))
    x = _random((1, 8, 8, 4))
    # Zero kernels: the branch is BN(bias) = constant per channel, so the block is x + constant.
    out = keras.ops.convert_to_numpy(block(x, training=False))
    np.testing.assert_allclose(out - x, np.broadcast_to((out - x)[:, :1, :1, :], x.shape), atol=1e-6)


@pytest.mark.parametrize("padding", [-1, (1, 2, 3), (1.5, 1), "1", (1, None)])
def test_reflection_padding_rejects_bad_padding(padding):
    with pytest.raises(DeblurGANError, match="padding"):
        ReflectionPadding2D(padding)


def test_global_skip_rejects_unknown_mode():
    with pytest.raises(DeblurGANError, match="mode"):
        GlobalSkip("sum")


def test_normalization_rejects_unknown_norm():
    with pytest.raises(DeblurGANError, match="norm"):
        normalization("layer", "n")


def test_global_skip_accepts_the_function_the_legacy_h5_loader_substitutes():
    # Keras' .h5 loader hands back keras.layers.average for the saved string "average".
    assert GlobalSkip(keras.layers.average).mode == "average"
