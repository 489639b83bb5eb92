"""Gradient-norm clipping (--clip_norm) and the charbonnier and l1+fft content losses, against numpy."""

import keras
import numpy as np
import pytest

from deblurgan import losses
from deblurgan.config import TrainingConfig
from deblurgan.training import _Updater, value_and_grad
from deblurgan.training_loop import build_trainer

pytestmark = pytest.mark.backend


def _linear_model():
    """y = x W + b with fixed weights (3 inputs, 2 outputs)."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    model.set_weights([np.arange(6, dtype="float32").reshape(3, 2) / 10, np.array([0.1, -0.2], "float32")])
    return model


def _mse_loss(model):
    def loss_fn(trainable, non_trainable, other, x, t):
        y, non_trainable = model.stateless_call(trainable, non_trainable, x)
        loss = keras.ops.mean(keras.ops.square(y - t))
        return loss, ({"model/loss": loss}, non_trainable)

    return loss_fn


def _numpy_gradients(w, b, x, t):
    residual = x @ w + b - t  # d mean(r^2) / dy = 2 r / r.size
    dy = 2 * residual / residual.size
    return x.T @ dy, dy.sum(axis=0)


@pytest.mark.parametrize("clip_norm", [0.05, 100.0])
@pytest.mark.parametrize("loss_scaled", [False, True])
def test_clipping_scales_the_global_gradient_norm_as_numpy_does(clip_norm, loss_scaled):
    x = np.array([[1.0, -2.0, 0.5], [0.3, 0.8, -1.0]], "float32")
    t = np.array([[1.0, 0.0], [-1.0, 2.0]], "float32")
    model = _linear_model()
    w, b = (v.copy() for v in model.get_weights())
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    if loss_scaled:  # gradients of a loss scaled by 2**15: the norm and the clipping are of the unscaled
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    step = _Updater(_mse_loss(model), model, optimizer, clip_norm=clip_norm, name="model")
    logs = step(x, t)

    gw, gb = _numpy_gradients(w, b, x, t)
    norm = np.sqrt((gw**2).sum() + (gb**2).sum())
    factor = min(1.0, clip_norm / norm)
    assert float(logs["model/grad_norm"]) == pytest.approx(norm, rel=1e-5)
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w, w - factor * gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_b, b - factor * gb, rtol=1e-5, atol=1e-6)
    if clip_norm == 0.05:
        assert factor < 0.1  # the case really clips
        assert np.sqrt(((new_w - w) ** 2).sum() + ((new_b - b) ** 2).sum()) == pytest.approx(0.05, rel=1e-4)


def test_without_clip_norm_nothing_is_clipped_or_logged():
    model = _linear_model()
    step = _Updater(_mse_loss(model), model, keras.optimizers.SGD(1.0))
    logs = step(np.ones((1, 3), "float32"), np.zeros((1, 2), "float32"))
    assert set(logs) == {"model/loss"}


def test_clip_norm_reaches_both_updates_and_their_logs():
    config = TrainingConfig.from_flags(
        n_filters=4, n_blocks=1, critic_filters=4, critic_updates=1, crop_size=32, gan_mode="wgan-gp",
        content_loss="l1", clip_norm=1e-3,
    )  # fmt: skip
    trainer = build_trainer(config)
    rng = np.random.default_rng(0)
    blurred, sharp = (rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32") for _ in range(2))
    logs = trainer.train_on_batch(blurred, sharp)
    assert logs["generator/grad_norm"] > 1e-3 and logs["critic/grad_norm"] > 1e-3  # both were clipped


# ------------------------------------------------------------------------------------------ losses


def _images(seed, shape=(2, 8, 6, 3)):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def _numpy_fft_l1(y_true, y_pred):
    spectrum = np.fft.fft2((y_true - y_pred).astype("float64"), axes=(1, 2))  # per image and channel
    return (np.abs(spectrum.real).mean() + np.abs(spectrum.imag).mean()) / 2


def test_charbonnier_and_fft_losses_match_numpy():
    y_true, y_pred = _images(0), _images(1)
    charbonnier = np.sqrt((y_true.astype("float64") - y_pred) ** 2 + 1e-6).mean()
    assert float(losses.content_loss("charbonnier")(y_true, y_pred)) == pytest.approx(charbonnier, rel=1e-6)
    expected = _numpy_fft_l1(y_true, y_pred)
    assert float(losses.fft_l1_loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    l1 = np.abs(y_true - y_pred.astype("float64")).mean()
    l1_fft = float(losses.content_loss("l1+fft")(y_true, y_pred))
    assert l1_fft == pytest.approx(l1 + 0.1 * expected, rel=1e-5)
    assert float(losses.content_loss("l1+fft", fft_weight=0.5)(y_true, y_pred)) == pytest.approx(
        l1 + 0.5 * expected, rel=1e-5
    )
    # the unnormalized transform: a constant error of 1 is all DC, height * width at (0, 0)
    ones = np.ones((1, 8, 6, 3), "float32")
    assert float(losses.fft_l1_loss(ones, 0 * ones)) == pytest.approx(48 / 48 / 2)  # mean over 48 bins


def test_the_fft_loss_gradient_matches_finite_differences():
    y_true, y_pred = _images(2, (1, 6, 4, 2)), _images(3, (1, 6, 4, 2))
    loss = lambda p: (losses.fft_l1_loss(y_true, p), ())  # noqa: E731
    _, gradient = value_and_grad(loss, keras.ops.convert_to_tensor(y_pred))
    gradient = keras.ops.convert_to_numpy(gradient)
    eps = 1e-4
    for index in [(0, 0, 0, 0), (0, 2, 1, 1), (0, 5, 3, 0), (0, 3, 2, 1)]:
        up, down = y_pred.astype("float64"), y_pred.astype("float64")
        up[index] += eps
        down[index] -= eps
        numeric = (_numpy_fft_l1(y_true, up) - _numpy_fft_l1(y_true, down)) / (2 * eps)
        assert gradient[index] == pytest.approx(numeric, rel=1e-3, abs=1e-6), index
    assert np.abs(gradient).max() > 0


def test_l1_fft_training_logs_the_fft_term_and_weights_it_inside_the_content_weight():
    flags = dict(n_filters=4, n_blocks=1, crop_size=16, gan_mode="none", content_loss="l1+fft")
    flags.update(fft_weight=0.2, dropout_rate=0)
    trainer = build_trainer(TrainingConfig.from_flags(**flags))
    rng = np.random.default_rng(1)
    blurred, sharp = (rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32") for _ in range(2))
    restored = keras.ops.convert_to_numpy(trainer.generator(blurred, training=True))
    logs = trainer.train_on_batch(blurred, sharp)  # the losses of the weights before the update
    assert logs["generator/content"] == pytest.approx(np.abs(sharp - restored).mean(), rel=1e-4)
    assert logs["generator/fft"] == pytest.approx(_numpy_fft_l1(sharp, restored), rel=1e-4)
    content = logs["generator/content"] + 0.2 * logs["generator/fft"]
    assert logs["generator/total"] == pytest.approx(100 * content, rel=1e-5)
    charbonnier = build_trainer(TrainingConfig.from_flags(**{**flags, "content_loss": "charbonnier"}))
    objective = charbonnier.objective
    assert objective.content_loss is losses.charbonnier_loss and objective.fft_weight == 0
