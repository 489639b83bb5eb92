"""Tests for the relativistic average GAN losses in deblurgan.losses against hand-computed values."""

import math

import keras
import numpy as np
import pytest

from deblurgan import losses

pytestmark = pytest.mark.backend

REAL = np.array([1.0, 3.0], "float32")  # mean 2
FAKE = np.array([0.0, 1.0], "float32")  # mean 0.5
# real - mean(fake) = [0.5, 2.5]; fake - mean(real) = [-2, -1]


def softplus(z):
    return math.log1p(math.exp(z))


def test_ragan_bce_matches_hand_values():
    critic = ((softplus(-0.5) + softplus(-2.5)) / 2 + (softplus(-2) + softplus(-1)) / 2) / 2
    generator = ((softplus(0.5) + softplus(2.5)) / 2 + (softplus(2) + softplus(1)) / 2) / 2
    assert critic == pytest.approx(0.2482891, abs=1e-7) and generator == pytest.approx(1.7482891, abs=1e-7)
    assert float(losses.ragan_critic_loss(REAL, FAKE)) == pytest.approx(critic, rel=1e-6)
    assert float(losses.ragan_generator_loss(REAL, FAKE)) == pytest.approx(generator, rel=1e-6)


def test_ragan_bce_equals_esrgans_sigmoid_log_form():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(1, 2, (4, 3, 3, 1)), rng.normal(-1, 2, (4, 3, 3, 1))  # PatchGAN maps
    d_real = 1 / (1 + np.exp(-(real - fake.mean())))  # D_Ra(x_r, x_f)
    d_fake = 1 / (1 + np.exp(-(fake - real.mean())))  # D_Ra(x_f, x_r)
    critic = -(np.log(d_real).mean() + np.log(1 - d_fake).mean()) / 2
    generator = -(np.log(1 - d_real).mean() + np.log(d_fake).mean()) / 2
    args = (real.astype("float32"), fake.astype("float32"))
    assert float(losses.ragan_critic_loss(*args)) == pytest.approx(critic, rel=1e-5)
    assert float(losses.ragan_generator_loss(*args)) == pytest.approx(generator, rel=1e-5)


def test_ragan_ls_matches_hand_values():
    # critic: (mean [-0.5, 1.5]^2 = 1.25, mean [-1, 0]^2 = 0.5) / 2
    # generator: (mean [1.5, 3.5]^2 = 7.25, mean [-3, -2]^2 = 6.5) / 2
    assert float(losses.ragan_ls_critic_loss(REAL, FAKE)) == pytest.approx(0.875)
    assert float(losses.ragan_ls_generator_loss(REAL, FAKE)) == pytest.approx(6.875)
    # the critic's optimum: real scores 1 above the fakes' mean and fakes 1 below the reals' mean
    assert float(losses.ragan_ls_critic_loss(np.array([1.0, 1.0]), np.array([0.0, 0.0]))) == 0.0
    assert float(losses.ragan_ls_generator_loss(np.array([0.0, 0.0]), np.array([1.0, 1.0]))) == 0.0


def test_large_scores_stay_finite_and_the_table_pairs_the_losses():
    real, fake = np.array([500.0, 400.0], "float32"), np.array([-500.0, -400.0], "float32")
    assert float(losses.ragan_critic_loss(real, fake)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.ragan_generator_loss(real, fake)) == pytest.approx(900.0, rel=1e-6)
    assert losses.RELATIVISTIC_LOSSES == {
        "ragan": (losses.ragan_critic_loss, losses.ragan_generator_loss),
        "ragan-ls": (losses.ragan_ls_critic_loss, losses.ragan_ls_generator_loss),
    }
    scores = keras.ops.ones((2, 4, 4, 1))
    assert keras.ops.convert_to_numpy(losses.ragan_critic_loss(scores, scores)).shape == ()
