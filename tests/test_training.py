"""The GAN update: which variables each step may touch, the gradient penalty, and real learning."""

import keras
import numpy as np
import pytest
from scipy.ndimage import correlate1d, uniform_filter, uniform_filter1d

from deblurgan import losses
from deblurgan.checkpoints import load_critic, save_model
from deblurgan.config import TrainingConfig
from deblurgan.model import discriminator_model, generator_model, patchgan_critic_model
from deblurgan.training import (
    DeblurGANTrainer,
    default_optimizers,
    gradient_penalty,
    linear_decay_learning_rate,
    recalibrate_batch_norm,
)
from deblurgan.training_loop import build_trainer, resolve


def _pairs(n=2, size=32, seed=0):
    """Blocky sharp images (real edges) and the same images under a 7 px horizontal box blur."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-1, 1, (n, size // 4, size // 4, 3))
    sharp = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2).astype("float32")
    blurred = uniform_filter1d(sharp, 7, axis=2, mode="reflect").astype("float32")
    return blurred, sharp


def _snapshot(model):
    return {v.path: keras.ops.convert_to_numpy(v.value).copy() for v in model.variables}


def _changed(before, after):
    return {path for path in before if not np.array_equal(before[path], after[path])}


def _trainer(gan_mode, critic_updates=1):
    keras.utils.set_random_seed(0)
    generator = generator_model(n_filters=4, n_blocks=1)
    if gan_mode == "wgan":
        critic = discriminator_model(input_shape=(32, 32, 3), n_filters=4)
    else:
        critic = patchgan_critic_model(n_filters=4, n_layers=2)
    return DeblurGANTrainer(
        generator,
        critic,
        gan_mode=gan_mode,
        content_loss=losses.content_loss("l1"),
        critic_updates=critic_updates,
    )


@pytest.mark.backend
@pytest.mark.parametrize("gan_mode", ["wgan", "wgan-gp", "wgan-clip", "ragan", "ragan-ls"])
def test_generator_step_leaves_every_critic_variable_bit_identical(gan_mode):
    trainer = _trainer(gan_mode)
    blurred, sharp = _pairs()
    generator_before, critic_before = _snapshot(trainer.generator), _snapshot(trainer.critic)

    trainer._generator_step(blurred, sharp)

    assert _changed(critic_before, _snapshot(trainer.critic)) == set()
    changed = _changed(generator_before, _snapshot(trainer.generator))
    assert {v.path for v in trainer.generator.trainable_variables} <= changed
    assert "head_norm/moving_mean" in changed  # the generator's own batch-norm statistics do move


@pytest.mark.backend
@pytest.mark.parametrize("gan_mode", ["wgan", "wgan-gp", "wgan-clip", "ragan", "ragan-ls"])
def test_critic_step_leaves_every_generator_variable_bit_identical(gan_mode):
    trainer = _trainer(gan_mode)
    blurred, sharp = _pairs()
    generator_before, critic_before = _snapshot(trainer.generator), _snapshot(trainer.critic)
    restored = trainer._predict(keras.ops.convert_to_tensor(blurred))

    trainer._critic_step(sharp, restored, np.full((2, 1, 1, 1), 0.3, "float32"))

    assert _changed(generator_before, _snapshot(trainer.generator)) == set()
    changed = _changed(critic_before, _snapshot(trainer.critic))
    trainable = {v.path for v in trainer.critic.trainable_variables}
    if gan_mode != "wgan":
        # mean D(fake) - mean D(real), and the relativistic C(x) - mean C(y), do not depend on the
        # last bias: its gradient is exactly 0
        trainable.discard("conv_score/bias")
    assert trainable <= changed
    if gan_mode == "wgan":  # the Sicara critic has batch norm: its statistics belong to the critic step
        assert "norm_2/moving_mean" in changed


@pytest.mark.backend
def test_whole_iteration_runs_critic_updates_then_one_generator_step():
    trainer = _trainer("wgan-gp", critic_updates=3)
    blurred, sharp = _pairs()
    logs = trainer.train_on_batch(blurred, sharp)
    assert set(logs) == {
        "critic/wasserstein", "critic/gradient_penalty", "critic/total",
        "generator/content", "generator/adversarial", "generator/total",
    }  # fmt: skip
    assert int(keras.ops.convert_to_numpy(trainer.critic_optimizer.iterations)) == 3
    assert int(keras.ops.convert_to_numpy(trainer.generator_optimizer.iterations)) == 1
    expected_total = 100.0 * logs["generator/content"] + logs["generator/adversarial"]
    assert logs["generator/total"] == pytest.approx(expected_total, rel=1e-5)


@pytest.mark.backend
def test_a_critic_warm_up_iteration_trains_the_critic_alone():
    trainer = _trainer("wgan-gp", critic_updates=2)
    blurred, sharp = _pairs()
    generator_before, critic_before = _snapshot(trainer.generator), _snapshot(trainer.critic)
    logs = trainer.train_on_batch(blurred, sharp, train_generator=False)
    assert set(logs) == {"critic/wasserstein", "critic/gradient_penalty", "critic/total"}
    assert _changed(generator_before, _snapshot(trainer.generator)) == set()
    assert {v.path for v in trainer.critic.trainable_variables} - {"conv_score/bias"} <= _changed(
        critic_before, _snapshot(trainer.critic)
    )
    assert int(keras.ops.convert_to_numpy(trainer.critic_optimizer.iterations)) == 2
    assert int(keras.ops.convert_to_numpy(trainer.generator_optimizer.iterations)) == 0


@pytest.mark.backend
def test_weight_clipping_bounds_every_critic_weight():
    trainer = _trainer("wgan-clip")
    for variable in trainer.critic.trainable_variables:  # start far outside the bound
        variable.assign(keras.ops.ones(variable.shape) * 0.5)
    blurred, sharp = _pairs()
    trainer.train_on_batch(blurred, sharp)
    largest = max(
        float(np.abs(keras.ops.convert_to_numpy(v.value)).max()) for v in trainer.critic.trainable_variables
    )
    assert largest == pytest.approx(0.01)


def _linear_critic(weights, bias=0.25, shape=(4, 4, 3)):
    inputs = keras.Input(shape)
    score = keras.layers.Dense(1, name="score")(keras.layers.Flatten()(inputs))
    critic = keras.Model(inputs, score)
    critic.get_layer("score").set_weights([weights.reshape(-1, 1), np.array([bias], "float32")])
    return critic


@pytest.mark.backend
def test_gradient_penalty_matches_hand_computation_for_a_linear_critic():
    rng = np.random.default_rng(1)
    w = rng.normal(size=48).astype("float32") * 0.3
    real = rng.uniform(-1, 1, (3, 4, 4, 3)).astype("float32")
    fake = rng.uniform(-1, 1, (3, 4, 4, 3)).astype("float32")
    alpha = rng.uniform(size=(3, 1, 1, 1)).astype("float32")
    penalty = gradient_penalty(_linear_critic(w), real, fake, alpha)
    # D(x) = w.x + b, so grad D = w for every sample, whatever alpha is
    expected = (np.linalg.norm(w) - 1.0) ** 2
    assert float(keras.ops.convert_to_numpy(penalty)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.backend
def test_gradient_penalty_takes_the_norm_per_sample_over_all_non_batch_dimensions():
    rng = np.random.default_rng(2)
    w = rng.normal(size=48).astype("float32") * 0.3
    inputs = keras.Input((4, 4, 3))
    squared = keras.layers.Multiply()([inputs, inputs])
    score = keras.layers.Dense(1, use_bias=False, name="score")(keras.layers.Flatten()(squared))
    critic = keras.Model(inputs, score)
    critic.get_layer("score").set_weights([w.reshape(-1, 1)])
    real = rng.uniform(-1, 1, (3, 4, 4, 3)).astype("float32")
    fake = rng.uniform(-1, 1, (3, 4, 4, 3)).astype("float32")
    alpha = rng.uniform(size=(3, 1, 1, 1)).astype("float32")
    x_hat = (alpha * real + (1 - alpha) * fake).reshape(3, -1)
    norms = np.linalg.norm(2.0 * w * x_hat, axis=1)  # D(x) = w.x^2, so grad D = 2 w x per sample
    expected = np.mean((norms - 1.0) ** 2)
    penalty = keras.ops.convert_to_numpy(gradient_penalty(critic, real, fake, alpha))
    assert float(penalty) == pytest.approx(expected, rel=1e-4)


@pytest.mark.backend
def test_critic_step_differentiates_through_the_gradient_penalty():
    """One SGD step on a linear critic equals the hand-derived WGAN-GP gradient (second order)."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=48).astype("float32") * 0.3
    critic = _linear_critic(w)
    generator = generator_model(input_shape=(4, 4, 3), n_filters=2, n_blocks=1)
    trainer = DeblurGANTrainer(
        generator, critic, gan_mode="wgan-gp", critic_updates=1,
        generator_optimizer=keras.optimizers.SGD(0.1), critic_optimizer=keras.optimizers.SGD(0.1),
    )  # fmt: skip
    real = rng.uniform(-1, 1, (2, 4, 4, 3)).astype("float32")
    fake = rng.uniform(-1, 1, (2, 4, 4, 3)).astype("float32")
    trainer._critic_step(real, fake, np.full((2, 1, 1, 1), 0.5, "float32"))

    # loss = mean D(fake) - mean D(real) + 10 (|w| - 1)^2
    norm = np.linalg.norm(w)
    grad = fake.reshape(2, -1).mean(0) - real.reshape(2, -1).mean(0) + 10 * 2 * (norm - 1) * w / norm
    new_w = keras.ops.convert_to_numpy(critic.get_layer("score").kernel).reshape(-1)
    np.testing.assert_allclose(new_w, w - 0.1 * grad, rtol=1e-4, atol=1e-6)


def _softplus(z):
    return np.logaddexp(0.0, z)


# Hand-written relativistic average losses (Jolicoeur-Martineau 2018): d_r = C(real) - mean C(fake),
# d_f = C(fake) - mean C(real); each loss is the mean of its real and fake terms.
RAGAN_BY_HAND = {  # gan mode -> (critic loss, generator loss) of (d_r, d_f)
    "ragan": (
        lambda d_r, d_f: (np.mean(_softplus(-d_r)) + np.mean(_softplus(d_f))) / 2,
        lambda d_r, d_f: (np.mean(_softplus(d_r)) + np.mean(_softplus(-d_f))) / 2,
    ),
    "ragan-ls": (
        lambda d_r, d_f: (np.mean((d_r - 1) ** 2) + np.mean((d_f + 1) ** 2)) / 2,
        lambda d_r, d_f: (np.mean((d_r + 1) ** 2) + np.mean((d_f - 1) ** 2)) / 2,
    ),
}


@pytest.mark.backend
@pytest.mark.parametrize("gan_mode", ["ragan", "ragan-ls"])
def test_relativistic_losses_match_hand_computation_on_a_linear_critic(gan_mode):
    rng = np.random.default_rng(4)
    w = rng.normal(size=192).astype("float32") * 0.2
    keras.utils.set_random_seed(0)
    generator = generator_model(input_shape=(8, 8, 3), n_filters=2, n_blocks=1, dropout_rate=0)
    critic = _linear_critic(w, shape=(8, 8, 3))
    trainer = DeblurGANTrainer(generator, critic, gan_mode=gan_mode, critic_updates=1)
    real, fake, blurred = (rng.uniform(-1, 1, (3, 8, 8, 3)).astype("float32") for _ in range(3))

    def scores(images):  # C(x) = w.x + 0.25
        return images.reshape(len(images), -1) @ w + 0.25

    critic_by_hand, generator_by_hand = RAGAN_BY_HAND[gan_mode]
    d_r, d_f = scores(real) - scores(fake).mean(), scores(fake) - scores(real).mean()
    logs = trainer._critic_step(real, fake, np.full((3, 1, 1, 1), 0.5, "float32"))
    assert float(logs["critic/total"]) == pytest.approx(critic_by_hand(d_r, d_f), rel=1e-4)
    assert float(logs["critic/relativistic"]) == float(logs["critic/total"])

    # the generator step scores its own output (batch statistics: training mode) against the real images
    restored = keras.ops.convert_to_numpy(generator(blurred, training=True))
    w = keras.ops.convert_to_numpy(trainer.critic.get_layer("score").kernel).reshape(-1)  # after the step
    bias = float(keras.ops.convert_to_numpy(trainer.critic.get_layer("score").bias)[0])
    real_scores, fake_scores = real.reshape(3, -1) @ w + bias, restored.reshape(3, -1) @ w + bias
    d_r, d_f = real_scores - fake_scores.mean(), fake_scores - real_scores.mean()
    logs = trainer._generator_step(blurred, real)
    assert float(logs["generator/adversarial"]) == pytest.approx(generator_by_hand(d_r, d_f), rel=1e-4)


@pytest.mark.backend
def test_ragan_ls_critic_step_follows_the_hand_derived_gradient():
    """One SGD step on a linear critic C(x) = w.x + b: with d_r = w.(x_i - mean y), d_f = w.(y_j - mean x),
    dL/dw = mean_i (d_r_i - 1)(x_i - mean y) + mean_j (d_f_j + 1)(y_j - mean x)."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=48).astype("float32") * 0.3
    critic = _linear_critic(w)
    generator = generator_model(input_shape=(4, 4, 3), n_filters=2, n_blocks=1)
    trainer = DeblurGANTrainer(
        generator, critic, gan_mode="ragan-ls", critic_updates=1,
        generator_optimizer=keras.optimizers.SGD(0.1), critic_optimizer=keras.optimizers.SGD(0.1),
    )  # fmt: skip
    real = rng.uniform(-1, 1, (2, 4, 4, 3)).astype("float32").reshape(2, -1)
    fake = rng.uniform(-1, 1, (3, 4, 4, 3)).astype("float32").reshape(3, -1)
    alpha = np.zeros((2, 1, 1, 1), "float32")  # unused: no gradient penalty
    trainer._critic_step(real.reshape(2, 4, 4, 3), fake.reshape(3, 4, 4, 3), alpha)

    real_rel, fake_rel = real - fake.mean(0), fake - real.mean(0)
    grad = ((real_rel @ w - 1)[:, None] * real_rel).mean(0) + ((fake_rel @ w + 1)[:, None] * fake_rel).mean(0)
    new_w = keras.ops.convert_to_numpy(critic.get_layer("score").kernel).reshape(-1)
    np.testing.assert_allclose(new_w, w - 0.1 * grad, rtol=1e-4, atol=1e-6)


def _lowpass_by_hand(images):
    """DSGAN's low-pass: the 5x5 mean, borders reflected without repeating the edge (scipy's "mirror")."""
    return uniform_filter(np.asarray(images, "float64"), size=(1, 5, 5, 1), mode="mirror")


@pytest.mark.backend
def test_lowpass_term_is_the_l1_between_low_passes_weighted_into_the_total():
    keras.utils.set_random_seed(0)
    generator = generator_model(n_filters=4, n_blocks=1, dropout_rate=0)
    trainer = DeblurGANTrainer(
        generator, patchgan_critic_model(n_filters=4, n_layers=2), gan_mode="wgan-gp",
        content_loss=losses.content_loss("l1"), lowpass_weight=3.0,
    )  # fmt: skip
    blurred, sharp = _pairs()
    restored = keras.ops.convert_to_numpy(generator(blurred, training=True))  # what the step sees
    logs = trainer._generator_step(blurred, sharp)
    expected = np.mean(np.abs(_lowpass_by_hand(sharp) - _lowpass_by_hand(restored)))
    assert float(logs["generator/lowpass"]) == pytest.approx(expected, rel=1e-4)
    logs = {name: float(value) for name, value in logs.items()}
    expected_total = 100.0 * logs["generator/content"] + logs["generator/adversarial"] + 3.0 * expected
    assert logs["generator/total"] == pytest.approx(expected_total, rel=1e-5)
    # off by default: no term, no log
    assert "generator/lowpass" not in _trainer("wgan-gp")._generator_step(blurred, sharp)


@pytest.mark.backend
@pytest.mark.parametrize(("gan_mode", "plain_name"), [("wgan-gp", "critic"), ("wgan", "discriminator")])
def test_highpass_critic_scores_an_image_as_the_plain_critic_its_high_pass(
    tmp_path, randomize_weights, gan_mode, plain_name
):
    flags = dict(n_filters=4, n_blocks=1, critic_filters=4, crop_size=32, content_loss="l1")
    trainer = build_trainer(
        resolve(TrainingConfig.from_flags(gan_mode=gan_mode, critic_input="highpass", **flags))
    )
    plain = randomize_weights(trainer.critic.get_layer(plain_name), seed=1)
    images = np.random.default_rng(6).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    scores = keras.ops.convert_to_numpy(trainer.critic(images))
    high_pass = (images - _lowpass_by_hand(images)).astype("float32")
    np.testing.assert_allclose(scores, keras.ops.convert_to_numpy(plain(high_pass)), rtol=1e-4, atol=1e-5)
    assert not np.allclose(scores, keras.ops.convert_to_numpy(plain(images)), atol=1e-3)
    # saved and loaded as .h5 like every critic
    loaded = load_critic(save_model(trainer.critic, tmp_path / "discriminator_0.h5"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), scores, rtol=1e-5, atol=1e-6)


def _half_by_hand(images):
    """One Gaussian-pyramid level: the 1-4-6-4-1 binomial blur, borders mirrored, every other pixel."""
    kernel = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    blurred = np.asarray(images, "float64")
    for axis in (1, 2):
        blurred = correlate1d(blurred, kernel, axis=axis, mode="mirror")
    return blurred[:, ::2, ::2]


@pytest.mark.backend
def test_multiscale_content_loss_is_the_mean_over_scales_and_the_critic_judges_the_finest():
    flags = dict(n_blocks=1, n_filters=4, kernel_size=3, critic_filters=4, crop_size=32, gan_mode="wgan-gp")
    config = resolve(TrainingConfig.from_flags(architecture="multiscale", **flags))
    assert config.loss.content == "mse"  # the paper's loss, unless --content_loss is given
    trainer = build_trainer(config)
    blurred, sharp = _pairs()
    outputs = [keras.ops.convert_to_numpy(o) for o in trainer.generator(blurred)]
    targets = [sharp, _half_by_hand(sharp), _half_by_hand(_half_by_hand(sharp))]
    logs = trainer._generator_step(blurred, sharp)
    expected = np.mean([np.mean((t - o) ** 2) for t, o in zip(targets, outputs, strict=True)])
    assert float(logs["generator/content"]) == pytest.approx(expected, rel=1e-4)
    # wgan-gp's adversarial term: -mean D(finest output); the generator step left the critic as it was
    finest_score = keras.ops.convert_to_numpy(trainer.critic(outputs[0]))
    assert float(logs["generator/adversarial"]) == pytest.approx(-finest_score.mean(), rel=1e-4, abs=1e-6)
    assert tuple(trainer._predict(keras.ops.convert_to_tensor(blurred)).shape) == (2, 32, 32, 3)


def test_training_really_learns_to_deblur():
    """Paper recipe (WGAN-GP, PatchGAN, residual generator), tiny networks, 4 fixed pairs."""
    blurred, sharp = _pairs(n=4, seed=0)
    keras.utils.set_random_seed(0)
    generator = generator_model(n_filters=8, n_blocks=2, preset="paper", dropout_rate=0)
    critic = patchgan_critic_model(n_filters=8, n_layers=2)
    generator_optimizer, critic_optimizer = default_optimizers("wgan-gp", 1e-3)
    trainer = DeblurGANTrainer(
        generator, critic, gan_mode="wgan-gp", content_loss=losses.content_loss("l1"), critic_updates=1,
        generator_optimizer=generator_optimizer, critic_optimizer=critic_optimizer,
    )  # fmt: skip

    def l1_to_sharp():
        restored = keras.ops.convert_to_numpy(generator(blurred, training=False))
        return float(np.mean(np.abs(restored - sharp)))

    before = l1_to_sharp()
    for _ in range(150):
        trainer.train_on_batch(blurred, sharp)
    after = l1_to_sharp()
    assert after <= 0.7 * before
    # and it beats the blurred input itself: it deblurs, not merely undoes its initial noise
    assert after <= 0.8 * float(np.mean(np.abs(blurred - sharp)))


def test_default_optimizers_follow_each_recipe():
    adam_g, _ = default_optimizers("wgan")
    assert isinstance(adam_g, keras.optimizers.Adam)
    assert (float(adam_g.learning_rate), adam_g.beta_1, adam_g.beta_2) == pytest.approx((1e-4, 0.9, 0.999))
    gp_g, _ = default_optimizers("wgan-gp")
    assert (float(gp_g.learning_rate), gp_g.beta_1) == pytest.approx((1e-4, 0.5))
    rms_g, rms_d = default_optimizers("wgan-clip")
    assert isinstance(rms_d, keras.optimizers.RMSprop)
    assert float(rms_g.learning_rate) == pytest.approx(5e-5)
    _, esrgan = default_optimizers("ragan")  # ESRGAN: Adam 1e-4, betas 0.9/0.99
    assert (float(esrgan.learning_rate), esrgan.beta_1, esrgan.beta_2) == pytest.approx((1e-4, 0.9, 0.99))
    v2_g, _ = default_optimizers("ragan-ls")  # DeblurGAN-v2: Adam 1e-4, PyTorch's default betas
    assert (float(v2_g.learning_rate), v2_g.beta_1, v2_g.beta_2) == pytest.approx((1e-4, 0.9, 0.999))
    g, d = default_optimizers("wgan-gp", 2e-5, 3e-4)  # a slow generator against a quick critic
    assert (float(g.learning_rate), float(d.learning_rate)) == pytest.approx((2e-5, 3e-4))
    g, d = default_optimizers("wgan-gp", 2e-5)
    assert (float(g.learning_rate), float(d.learning_rate)) == pytest.approx((2e-5, 2e-5))


def test_linear_decay_is_flat_then_reaches_zero():
    rates = [linear_decay_learning_rate(1e-4, epoch, 10) for epoch in range(11)]
    assert rates[:5] == [1e-4] * 5
    assert rates[5:] == pytest.approx([1e-4, 8e-5, 6e-5, 4e-5, 2e-5, 0.0])


@pytest.mark.backend
def test_state_round_trip_restores_networks_optimizers_and_random_draws():
    blurred, sharp = _pairs()
    trainer = _trainer("wgan-gp")
    trainer.train_on_batch(blurred, sharp)
    state = trainer.get_state()
    expected_logs = trainer.train_on_batch(blurred, sharp)
    expected = list(_snapshot(trainer.generator).values())

    other = _trainer("wgan-gp")
    other.set_state(state)
    assert other.train_on_batch(blurred, sharp) == expected_logs
    # by position: the dropout seed variable's name carries a process-wide counter
    restored = list(_snapshot(other.generator).values())
    assert all(np.array_equal(a, b) for a, b in zip(expected, restored, strict=True))


@pytest.mark.backend
def test_batch_norm_recalibration_makes_inference_match_the_batch_statistics():
    keras.utils.set_random_seed(0)
    generator = generator_model(n_filters=4, n_blocks=1, dropout_rate=0)
    trainable = [keras.ops.convert_to_numpy(v.value).copy() for v in generator.trainable_variables]
    blurred, _ = _pairs(n=3)
    # untouched moving statistics (mean 0, variance 1) give an output unlike the batch's own
    inference = keras.ops.convert_to_numpy(generator(blurred, training=False))
    training = keras.ops.convert_to_numpy(generator(blurred, training=True))
    assert np.abs(inference - training).max() > 1e-2

    assert recalibrate_batch_norm(generator, [blurred]) == 1
    inference = keras.ops.convert_to_numpy(generator(blurred, training=False))
    np.testing.assert_allclose(inference, training, atol=1e-4)
    for before, variable in zip(trainable, generator.trainable_variables, strict=True):
        np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(variable.value))
    assert generator.get_layer("head_norm").momentum == 0.99  # restored


@pytest.mark.backend
def test_batch_norm_recalibration_averages_the_batch_statistics():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="norm")(inputs))
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=k, size=(2, 4, 4, 2)).astype("float32") for k in range(3)]
    recalibrate_batch_norm(model, batches)
    expected_mean = np.mean([b.mean(axis=(0, 1, 2)) for b in batches], axis=0)
    expected_variance = np.mean([b.var(axis=(0, 1, 2)) for b in batches], axis=0)
    norm = model.get_layer("norm")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm.moving_mean), expected_mean, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm.moving_variance), expected_variance, rtol=1e-5)
