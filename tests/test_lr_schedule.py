"""Learning-rate schedules (--lr_schedule, --warmup_steps, --critic_lr, the old --lr_decay) and their
resume; the critic warm-up (--critic_warmup_steps)."""

import csv
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from test_train_script import _critic_free

from deblurgan.cli import flag_message
from deblurgan.config import RunConfig, TrainingConfig, resumed_config
from deblurgan.errors import DeblurGANError
from deblurgan.training import DeblurGANTrainer, linear_decay_learning_rate, scheduled_learning_rate
from deblurgan.training_loop import TrainingOptions, resolve, resume_training, train

# Hand-derived factors: cos(pi/4) = 0.70711, cos(3 pi/4) = -0.70711, cos(11 pi/12) = -0.96593.
# 4 epochs x 4 steps = 16 steps, warmup 4: ramp 1/4..4/4, then the cosine over steps 4..16.
COSINE_WARMUP = {0: 0.25, 1: 0.5, 2: 0.75, 3: 1.0, 4: 1.0, 7: 0.853553, 10: 0.5, 13: 0.146447, 15: 0.017037}
# 5 epochs x 3 steps, warmup 2: epochs 0-2 flat (epoch < 2.5), epoch 3: 2/2.5, epoch 4: 1/2.5.
LINEAR_WARMUP = {0: 0.5, 1: 1.0, 2: 1.0, 8: 1.0, 9: 0.8, 11: 0.8, 12: 0.4, 14: 0.4}


def test_schedules_match_hand_computed_tables():
    for step, factor in COSINE_WARMUP.items():
        lr = scheduled_learning_rate(2e-4, step, 4, 4, "cosine", warmup_steps=4)
        assert lr == pytest.approx(2e-4 * factor, rel=1e-5), step
    for step, factor in LINEAR_WARMUP.items():
        assert scheduled_learning_rate(1.0, step, 3, 5, "linear", 2) == pytest.approx(factor), step
    assert [scheduled_learning_rate(1.0, s, 3, 5) for s in range(15)] == [1.0] * 15  # constant
    assert [scheduled_learning_rate(1.0, s, 3, 5, warmup_steps=3) for s in range(4)] == [1 / 3, 2 / 3, 1, 1]
    # no warmup: the cosine starts at the full rate and its last step is still above 0
    assert scheduled_learning_rate(1.0, 0, 4, 4, "cosine") == 1.0
    assert 0 < scheduled_learning_rate(1.0, 15, 4, 4, "cosine") < 0.01
    # linear without warmup is the old per-epoch rule, value for value
    for step in range(15):
        old = linear_decay_learning_rate(3e-4, step // 3, 5)
        assert scheduled_learning_rate(3e-4, step, 3, 5, "linear") == old
    with pytest.raises(DeblurGANError, match="lr_schedule='step': choose one of constant, linear, cosine"):
        scheduled_learning_rate(1.0, 0, 1, 1, "step")


def test_lr_decay_is_the_linear_schedule_and_earlier_options_files_resume():
    assert RunConfig(lr_decay=True).lr_schedule == "linear"
    assert RunConfig(lr_decay=True, lr_schedule="linear").lr_schedule == "linear"
    with pytest.raises(DeblurGANError) as error:
        RunConfig(lr_decay=True, lr_schedule="cosine")
    shown = "--lr_decay: means --lr_schedule linear; drop it for --lr_schedule cosine"
    assert flag_message(error.value) == shown
    with pytest.raises(DeblurGANError, match="run.clip_norm=0: must be above 0"):
        RunConfig(clip_norm=0)
    # an options.json written before these fields existed: their defaults are the old behaviour
    saved = resolve(TrainingConfig.from_flags(content_loss="l1", lr_decay=True))
    payload = json.loads(json.dumps(saved.to_dict()))
    for section, field in (("run", "lr_schedule"), ("run", "warmup_steps"), ("run", "clip_norm"),
                           ("loss", "fft_weight")):  # fmt: skip
        del payload[section][field]
    old = TrainingConfig.from_dict(payload)
    assert (old.run.lr_schedule, old.run.warmup_steps, old.run.clip_norm) == ("linear", 0, None)
    assert old.loss.fft_weight == 0.1
    current = TrainingConfig.from_flags(lr_decay=True, n_epochs=9)
    assert resumed_config(current, old, "options.json").run.lr_schedule == "linear"
    flat = TrainingConfig.from_dict({"lr_decay": True, "content_loss": "l1", "n_epochs": 4})  # flat, older
    assert flat.run.lr_schedule == "linear" and flat.run.n_epochs == 4


def _record_learning_rates(monkeypatch):
    """The generator optimizer's rate at every training step, as the step reads it."""
    rates, original = [], DeblurGANTrainer.train_on_batch

    def recording(self, blurred, sharp, *args):
        critic_lr = float(self.critic_optimizer.learning_rate) if self.critic is not None else None
        rates.append((float(self.generator_optimizer.learning_rate), critic_lr))
        return original(self, blurred, sharp, *args)

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", recording)
    return rates


def _tiny(tmp_path, **flags):
    data = tmp_path / "images" / "train"
    rng = np.random.default_rng(0)
    for i in range(8):  # batch 2: 4 steps per epoch
        for sub in ("A", "B"):
            (data / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / sub / f"{i}.png")
    values = dict(
        batch_size=2, crop_size=32, n_filters=4, n_blocks=1, critic_filters=4, critic_updates=1,
        content_loss="l1", val_images=0, workers=0, progress=False, bn_recalibration_batches=0,
        data_dir=str(data.parent), weights_dir=str(tmp_path / "weights"), log_dir=str(tmp_path / "logs"),
    )  # fmt: skip
    return TrainingOptions(**{**_critic_free(values, flags.get("gan_mode")), **flags})


def test_the_loop_sets_the_scheduled_rate_before_every_step_and_resumes_it(tmp_path, monkeypatch):
    rates = _record_learning_rates(monkeypatch)
    flags = dict(lr=2e-4, lr_schedule="cosine", warmup_steps=4, gan_mode="wgan-gp")
    train(_tiny(tmp_path, **flags, n_epochs=2))
    # a resume may lengthen the run: the schedule is then that of the 4-epoch run from step 8 on
    resume_training(_tiny(tmp_path, n_epochs=4, **flags))
    expected = [np.float32(2e-4 * COSINE_WARMUP[s]) for s in (0, 1, 2, 3)]
    assert [g for g, _ in rates[:4]] == pytest.approx(expected, rel=1e-6)
    assert [g for g, _ in rates[8:]] == pytest.approx(
        [scheduled_learning_rate(2e-4, s, 4, 4, "cosine", 4) for s in range(8, 16)], rel=1e-6
    )
    assert [g for g, _ in rates[10:11]] == pytest.approx([1e-4], rel=1e-6)  # step 10: half way
    assert all(g == c for g, c in rates)  # the critic moves with the generator


def test_the_critic_lr_follows_the_same_schedule(tmp_path, monkeypatch):
    rates = _record_learning_rates(monkeypatch)
    flags = dict(lr=2e-4, critic_lr=1e-3, lr_schedule="cosine", warmup_steps=4, gan_mode="wgan-gp")
    train(_tiny(tmp_path, **flags, n_epochs=4))
    factors = [scheduled_learning_rate(1.0, s, 4, 4, "cosine", 4) for s in range(16)]
    assert [g for g, _ in rates] == pytest.approx([np.float32(2e-4) * f for f in factors], rel=1e-6)
    assert [c for _, c in rates] == pytest.approx([np.float32(1e-3) * f for f in factors], rel=1e-6)


def _generator_values(trainer):
    return [np.array(v) for v in trainer.generator.get_weights()]


def test_critic_warm_up_steps_leave_the_generator_and_its_means_alone(tmp_path, monkeypatch):
    """Steps 0-4 (all of epoch 0 and the first of epoch 1) train the critic alone."""
    seen, original = [], DeblurGANTrainer.train_on_batch

    def recording(self, blurred, sharp, *args):
        before = _generator_values(self)
        logs = original(self, blurred, sharp, *args)
        seen.append((all(map(np.array_equal, before, _generator_values(self))), logs))
        return logs

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", recording)
    config = _tiny(tmp_path, gan_mode="wgan-gp", critic_warmup_steps=5, n_epochs=2, norm="none")
    train(config)
    assert [unchanged for unchanged, _ in seen] == [True] * 5 + [False] * 3
    assert all("generator/total" not in logs for _, logs in seen[:5])
    with open(tmp_path / "logs" / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["generator/total"] == "" and int(rows[0]["steps"]) == 0
    # epoch 1's means: the generator's over its 3 steps, the critic's over all 4
    generator_totals = [logs["generator/total"] for _, logs in seen[5:]]
    assert float(rows[1]["generator/total"]) == pytest.approx(np.mean(generator_totals), rel=1e-6)
    assert float(rows[1]["critic/total"]) == pytest.approx(
        np.mean([logs["critic/total"] for _, logs in seen[4:]]), rel=1e-6
    )
    assert int(rows[1]["steps"]) == 3
    # the generator is saved only for the epoch that trained it; both critics are saved
    assert sorted(p.name.split("_")[1] for p in (tmp_path / "weights").glob("generator_*.h5")) == ["1"]
    critics = sorted(p.name for p in (tmp_path / "weights").glob("discriminator_*.h5"))
    assert critics == ["discriminator_0.h5", "discriminator_1.h5"]
    with pytest.raises(DeblurGANError, match="critic.warmup_steps=5: gan_mode='none' has no critic"):
        resolve(TrainingConfig.from_flags(gan_mode="none", critic_warmup_steps=5, content_loss="l1"))


def test_a_resumed_linear_schedule_restarts_from_the_configured_rate(tmp_path, monkeypatch):
    """The saved optimizer holds the last step's (decayed) rate; the schedule starts from --lr."""
    rates = _record_learning_rates(monkeypatch)
    train(_tiny(tmp_path, gan_mode="none", lr=1e-3, lr_decay=True, n_epochs=4))  # epochs 0-3
    resume_training(_tiny(tmp_path, gan_mode="none", lr=1e-3, lr_decay=True, n_epochs=5))  # epoch 4
    factors = [1, 1, 1, 0.5, 0.4]  # n=4: epochs 2 (1.0) and 3 (0.5); n=5: epoch 4 is 1/2.5
    assert [g for g, _ in rates] == pytest.approx([np.float32(1e-3 * f) for f in factors for _ in range(4)])
    with open(tmp_path / "logs" / "losses.csv") as f:
        logged = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    assert logged == pytest.approx([1e-3 * f for f in factors], rel=1e-6)


@pytest.mark.slow
def test_cosine_warmup_and_clipping_resume_mid_epoch_bit_identically(tmp_path, monkeypatch):
    from deblurgan import load_generator

    flags = dict(lr_schedule="cosine", warmup_steps=3, clip_norm=0.05, gan_mode="wgan-gp", n_epochs=2)
    train(_tiny(tmp_path / "straight", **flags))
    interrupted = _tiny(tmp_path / "interrupted", **flags)
    calls, original = [], DeblurGANTrainer.train_on_batch

    def interrupt_at_step_6(self, blurred, sharp, *args):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return original(self, blurred, sharp, *args)

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", interrupt_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)
    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", original)
    resume_training(interrupted)
    weights = [
        load_generator(next((tmp_path / run / "weights").glob("generator_1_*.h5"))).get_weights()
        for run in ("straight", "interrupted")
    ]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert dataclasses.asdict(interrupted.run)["clip_norm"] == 0.05
