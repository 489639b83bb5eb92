"""Tests for deblurgan.frequency (DSGAN frequency separation): hand-derived values and scipy's box filter."""

import keras
import numpy as np
import pytest
from scipy import ndimage

import deblurgan
from deblurgan import frequency
from deblurgan.errors import DeblurGANError

pytestmark = pytest.mark.backend


def np_(x):
    return keras.ops.convert_to_numpy(x)


def checkerboard(height=12, width=10, channels=3):
    i, j = np.indices((height, width))
    board = np.where((i + j) % 2 == 0, 1.0, -1.0)
    return np.repeat(board[None, :, :, None], channels, axis=-1).astype("float32")


def test_a_constant_image_passes_unchanged():
    image = np.full((2, 9, 7, 3), 0.3, "float32")
    np.testing.assert_allclose(np_(frequency.lowpass(image)), image, atol=1e-7)
    np.testing.assert_allclose(np_(frequency.highpass(image)), 0.0, atol=1e-7)


def test_a_nyquist_checkerboard_is_removed_to_one_25th_everywhere():
    """Each 5-tap sum of +-1 alternating values is +-1 (three of one sign, two of the other), so
    the 5x5 mean is board / 25. Reflect padding mirrors without repeating the edge (x[-1] = x[1]),
    which continues the checkerboard's parity, so the border pixels get exactly the same value."""
    board = checkerboard()
    np.testing.assert_allclose(np_(frequency.lowpass(board)), board / 25, atol=1e-7)
    np.testing.assert_allclose(np_(frequency.highpass(board)), board * 24 / 25, atol=1e-6)
    stripes = np.broadcast_to(board[:, :1], board.shape)  # Nyquist along height only: 1/5 remains
    np.testing.assert_allclose(np_(frequency.lowpass(stripes)), stripes / 5, atol=1e-7)


def test_lowpass_equals_scipys_mirror_box_filter():
    image = np.random.default_rng(0).uniform(-1, 1, (2, 11, 13, 3)).astype("float32")
    expected = ndimage.uniform_filter(image, size=(1, 5, 5, 1), mode="mirror")
    np.testing.assert_allclose(np_(frequency.lowpass(image)), expected, atol=1e-6)
    expected3 = ndimage.uniform_filter(image, size=(1, 3, 3, 1), mode="mirror")
    np.testing.assert_allclose(np_(frequency.lowpass(image, kernel_size=3)), expected3, atol=1e-6)


def test_lowpass_l1_loss_matches_hand_values():
    zeros = np.zeros((1, 9, 9, 1), "float32")
    impulse = zeros.copy()
    impulse[0, 4, 4, 0] = 25.0  # its low-pass is 1 on the 5x5 block around it, 0 elsewhere
    assert float(frequency.lowpass_l1_loss(zeros, impulse)) == pytest.approx(25 / 81)
    assert float(frequency.lowpass_l1_loss(zeros, zeros + 0.5)) == pytest.approx(0.5)
    # a checkerboard error costs 1 in plain L1 but only 1/25 here
    board = checkerboard(channels=1)
    assert float(frequency.lowpass_l1_loss(np.zeros_like(board), board)) == pytest.approx(1 / 25)


def test_highpass_critic_sees_the_highpass_and_saves_and_loads(tmp_path):
    critic = deblurgan.patchgan_critic_model(n_filters=4, n_layers=1)
    wrapped = frequency.highpass_critic(critic)
    image = np.random.default_rng(2).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(np_(wrapped(image)), np_(critic(np_(frequency.highpass(image)))), atol=1e-6)
    path = tmp_path / "critic.keras"
    wrapped.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np_(loaded(image)), np_(wrapped(image)), atol=1e-6)
    assert frequency.HighPass2D(kernel_size=3).get_config()["kernel_size"] == 3
    with pytest.raises(DeblurGANError, match="odd positive"):
        frequency.lowpass(image, kernel_size=4)


def test_import_deblurgan_registers_the_highpass_layer_for_a_fresh_process(tmp_path, run_python):
    critic = frequency.highpass_critic(deblurgan.patchgan_critic_model(n_filters=4, n_layers=1))
    critic.save(tmp_path / "critic.h5")
    out = run_python(
        f"""
        import keras, deblurgan
        model = keras.models.load_model({str(tmp_path / "critic.h5")!r})
        print(type(model.get_layer("highpass")).__name__)
        """,
        backend=keras.backend.backend(),
    )
    assert out.strip().splitlines()[-1] == "HighPass2D"
