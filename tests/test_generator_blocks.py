"""Generator options beyond Sicara/paper: sub-pixel upsampling (Shi et al. 2016, SRGAN), ESRGAN's RRDB
trunk, EDSR residual scaling and identity-initialised blocks; checked against numpy references."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import invoke_script

import deblurgan
from deblurgan.config import TrainingConfig, resumed_config
from deblurgan.errors import DeblurGANError
from deblurgan.inference import receptive_field_radius
from deblurgan.layer_utils import DepthToSpace, ScaledAdd, rrdb_block
from deblurgan.model import generator_model
from deblurgan.training_loop import TrainingOptions, resume_training, train

REPO = Path(__file__).resolve().parents[1]
TINY_NETS = dict(n_filters=4, n_blocks=2, rrdb_growth=4)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def _outputs_of(model, names, x, training=False):
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    return [_numpy(t) for t in probe(x, training=training)]


# --- sub-pixel upsampling ---------------------------------------------------------------------


@pytest.mark.backend
def test_depth_to_space_uses_tensorflows_channel_order_not_pytorchs():
    # one pixel, 8 channels -> 2x2 pixels of 2 channels
    x = np.arange(8, dtype="float32").reshape(1, 1, 1, 8)
    out = _numpy(DepthToSpace(2)(x))
    tf_order = np.array([[[[0, 1], [2, 3]], [[4, 5], [6, 7]]]], "float32")  # tf.nn.depth_to_space
    torch_order = np.array([[[[0, 4], [1, 5]], [[2, 6], [3, 7]]]], "float32")  # nn.PixelShuffle
    np.testing.assert_array_equal(out, tf_order)
    assert not np.array_equal(out, torch_order)


@pytest.mark.backend
@pytest.mark.parametrize("block_size, shape", [(2, (2, 3, 5, 12)), (3, (1, 2, 2, 18))])
def test_depth_to_space_matches_a_loop_built_pixel_shuffle(block_size, shape):
    x = _inputs(shape, seed=block_size)
    batch, height, width, depth = shape
    channels = depth // block_size**2
    expected = np.zeros((batch, height * block_size, width * block_size, channels), "float32")
    s = block_size
    for row in range(height):
        for col in range(width):
            for i in range(s):
                for j in range(s):
                    first = (i * s + j) * channels
                    expected[:, row * s + i, col * s + j] = x[:, row, col, first : first + channels]
    layer = DepthToSpace(block_size)
    np.testing.assert_array_equal(_numpy(layer(x)), expected)
    assert layer.compute_output_shape((None, None, 7, depth)) == (None, None, 7 * block_size, channels)
    if hasattr(keras.ops, "depth_to_space"):  # Keras >= 3.12 has the op; same order
        np.testing.assert_array_equal(_numpy(keras.ops.depth_to_space(x, block_size)), expected)


def test_depth_to_space_rejects_bad_sizes():
    with pytest.raises(DeblurGANError, match="block_size"):
        DepthToSpace(1)
    with pytest.raises(DeblurGANError, match="divisible by 4"):
        DepthToSpace(2).compute_output_shape((None, 4, 4, 6))


@pytest.mark.backend
def test_subpixel_stages_are_conv_to_four_times_the_channels_then_shuffle_norm_relu():
    g = generator_model(n_filters=4, n_blocks=1, upsampling="subpixel")
    names = [layer.name for layer in g.layers]
    for i, filters in ((1, 8), (2, 4)):
        conv = g.get_layer(f"up_{i}_conv")
        assert (type(conv).__name__, conv.filters, conv.kernel_size, conv.strides) == (
            "Conv2D", 4 * filters, (3, 3), (1, 1),
        )  # fmt: skip
        shuffle = g.get_layer(f"up_{i}_shuffle")
        assert shuffle.block_size == 2 and shuffle.output.shape[-1] == filters
        start = names.index(f"up_{i}_conv")
        assert names[start : start + 4] == [f"up_{i}_conv", f"up_{i}_shuffle", f"up_{i}_norm", f"up_{i}_relu"]
    assert "UpSampling2D" not in {type(layer).__name__ for layer in g.layers}


@pytest.mark.backend
def test_subpixel_receptive_field_radius_is_hand_derived_and_bounds_the_impulse_response(randomize_weights):
    g = randomize_weights(
        generator_model(n_filters=4, n_blocks=1, upsampling="subpixel", norm="none", dropout_rate=0), seed=7
    )
    # head 3 + down 2 + 4 (jump 1 -> 4) + block 4 + 4 + up: conv 4, shuffle 2 (jump 2), conv 2,
    # shuffle 1 (jump 1) + tail 3 = 29 (nearest: 26, the shuffle comes after the conv)
    radius = receptive_field_radius(g)
    assert radius == 29
    x = _inputs((1, 96, 96, 3), seed=8)
    poked = x.copy()
    poked[0, 48, 48] = -poked[0, 48, 48]
    changed = np.argwhere(np.abs(_numpy(g(poked)) - _numpy(g(x))).max(axis=-1)[0] > 0)
    reach = np.abs(changed - 48).max()
    assert 10 < reach <= radius


# --- RRDB --------------------------------------------------------------------------------------


def _conv3x3(x, kernel, bias):
    """Zero-padded ("same") 3x3 cross-correlation of (h, w, cin) with (3, 3, cin, cout)."""
    height, width = x.shape[:2]
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((height, width, kernel.shape[-1]), "float64") + bias
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + height, dx : dx + width] @ kernel[dy, dx]
    return out


def _rrdb_reference(x, weights_of):
    """ESRGAN's RRDB in numpy: 3 dense blocks (5 convs, dense connections, LeakyReLU 0.2 after the
    first four, ``input + 0.2 * conv5``), then ``input + 0.2 * chain``."""
    chain = x
    for j in range(1, 4):
        features = [chain]
        for k in range(1, 6):
            y = _conv3x3(np.concatenate(features, axis=-1), *weights_of(f"rrdb_1_dense_{j}_conv{k}"))
            features.append(np.where(y > 0, y, 0.2 * y) if k < 5 else y)
        chain = chain + 0.2 * features[-1]
    return x + 0.2 * chain


@pytest.mark.backend
def test_rrdb_block_equals_a_numpy_reference(randomize_weights):
    inputs = keras.Input((6, 7, 5))
    model = randomize_weights(keras.Model(inputs, rrdb_block(inputs, 3, "rrdb_1")), seed=3)
    x = _inputs((1, 6, 7, 5), seed=4)
    expected = _rrdb_reference(x[0].astype("float64"), lambda name: model.get_layer(name).get_weights())
    np.testing.assert_allclose(_numpy(model(x))[0], expected, atol=1e-5)


def _rrdb_parameters(channels, growth):
    """Hand-derived: per dense block, convs 1-4 see channels + (k-1) * growth and give growth, conv 5
    sees channels + 4 * growth and gives channels (3x3 kernels with bias); three per RRDB."""
    dense = sum(9 * (channels + k * growth) * growth + growth for k in range(4))
    dense += 9 * (channels + 4 * growth) * channels + channels
    return 3 * dense


def _sicara_outside_the_trunk(nf):
    """Head, downsamplings, nearest upsamplings and tail of generator_model(norm="none")."""
    return (
        7 * 7 * 3 * nf + nf
        + 9 * nf * 2 * nf + 2 * nf + 9 * 2 * nf * 4 * nf + 4 * nf
        + 9 * 4 * nf * 2 * nf + 2 * nf + 9 * 2 * nf * nf + nf
        + 7 * 7 * nf * 3 + 3
    )  # fmt: skip


@pytest.mark.parametrize(
    "n_filters, n_blocks, growth", [pytest.param(4, 1, 4, marks=pytest.mark.backend), (6, 2, 5)]
)
def test_rrdb_parameter_count_matches_the_hand_derived_formula(n_filters, n_blocks, growth):
    g = generator_model(n_filters=n_filters, n_blocks=n_blocks, block="rrdb", rrdb_growth=growth, norm="none")
    expected = _sicara_outside_the_trunk(n_filters) + n_blocks * _rrdb_parameters(4 * n_filters, growth)
    assert g.count_params() == expected
    trunk_kinds = {type(layer).__name__ for layer in g.layers if layer.name.startswith("rrdb_")}
    assert trunk_kinds == {"Conv2D", "LeakyReLU", "Concatenate", "ScaledAdd"}  # no norm, no dropout
    assert not any(layer.name.startswith("res_block") for layer in g.layers)


@pytest.mark.slow
def test_default_rrdb_and_subpixel_generators_have_the_documented_sizes():
    """The counts in README.md's methods table."""
    batch_norms = 4 * (64 + 128 + 256 + 128 + 64)  # gamma, beta, moving mean and variance
    assert _sicara_outside_the_trunk(64) + batch_norms + 9 * _rrdb_parameters(256, 32) == 34_113_155
    assert generator_model(block="rrdb").count_params() == 34_113_155
    assert generator_model(upsampling="subpixel").count_params() == 12_505_667
    assert generator_model(block="rrdb", upsampling="subpixel").count_params() == 34_113_155 + 1_106_496


# --- residual scaling and identity blocks -----------------------------------------------------


@pytest.mark.backend
def test_residual_scale_scales_the_branch(randomize_weights):
    plain = generator_model(n_filters=4, n_blocks=2)
    scaled = randomize_weights(generator_model(n_filters=4, n_blocks=2, residual_scale=0.1), seed=5)
    assert [w.path for w in scaled.weights] == [w.path for w in plain.weights]  # same files load
    assert type(scaled.get_layer("res_block_1_add")).__name__ == "ScaledAdd"
    assert type(plain.get_layer("res_block_1_add")).__name__ == "Add"
    x = _inputs((2, 16, 20, 3), seed=6)
    for i, shortcut_name in ((1, "down_2_relu"), (2, "res_block_1_add")):
        shortcut, branch, out = _outputs_of(
            scaled, [shortcut_name, f"res_block_{i}_norm2", f"res_block_{i}_add"], x
        )
        np.testing.assert_allclose(out, shortcut + 0.1 * branch, atol=1e-6)
        assert np.abs(branch).mean() > 0.05  # the scale is visible


@pytest.mark.backend
@pytest.mark.parametrize("kwargs", [dict(), dict(norm="instance", residual_scale=0.5, preset="paper")])
def test_zero_init_blocks_start_every_block_as_the_identity(kwargs):
    x = _inputs((2, 16, 16, 3), seed=9)
    names = ["down_2_relu", "res_block_1_add", "res_block_2_add"]
    keras.utils.set_random_seed(1)
    g = generator_model(n_filters=4, n_blocks=2, zero_init_blocks=True, **kwargs)
    for training in (False, True):
        trunk_in, *block_outputs = _outputs_of(g, names, x, training=training)
        assert np.abs(trunk_in).max() > 0.1
        for out in block_outputs:
            np.testing.assert_array_equal(out, trunk_in)
    keras.utils.set_random_seed(1)
    usual = generator_model(n_filters=4, n_blocks=2, **kwargs)
    trunk_in, first, _ = _outputs_of(usual, names, x)
    assert np.abs(first - trunk_in).max() > 1e-3


# --- the whole generator -----------------------------------------------------------------------

VARIANTS = [
    dict(upsampling="subpixel"),
    dict(block="rrdb"),
    dict(block="rrdb", upsampling="subpixel", norm="instance"),
    dict(residual_scale=0.1, zero_init_blocks=True, preset="paper"),
]


@pytest.mark.backend
@pytest.mark.parametrize("kwargs", VARIANTS)
def test_output_shape_for_any_size_divisible_by_4(kwargs):
    g = generator_model(**TINY_NETS, **kwargs)
    for shape in ((1, 16, 16, 3), (2, 36, 12, 3), (1, 20, 44, 3)):
        out = _numpy(g(_inputs(shape)))
        assert out.shape == shape and np.all(np.abs(out) <= 1)


@pytest.mark.backend
@pytest.mark.parametrize("kwargs", VARIANTS)
def test_get_config_round_trip_and_h5_through_load_generator(kwargs, tmp_path, randomize_weights):
    g = randomize_weights(generator_model(**TINY_NETS, **kwargs), seed=10)
    x = _inputs((1, 24, 16, 3), seed=11)
    expected = _numpy(g(x, training=False))
    rebuilt = keras.Model.from_config(g.get_config())
    rebuilt.set_weights(g.get_weights())
    np.testing.assert_allclose(_numpy(rebuilt(x, training=False)), expected, atol=1e-6)
    path = tmp_path / "generator.h5"
    g.save(path)
    loaded = deblurgan.load_generator(path)
    np.testing.assert_array_equal(_numpy(loaded(x, training=False)), expected)
    restored = deblurgan.deblur_array(loaded, (x[0] + 1) / 2, precision="fp32")
    np.testing.assert_allclose(restored, np.clip((expected[0] + 1) / 2, 0, 1), atol=1e-5)


@pytest.mark.parametrize("layer", [DepthToSpace(3, name="shuffle"), ScaledAdd(0.25, name="scaled")])
def test_layer_config_holds_the_constructor_arguments(layer):
    config = layer.get_config()
    assert config["name"] == layer.name
    assert config.get("block_size", config.get("scale")) in (3, 0.25)
    assert type(layer).from_config(config).get_config() == config


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(upsampling="bilinear"), "upsampling"),
        (dict(block="dense"), "block"),
        (dict(block="rrdb", rrdb_growth=0), "rrdb_growth"),
        (dict(block="rrdb", residual_scale=0.1), "residual_scale"),
        (dict(block="rrdb", zero_init_blocks=True), "zero_init_blocks"),
    ],
)
def test_unknown_generator_options_are_errors_naming_the_parameter(kwargs, parameter):
    with pytest.raises(DeblurGANError, match=f"^{parameter}=") as error:
        generator_model(n_filters=4, n_blocks=1, **kwargs)
    assert error.value.parameter == parameter


# --- training config and scripts ----------------------------------------------------------------


def test_options_json_without_the_new_fields_loads_and_resumes_as_before():
    payload = TrainingConfig().to_dict()
    for field in ("block", "rrdb_growth", "residual_scale", "zero_init_blocks"):
        del payload["generator"][field]
    saved = TrainingConfig.from_dict(json.loads(json.dumps(payload)))
    assert saved == TrainingConfig()
    assert resumed_config(TrainingConfig(), saved, "options.json") == saved
    with pytest.raises(DeblurGANError, match=r"generator.block='resnet' \(now 'rrdb'\)"):
        resumed_config(TrainingConfig.from_flags(block="rrdb"), saved, "options.json")


def test_flags_reach_the_generator_config():
    config = TrainingConfig.from_flags(block="rrdb", rrdb_growth=8, upsampling="subpixel")
    assert (config.generator.block, config.generator.rrdb_growth, config.generator.upsampling) == (
        "rrdb", 8, "subpixel",
    )  # fmt: skip
    config = TrainingConfig.from_flags(residual_scale=0.1, zero_init_blocks=True)
    assert (config.generator.residual_scale, config.generator.zero_init_blocks) == (0.1, True)
    with pytest.raises(DeblurGANError, match="generator.block=dense: choose one of resnet, rrdb") as error:
        TrainingConfig.from_flags(block="dense")
    assert error.value.parameter == "generator.block"


def _options(tmp_path, name, **flags):
    tiny = dict(batch_size=2, crop_size=32, n_filters=4, n_blocks=1, gan_mode="none", content_loss="l1")
    return TrainingOptions(
        data_dir=str(REPO / "images"), weights_dir=str(tmp_path / name),
        log_dir=str(tmp_path / f"{name}_logs"), val_images=2, workers=0, progress=False,
        steps_per_epoch=2, **{**tiny, **flags},
    )  # fmt: skip


def test_training_with_the_new_options_saves_them_and_resume_checks_them(tmp_path):
    rrdb = dict(block="rrdb", rrdb_growth=4, upsampling="subpixel")
    (row,) = train(_options(tmp_path, "rrdb", n_epochs=1, **rrdb))
    assert row["generator/content"] > 0
    saved = json.loads((tmp_path / "rrdb" / "options.json").read_text())["generator"]
    assert {k: saved[k] for k in rrdb} == rrdb
    (checkpoint,) = (tmp_path / "rrdb").glob("generator_0_*.h5")
    generator = deblurgan.load_generator(checkpoint)
    assert generator.get_layer("rrdb_1_add").scale == 0.2
    assert type(generator.get_layer("up_2_shuffle")).__name__ == "DepthToSpace"
    with pytest.raises(DeblurGANError, match=r"generator.rrdb_growth=4 \(now 8\)"):
        resume_training(_options(tmp_path, "rrdb", n_epochs=2, **{**rrdb, "rrdb_growth": 8}))
    with pytest.raises(DeblurGANError, match="generator.block='rrdb': only for architecture resnet"):
        train(_options(tmp_path, "multi", n_epochs=1, architecture="multiscale", block="rrdb"))


def _run(script, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_unknown_block_or_upsampling_is_one_line_from_train_py():
    for flag, value, choices in (
        ("--block", "dense", "'resnet', 'rrdb'"),
        ("--upsampling", "bilinear", "'nearest', 'transpose', 'subpixel'"),
    ):
        result = invoke_script("train", flag, value)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert lines[-1] == f"error: Invalid value for '{flag}': '{value}' is not one of {choices}."
        assert not any("Usage" in line or "Traceback" in line for line in lines)


TINY_ARGS = [
    "--batch_size", "2", "--crop_size", "32", "--n_filters", "4", "--n_blocks", "1", "--critic_filters", "4",
    "--critic_updates", "2", "--content_loss", "l1", "--val_images", "2", "--no_progress", "--n_epochs", "1",
    "--steps_per_epoch", "2",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        ["--upsampling", "subpixel", "--block", "rrdb", "--rrdb_growth", "4"],
        ["--residual_scale", "0.1", "--zero_init_blocks"],
    ],
)
def test_new_options_run_one_epoch_of_train_py_then_deblur_py_and_test_py(tmp_path, flags):
    weights, logs = tmp_path / "w", tmp_path / "l"
    result = _run(
        "train.py", "--data_dir", str(REPO / "images"), "--weights_dir", str(weights), "--log_dir", str(logs),
        *TINY_ARGS, *flags,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (checkpoint,) = weights.glob("generator_0_*.h5")
    generator = deblurgan.load_generator(checkpoint)
    saved = json.loads((weights / "options.json").read_text())["generator"]
    if "rrdb" in flags:
        assert (saved["block"], saved["upsampling"], saved["rrdb_growth"]) == ("rrdb", "subpixel", 4)
        assert type(generator.get_layer("up_1_shuffle")).__name__ == "DepthToSpace"
    else:
        assert (saved["residual_scale"], saved["zero_init_blocks"]) == (0.1, True)
        assert generator.get_layer("res_block_1_add").scale == 0.1
        return  # deblur.py and test.py load these layers in the rrdb case (ScaledAdd included)
    # deblur.py and test.py in this process (train.py's above was a fresh one)
    common = ["--weight_path", str(checkpoint), "--precision", "fp32"]
    demo, test = (str(REPO / "images" / name) for name in ("demo", "test"))
    result = invoke_script("deblur", *common, "--input_dir", demo, "--output_dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "d").glob("*.png"))) == 4
    result = invoke_script("test", *common, "--input_dir", test, "--output_dir", str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "t" / "summary.json").read_text())
