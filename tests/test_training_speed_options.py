"""Training speed options: --precision (Keras mixed policies, loss scaling) and --jit_compile."""

import dataclasses

import keras
import numpy as np
import pytest
from PIL import Image
from test_train_script import _critic_free

from deblurgan.checkpoints import load_generator
from deblurgan.config import RunConfig, TrainingConfig
from deblurgan.errors import DeblurGANError
from deblurgan.training_loop import build_trainer, resolve, train

TINY = dict(n_filters=4, n_blocks=1, critic_filters=4, critic_updates=1, crop_size=32, content_loss="l1")
TINY_GENERATOR = dict(norm="none", output_mode="clip", dropout_rate=0.0)  # no batch-size-dependent noise


def _batch(seed=0, size=32):
    rng = np.random.default_rng(seed)
    sharp = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    blurred = (0.5 * sharp + 0.5 * np.roll(sharp, 2, axis=2)).astype("float32")
    return blurred, sharp


def _trainer(precision="float32", gan_mode="wgan-gp", **flags):
    config = TrainingConfig.from_flags(
        gan_mode=gan_mode, precision=precision, **TINY, **TINY_GENERATOR, **flags
    )
    return build_trainer(resolve(config))


def _weights(model):
    return [keras.ops.convert_to_numpy(v.value) for v in model.weights]


@pytest.mark.backend
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_step_is_finite_and_close_to_the_float32_step(precision):
    reference, mixed = _trainer("float32"), _trainer(precision)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(_weights(reference.generator), _weights(mixed.generator), strict=True)
    )
    assert {v.dtype for v in mixed.generator.weights + mixed.critic.weights} == {"float32"}
    blurred, sharp = _batch()
    if precision == "mixed_float16":
        # Keras starts at a scale of 2**15, at which these float16 gradients overflow on TensorFlow:
        # the step is skipped and the scale halved (a few steps of a run); start where it fits instead.
        overflowing = _trainer(precision)
        start = _weights(overflowing.generator)
        overflowing.train_on_batch(blurred, sharp)
        skipped = all(
            np.array_equal(a, b) for a, b in zip(start, _weights(overflowing.generator), strict=True)
        )
        assert float(overflowing.generator_optimizer.dynamic_scale) == (2.0**14 if skipped else 2.0**15)
        for optimizer in (mixed.generator_optimizer, mixed.critic_optimizer):
            optimizer.dynamic_scale.assign(2.0**8)
    initial = _weights(mixed.generator)
    expected, logs = reference.train_on_batch(blurred, sharp), mixed.train_on_batch(blurred, sharp)
    assert logs.keys() == expected.keys()
    assert all(
        not np.array_equal(a, b) for a, b in zip(initial, _weights(mixed.generator), strict=True)
    )  # not skipped
    for name, value in logs.items():  # the loss terms, unscaled, within 16-bit rounding
        # The critic's input gradient (the penalty) goes through 2x2 instance-norm maps at this crop,
        # which amplify the rounding; the generator's terms are within a few percent.
        rel = 0.2 if name.startswith("critic/") else 0.05
        assert np.isfinite(value) and value == pytest.approx(expected[name], rel=rel, abs=0.05), name
    lr = float(reference.generator_optimizer.learning_rate)
    for model in ("generator", "critic"):
        before, after = _weights(getattr(reference, model)), _weights(getattr(mixed, model))
        differences = [np.abs(a - b).max() for a, b in zip(before, after, strict=True)]
        # Adam's first step moves each weight by at most lr: both steps land within 2 lr of each other.
        assert max(differences) <= 2 * lr + 1e-6, model
    if precision == "mixed_float16":  # the loss scale is part of the state (exact resume)
        assert isinstance(mixed.generator_optimizer, keras.optimizers.LossScaleOptimizer)
        # per optimizer: its scale, its step counter, and the wrapper's own iterations and rate
        assert len(mixed.get_state()) == len(reference.get_state()) + 2 * 4


@pytest.mark.backend
def test_a_mixed_bfloat16_run_writes_the_float32_generator_file(tmp_path):
    _write_pairs(tmp_path / "images", n_pairs=2)
    run = dict(data_dir=str(tmp_path / "images"), weights_dir=str(tmp_path / "weights"), n_epochs=1)
    run.update(log_dir=str(tmp_path / "logs"), workers=0, progress=False, val_images=0, batch_size=2)
    config = TrainingConfig.from_flags(
        gan_mode="none", precision="mixed_bfloat16", **_critic_free(TINY), **TINY_GENERATOR, **run
    )
    train(config)
    (path,) = (tmp_path / "weights").glob("generator_0_*.h5")
    loaded = load_generator(path)
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}
    # the float32 network: the same as one built in float32 and given these weights
    reference = build_trainer(resolve(dataclasses.replace(config, run=RunConfig()))).generator
    assert {layer.dtype_policy.name for layer in reference.layers} == {"float32"}
    reference.set_weights(loaded.get_weights())
    assert not np.array_equal(loaded.get_weights()[0], _trainer("float32").generator.get_weights()[0])
    blurred = _batch(seed=1)[0]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(blurred)), keras.ops.convert_to_numpy(reference(blurred)), atol=1e-6
    )


def test_a_mixed_float16_run_with_clip_norm_trains_through_its_skipped_steps(tmp_path):
    """Loss scaling starts too high and skips the first steps, whose gradient norm is inf: that
    stopped the run as "generator/grad_norm became nan; lower the learning rate"."""
    _write_pairs(tmp_path / "images", n_pairs=4)
    run = dict(data_dir=str(tmp_path / "images"), weights_dir=str(tmp_path / "weights"), n_epochs=1)
    run.update(log_dir=str(tmp_path / "logs"), workers=0, progress=False, val_images=0, batch_size=1)
    config = TrainingConfig.from_flags(
        gan_mode="wgan-gp", precision="mixed_float16", clip_norm=1.0, **TINY, **TINY_GENERATOR, **run
    )
    (row,) = train(config)
    assert row["steps"] < 4  # some were skipped (the scale fell), yet every logged mean is finite
    assert all(np.isfinite(value) for value in row.values()), row


def _write_pairs(folder, n_pairs, size=40):
    rng = np.random.default_rng(0)
    for name in ("A", "B"):
        (folder / name).mkdir(parents=True)
        for i in range(n_pairs):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")


def test_jit_compile_is_a_tri_state_run_option():
    assert TrainingConfig().run.jit_compile is None  # auto: the backend's norm
    assert TrainingConfig.from_flags(jit_compile=True).run.jit_compile is True
    with pytest.raises(DeblurGANError, match="run.precision=fp16: choose one of float32, mixed_bfloat16"):
        TrainingConfig.from_flags(precision="fp16")


@pytest.mark.backend
def test_an_xla_step_equals_the_plain_step():
    if keras.backend.backend() == "torch":
        with pytest.raises(DeblurGANError, match="jit_compile=True: not available on the torch backend"):
            _trainer(jit_compile=True)
        return
    reference, xla = _trainer(jit_compile=False), _trainer(jit_compile=True)
    blurred, sharp = _batch()
    expected, logs = reference.train_on_batch(blurred, sharp), xla.train_on_batch(blurred, sharp)
    assert logs == pytest.approx(expected, rel=1e-4, abs=1e-5)
    for a, b in zip(_weights(reference.generator), _weights(xla.generator), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)  # fused rounding; an Adam step moves a weight ~1e-4


@pytest.mark.backend
def test_a_resume_may_switch_precision_and_keeps_the_loss_scale():
    saved = _trainer("mixed_float16", gan_mode="none")
    saved.generator_optimizer.dynamic_scale.assign(64.0)
    saved.train_on_batch(*_batch())
    state = saved.get_state()
    same = _trainer("mixed_float16", gan_mode="none")
    same.set_state(state)
    assert float(same.generator_optimizer.dynamic_scale) == float(saved.generator_optimizer.dynamic_scale)
    for precision in ("float32", "mixed_bfloat16"):  # the networks and Adam's moments carry over
        other = _trainer(precision, gan_mode="none")
        other.set_state(state)
        for a, b in zip(_weights(other.generator), _weights(saved.generator), strict=True):
            np.testing.assert_array_equal(a, b)
        assert int(other.generator_optimizer.iterations) == 1
    back = _trainer("mixed_float16", gan_mode="none")
    back.set_state(_trainer("float32", gan_mode="none").get_state())  # the scale starts afresh
    assert float(back.generator_optimizer.dynamic_scale) == 2.0**15
