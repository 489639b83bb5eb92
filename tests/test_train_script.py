"""scripts/train.py and deblurgan.training_loop end to end, with tiny networks and generated pairs."""

import csv
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_script, load_script
from PIL import Image

import deblurgan
from deblurgan import run_directory, training_loop
from deblurgan.cli import FlagNames, flag_message
from deblurgan.config import FLAT_NAMES, SECTIONS, TrainingConfig
from deblurgan.errors import DeblurGANError
from deblurgan.training import DeblurGANTrainer
from deblurgan.training_loop import TrainingOptions, resume_training, train

REPO = Path(__file__).resolve().parents[1]
TINY = dict(
    batch_size=2, crop_size=32, n_filters=4, n_blocks=1, critic_filters=4, critic_updates=2,
    content_loss="l1", val_images=2, workers=0, progress=False,
)  # fmt: skip
TINY_ARGS = [
    "--batch_size", "2", "--crop_size", "32", "--n_filters", "4", "--n_blocks", "1",
    "--critic_filters", "4", "--critic_updates", "2", "--content_loss", "l1", "--val_images", "2",
    "--no_progress",
]  # fmt: skip


def _write_pairs(folder, n, size=(40, 48), seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        sharp = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        sharp = np.kron(sharp, np.ones((8, 8, 1), dtype=np.uint8))
        blurred = ((sharp.astype(np.float32) + np.roll(sharp, 3, axis=1)) / 2).astype(np.uint8)
        for sub, image in (("A", blurred), ("B", sharp)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / sub / f"pair_{i:02d}.png")


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "images"
    _write_pairs(root / "train", 6)
    _write_pairs(root / "test", 2, seed=1)
    return root


def _run_script(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def _critic_free(tiny, gan_mode="none"):
    """``tiny`` (TINY or TINY_ARGS) without its critic options where ``gan_mode`` has no critic,
    which a run refuses."""
    if gan_mode != "none":
        return tiny
    if isinstance(tiny, dict):
        return {k: v for k, v in tiny.items() if not k.startswith("critic_")}
    dropped = {i + j for i, arg in enumerate(tiny) if arg.startswith("--critic_") for j in (0, 1)}
    return [arg for i, arg in enumerate(tiny) if i not in dropped]


def _options(data_dir, tmp_path, name="run", **overrides):
    values = _critic_free(TINY, overrides.get("gan_mode")) | overrides
    if "sharp_dir" not in overrides:  # which has no use for data_dir (refused)
        values["data_dir"] = str(data_dir)
    return TrainingOptions(
        weights_dir=str(tmp_path / name / "weights"), log_dir=str(tmp_path / name / "logs"), **values
    )


def _generator_weights(weights_dir, epoch):
    (path,) = Path(weights_dir).glob(f"generator_{epoch}_*.h5")
    return deblurgan.load_generator(path).get_weights()


def _assert_same_weights(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_two_epoch_run_writes_exactly_the_expected_files_then_resume_continues(data_dir, tmp_path):
    weights, logs = tmp_path / "weights", tmp_path / "logs"
    common = ["--data_dir", str(data_dir), "--weights_dir", str(weights), "--log_dir", str(logs), *TINY_ARGS]
    result = _run_script("--n_epochs", "2", *common)
    assert result.returncode == 0, result.stderr

    names = sorted(p.name for p in weights.iterdir() if p.name != ".lock")  # (held while it ran)
    assert len(names) == 6
    assert names[:2] == ["discriminator_0.h5", "discriminator_1.h5"]
    assert names[2].startswith("generator_0_") and names[3].startswith("generator_1_")
    assert names[4:] == ["options.json", "training_state.npz"]
    for name in names[2:4]:
        loss = float(name.split("_", 2)[2].removesuffix(".h5"))
        assert loss > 0
        assert deblurgan.load_generator(weights / name).output_shape == (None, None, None, 3)
    deblurgan.load_critic(weights / "discriminator_1.h5")
    options = json.loads((weights / "options.json").read_text())
    assert options["critic"]["gan_mode"] == "wgan" and options["critic"]["architecture"] == "sicara"
    assert options["loss"]["content"] == "l1" and options["generator"]["n_filters"] == 4
    with open(logs / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"generator/content", "generator/adversarial", "critic/wasserstein", "val/psnr"} <= set(rows[0])
    assert list(logs.glob("events.out.tfevents.*"))
    state = np.load(weights / "training_state.npz")
    assert int(state["run/epoch"]) == 2
    generator_steps = int(state["generator_optimizer/0"])  # the Adam iteration counter
    assert generator_steps == 2 * 3  # 6 pairs / batch 2 = 3 steps per epoch

    result = invoke_script("train", "--n_epochs", "3", "--resume", *common)  # in-process: seconds less
    assert result.returncode == 0, result.stderr
    assert "resuming at epoch 2" in result.stdout
    assert len(list(weights.glob("generator_2_*.h5"))) == 1
    state = np.load(weights / "training_state.npz")
    assert int(state["run/epoch"]) == 3
    assert int(state["generator_optimizer/0"]) == generator_steps + 3  # the saved optimizer went on
    with open(logs / "losses.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2"]
    result = invoke_script("train", "--n_epochs", "3", "--resume", *common)  # a finished run
    assert result.returncode == 0, result.stderr
    assert f"nothing to do: {weights} already holds 3 epochs, --n_epochs 3; a larger one" in result.stdout


@pytest.mark.slow
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(data_dir, tmp_path):
    gan_mode = "wgan-gp"  # the penalty's random draws; the Ctrl-C tests below resume the default wgan
    train(_options(data_dir, tmp_path, "straight", n_epochs=3, gan_mode=gan_mode))
    train(_options(data_dir, tmp_path, "resumed", n_epochs=2, gan_mode=gan_mode))
    resume_training(_options(data_dir, tmp_path, "resumed", n_epochs=3, gan_mode=gan_mode))
    _assert_same_weights(
        _generator_weights(tmp_path / "straight" / "weights", 2),
        _generator_weights(tmp_path / "resumed" / "weights", 2),
    )


@pytest.mark.slow
def test_ctrl_c_saves_a_state_that_resumes_mid_epoch_exactly(data_dir, tmp_path, monkeypatch):
    train(_options(data_dir, tmp_path, "straight", n_epochs=2))
    original = DeblurGANTrainer.train_on_batch
    calls = {"n": 0}

    def interrupt_at_fifth_step(self, blurred, sharp, *args):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 1, batch 1
            raise KeyboardInterrupt
        return original(self, blurred, sharp, *args)

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", interrupt_at_fifth_step)
    with pytest.raises(KeyboardInterrupt):
        train(_options(data_dir, tmp_path, "interrupted", n_epochs=2))
    weights = tmp_path / "interrupted" / "weights"
    assert (weights / "generator_1_interrupted.h5").is_file()
    state = dict(np.load(weights / "training_state.npz"))
    assert (int(state["run/epoch"]), int(state["run/batch"])) == (1, 1)
    elapsed = json.loads(str(state["run/elapsed"]))  # the epoch's time before the interruption
    assert 0 < elapsed["cpu_seconds"] < 600 and 0 < elapsed["seconds"] < 600
    # an hour more of it: the resumed epoch's row must count it (as on a slow machine)
    state["run/elapsed"] = np.array(json.dumps({"seconds": 3600.0, "cpu_seconds": 7200.0}))
    sums = json.loads(str(state["run/sums"]))  # (sum, count) of each term over the batch before
    assert {count for _, count in sums.values()} == {1}
    # as states saved before the counts held them (sums alone): the same means follow
    state["run/sums"] = np.array(json.dumps({name: total for name, (total, _) in sums.items()}))
    np.savez(weights / "training_state.npz", **state)

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", original)
    resume_training(_options(data_dir, tmp_path, "interrupted", n_epochs=2))
    assert not (weights / "generator_1_interrupted.h5").exists()  # superseded by the finished epoch
    with open(tmp_path / "interrupted" / "logs" / "losses.csv") as f:
        row = list(csv.DictReader(f))[-1]
    assert row["epoch"] == "1"
    assert 3600 < float(row["seconds"]) < 4200 and 7200 < float(row["cpu_seconds"]) < 7800
    # the resumed epoch's loss means cover the batches before the interruption too
    straight_name = next((tmp_path / "straight" / "weights").glob("generator_1_*.h5")).name
    assert next(weights.glob("generator_1_*.h5")).name == straight_name
    _assert_same_weights(
        _generator_weights(tmp_path / "straight" / "weights", 1), _generator_weights(weights, 1)
    )


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
    data_dir, tmp_path, monkeypatch
):
    original = DeblurGANTrainer.train_on_batch
    calls = {"n": 0}

    def nan_in_second_epoch(self, blurred, sharp, *args):
        calls["n"] += 1
        logs = original(self, blurred, sharp, *args)
        if calls["n"] == 4:
            logs["generator/content"] = float("nan")
        return logs

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", nan_in_second_epoch)
    options = _options(data_dir, tmp_path, n_epochs=3, gan_mode="none")
    with pytest.raises(DeblurGANError, match=r"generator/content became nan at epoch 1, batch 0") as error:
        train(options)
    weights = Path(options.run.weights_dir)
    # "...; lower the learning rate (--lr ...), or resume" read as if resuming as it was would do
    kept = f"the last good checkpoint in {weights} is kept; resume with a lower learning rate (--lr ...)"
    assert flag_message(error.value).endswith(kept)
    assert [p.name.split("_")[1] for p in weights.glob("generator_*.h5")] == ["0"]
    assert int(np.load(weights / "training_state.npz")["run/epoch"]) == 1
    calls["n"] = 3  # the next step's loss is NaN: in epoch 0, before any checkpoint
    early = r"at epoch 0, batch 0; training stopped and .* holds no checkpoint yet"
    with pytest.raises(DeblurGANError, match=early) as error:
        train(_options(data_dir, tmp_path, "early", n_epochs=3, gan_mode="none"))
    assert flag_message(error.value).endswith(
        "start again with a lower learning rate (--lr ...)"
    )  # no resume


def test_one_epoch_of_ragan_with_frequency_separation_then_resume_rules(data_dir, tmp_path):
    """--gan_mode ragan-ls --critic_input highpass --lowpass_weight 1: terms logged, critic saved."""
    dsgan = dict(gan_mode="ragan-ls", critic_input="highpass", lowpass_weight=1.0)
    (row,) = train(_options(data_dir, tmp_path, n_epochs=1, **dsgan))
    assert {"critic/relativistic", "generator/adversarial", "generator/lowpass", "val/psnr"} <= set(row)
    assert "critic/wasserstein" not in row
    expected_total = 100 * row["generator/content"] + row["generator/adversarial"] + row["generator/lowpass"]
    assert row["generator/total"] == pytest.approx(expected_total, rel=1e-4)
    weights = tmp_path / "run" / "weights"
    critic = deblurgan.load_critic(weights / "discriminator_0.h5")
    assert [layer.name for layer in critic.layers] == ["image", "highpass", "critic"]
    options = json.loads((weights / "options.json").read_text())
    assert (options["critic"]["input"], options["critic"]["architecture"]) == ("highpass", "patchgan")
    with pytest.raises(DeblurGANError, match=r"critic.input='highpass' \(now 'image'\)"):
        resume_training(_options(data_dir, tmp_path, n_epochs=2, **{**dsgan, "critic_input": "image"}))


@pytest.mark.parametrize("gan_mode", ["none", "wgan-gp"])
def test_one_epoch_of_the_multiscale_generator_writes_a_generator_that_deblurs(data_dir, tmp_path, gan_mode):
    multiscale = dict(architecture="multiscale", n_scales=2, kernel_size=3, content_loss="auto")
    (row,) = train(_options(data_dir, tmp_path, n_epochs=1, gan_mode=gan_mode, **multiscale))
    assert row["generator/content"] > 0 and row["val/psnr"] > 0
    weights = tmp_path / "run" / "weights"
    options = json.loads((weights / "options.json").read_text())
    assert options["generator"]["architecture"] == "multiscale" and options["loss"]["content"] == "mse"
    (checkpoint,) = weights.glob("generator_0_*.h5")
    generator = deblurgan.load_generator(checkpoint)
    assert [tuple(o.shape) for o in generator.outputs] == [(None, None, None, 3), (None, None, None, 3)]
    blurred = np.asarray(Image.open(data_dir / "test" / "A" / "pair_00.png"), "float32") / 255
    restored = deblurgan.deblur_array(generator, blurred, precision="fp32")  # the finest output, in [0, 1]
    finest = np.asarray(generator(blurred[None] * 2 - 1)[0])[0]
    np.testing.assert_allclose(restored, np.clip((finest + 1) / 2, 0, 1), atol=1e-5)


def test_fresh_run_refuses_to_overwrite_an_earlier_run(data_dir, tmp_path):
    train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none"))
    expected = "holds an earlier run .*; resume it or choose a new folder"
    with pytest.raises(DeblurGANError, match=expected) as error:
        train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none"))
    assert flag_message(error.value).startswith("--weights_dir ")
    # nor another run's log: the default logs/ is shared, and its losses.csv was replaced unnoticed
    logs = tmp_path / "run" / "logs"
    before = (logs / "losses.csv").read_bytes()
    new = TrainingOptions(
        data_dir=str(data_dir), weights_dir=str(tmp_path / "new"), log_dir=str(logs),
        **{**_critic_free(TINY), "n_epochs": 1, "gan_mode": "none"},
    )  # fmt: skip
    with pytest.raises(DeblurGANError) as error:
        train(new)
    assert flag_message(error.value) == (
        f"--log_dir {logs}: holds an earlier run (losses.csv); resume it or choose a new folder"
    )
    assert (logs / "losses.csv").read_bytes() == before and not (tmp_path / "new").exists()


def test_a_data_dir_without_pairs_names_both_layouts_and_the_sharp_photos_option(tmp_path, monkeypatch):
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    # said before content="auto" looks for the VGG weights, which may wait on the network
    monkeypatch.setattr(deblurgan.losses, "imagenet_weights_path", lambda network: pytest.fail(network))
    with pytest.raises(DeblurGANError, match="expected .*train/A and .*train/B") as error:
        train(_options(nothing, tmp_path, n_epochs=1, gan_mode="none", content_loss="auto"))
    shown = flag_message(error.value)
    assert shown.startswith(f"--data_dir {nothing}: ")
    assert shown.endswith("or pass --sharp_dir PHOTOS (sharp photos)")


def test_training_and_validation_images_over_max_image_pixels_are_left_out(data_dir, tmp_path, caplog):
    for split in ("train", "test"):  # one pair of each larger than the 40x48 others
        _write_pairs(tmp_path / "big" / split, 1, size=(64, 64))
        for side in ("A", "B"):
            (tmp_path / "big" / split / side / "pair_00.png").rename(data_dir / split / side / "big.png")
    with caplog.at_level(logging.WARNING):
        rows = train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none", max_image_pixels=40 * 48))
    assert "validation leaves out big.png: " in caplog.text
    assert "64x64 pixels, over max_image_pixels=1,920" in caplog.text
    assert "skipping " in caplog.text and "1 unreadable or oversized images were skipped" in caplog.text
    # the error itself, not its text, so that scripts show it with flags (cli.FlagNames)
    (skipped,) = [r for r in caplog.records if r.getMessage().startswith("skipping image pair")]
    assert isinstance(skipped.args[-1], DeblurGANError), skipped.args
    assert np.isfinite(rows[0]["val/psnr"])  # from the readable one of the first two (val_images=2)
    # train.py's warnings name the flag, as its errors do
    result = invoke_script(
        "train", "--data_dir", data_dir, "--weights_dir", tmp_path / "w", "--log_dir", tmp_path / "l",
        *_critic_free(TINY_ARGS), "--gan_mode", "none", "--n_epochs", "1", "--max_image_pixels", 40 * 48,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "validation leaves out" in line]
    assert line.endswith("64x64 pixels, over --max_image_pixels 1,920; raise the limit if it is a real "
                         "photo (about 20 bytes of memory per pixel), or remove it"), line  # fmt: skip


def test_a_validation_pair_of_two_sizes_is_left_out_by_name_and_the_epoch_is_saved(
    data_dir, tmp_path, caplog
):
    """Before: the epoch trained, then its validation failed in 'images differ in shape' with no file
    named, and no checkpoint or state was written; scripts/test.py leaves such a pair out."""
    _write_pairs(tmp_path / "odd", 1, size=(32, 40))
    odd = data_dir / "test" / "B" / "odd.png"
    (tmp_path / "odd" / "B" / "pair_00.png").rename(odd)
    (data_dir / "test" / "A" / "pair_00.png").rename(data_dir / "test" / "A" / "odd.png")
    (data_dir / "test" / "B" / "pair_00.png").unlink()
    with caplog.at_level(logging.WARNING):
        rows = train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none", val_images=2))
    assert (
        f"validation leaves out odd.png: {data_dir / 'test' / 'A' / 'odd.png'} is 48x40 but {odd} is 40x32"
        in (caplog.text)
    )
    assert np.isfinite(rows[0]["val/psnr"])  # from the other pair
    assert list((tmp_path / "run" / "weights").glob("generator_0_*.h5"))


def test_a_file_given_as_a_run_folder_is_one_line(data_dir, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    options = _options(data_dir, tmp_path)
    for name in ("weights_dir", "log_dir"):
        for folder, why in ((a_file, "is a file"), (a_file / "sub", f"{a_file} is a file")):
            with pytest.raises(DeblurGANError) as error:
                train(
                    dataclasses.replace(options, run=dataclasses.replace(options.run, **{name: str(folder)}))
                )
            expected = f"--{name} {folder}: cannot write there ({why}); choose another folder"
            assert flag_message(error.value) == expected
    assert a_file.read_text() == "keep me"
    assert not (tmp_path / "run").exists()  # refused before any folder is made


def test_init_generator_must_be_the_same_network(data_dir, tmp_path):
    from deblurgan.checkpoints import save_model
    from deblurgan.training_loop import initial_generator

    start = tmp_path / "start.h5"
    save_model(initial_generator(_options(data_dir, tmp_path, seed=7, gan_mode="none")), start)
    started = initial_generator(_options(data_dir, tmp_path, gan_mode="none", init_generator=str(start)))
    _assert_same_weights(started.get_weights(), deblurgan.load_generator(start).get_weights())

    other = _options(data_dir, tmp_path, "other", gan_mode="none", init_generator=str(start), n_blocks=2)
    with pytest.raises(DeblurGANError, match="a different network from this run's generator") as error:
        train(other)
    assert flag_message(error.value).startswith(f"--init_generator {start}: a different network")
    assert not (tmp_path / "other").exists()  # refused before any file is written
    wider = _options(data_dir, tmp_path, "wider", gan_mode="none", init_generator=str(start), n_filters=8)
    with pytest.raises(DeblurGANError, match=r"generator \((\d+) weights, some of other shapes\)"):
        train(wider)  # as many weights, wider ones
    # the same weights, another output mode: it had started from them in silence
    clip = _options(
        data_dir, tmp_path, "clip", gan_mode="none", init_generator=str(start), output_mode="clip"
    )
    with pytest.raises(DeblurGANError, match=r"generator \(the file's GlobalSkip mode 'average' vs 'clip'\)"):
        train(clip)


def test_resume_with_other_options_is_refused(data_dir, tmp_path):
    train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none"))
    match = r"options.json: the run was started with data.crop_size=32 \(now 24\)"
    with pytest.raises(DeblurGANError, match=match) as error:
        resume_training(_options(data_dir, tmp_path, n_epochs=2, gan_mode="none", crop_size=24))
    assert str(error.value).endswith("or start a new run with another run.weights_dir=FOLDER")
    shown = flag_message(error.value)  # as train.py prints it: the flags the user typed
    assert "the run was started with --crop_size 32 (now 24); " in shown
    assert shown.endswith("or start a new run with another --weights_dir FOLDER")


def test_a_resume_names_the_run_options_that_changed(data_dir, tmp_path, caplog):
    train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none"))
    with caplog.at_level(logging.INFO, logger="deblurgan.training_loop"):
        resume_training(_options(data_dir, tmp_path, n_epochs=2, gan_mode="none", lr=5e-5))
    (line,) = [r.getMessage() for r in caplog.records if "changed" in r.getMessage()]
    assert line == "run options changed since the last start: n_epochs 1 -> 2, lr default -> 5e-05"


def test_a_second_run_of_a_folder_in_use_is_refused(data_dir, tmp_path, caplog):
    """A --resume typed while the run still trains used to train beside it, over the same files."""
    import fcntl

    train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none"))
    weights = tmp_path / "run" / "weights"
    with open(weights / ".lock") as held:  # as the running process holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DeblurGANError) as error:
            resume_training(_options(data_dir, tmp_path, n_epochs=2, gan_mode="none"))
    assert flag_message(error.value) == (
        f"--weights_dir {weights}: another training run is writing there; let it end (or stop it with "
        "Ctrl-C) first, or choose another folder"
    )
    resume_training(_options(data_dir, tmp_path, n_epochs=2, gan_mode="none"))  # free again
    logs = tmp_path / "run" / "logs"
    with open(logs / ".lock") as held, caplog.at_level(logging.INFO, logger="deblurgan.training_loop"):
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new run writing to the same log_dir
        with pytest.raises(DeblurGANError, match=f"run.log_dir={logs}: another training run is writing"):
            resume_training(_options(data_dir, tmp_path, n_epochs=3, gan_mode="none"))
    assert "resuming" not in caplog.text  # said only once the folders are the run's


def test_a_damaged_run_folder_is_one_line_on_resume(data_dir, tmp_path):
    """A partial copy to a new machine: BadZipFile and JSONDecodeError tracebacks before."""
    train(_options(data_dir, tmp_path, n_epochs=1, gan_mode="none"))
    weights = tmp_path / "run" / "weights"
    for name, truncated in (("training_state.npz", b"PK\x03\x04"), ("options.json", b'{"generator": ')):
        intact = (weights / name).read_bytes()
        (weights / name).write_bytes(truncated)
        with pytest.raises(DeblurGANError) as error:
            resume_training(_options(data_dir, tmp_path, n_epochs=2, gan_mode="none"))
        shown = flag_message(error.value)
        assert shown.startswith(f"--weights_dir {weights}: {name} cannot be read (")
        assert shown.endswith("copy it again from the run's machine, or start a new run in another folder")
        (weights / name).write_bytes(intact)
    resume_training(_options(data_dir, tmp_path, n_epochs=2, gan_mode="none"))  # whole again


def _one_line_error(result):
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_bad_data_gives_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    (empty / "A").mkdir(parents=True)
    (empty / "B").mkdir()
    line = _one_line_error(
        invoke_script("train", "--data_dir", str(empty), "--weights_dir", str(tmp_path / "w"), *TINY_ARGS)
    )
    assert line.startswith("error: ") and str(empty) in line

    unmatched = tmp_path / "unmatched"
    _write_pairs(unmatched, 3)
    (unmatched / "B" / "pair_01.png").rename(unmatched / "B" / "other.png")
    line = _one_line_error(
        invoke_script("train", "--data_dir", str(unmatched), "--weights_dir", str(tmp_path / "w"), *TINY_ARGS)
    )
    assert "pair_01.png" in line and "other.png" in line

    args = ["--data_dir", str(unmatched), "--val_dir", "nope", "--weights_dir", str(tmp_path / "w")]
    line = _one_line_error(invoke_script("train", *args, *TINY_ARGS))
    assert line.startswith("error: --val_dir nope: holds no A/ (blurred) and B/ (sharp) folders; pass such")

    args = ["--data_dir", str(unmatched), "--weights_dir", str(tmp_path / "none"), "--resume", *TINY_ARGS]
    line = _one_line_error(invoke_script("train", *args))
    expected = f"error: --weights_dir {tmp_path / 'none'}: nothing to resume (no training_state.npz and no "
    assert line.startswith(expected)


@pytest.mark.slow
def test_corrupt_file_is_skipped_and_counted(data_dir, tmp_path):
    (data_dir / "train" / "A" / "pair_03.png").write_bytes(b"not a png")
    result = _run_script(  # a real process: the warning's way to stderr is what is tested
        "--data_dir", str(data_dir), "--weights_dir", str(tmp_path / "w"), "--log_dir", str(tmp_path / "l"),
        "--n_epochs", "1", *TINY_ARGS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pair_03.png" in result.stderr
    assert "1 unreadable or oversized images were skipped" in result.stdout


@pytest.mark.slow
def test_readme_command_runs_on_the_embedded_dataset(tmp_path):
    """The documented command, full-size networks, on images/ (issue: sample dataset + training).

    Capped at 1 step (5 critic updates and a generator update): a whole epoch (24 such steps)
    takes minutes on an AVX2-only CI machine, and a second step tests nothing more here.
    """
    shutil.copytree(REPO / "images", tmp_path / "images")
    result = _run_script(
        "--n_epochs", "1", "--batch_size", "2", "--critic_updates", "5", "--no_progress",
        "--steps_per_epoch", "1", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (checkpoint,) = (tmp_path / "weights").glob("generator_0_*.h5")
    assert deblurgan.load_generator(checkpoint).count_params() == 11_399_171
    assert (tmp_path / "weights" / "discriminator_0.h5").is_file()
    assert (tmp_path / "logs" / "losses.csv").is_file()


@pytest.mark.slow
def test_issue_11_training_options_run_one_epoch_of_the_script_on_the_embedded_dataset(tmp_path):
    """--architecture multiscale, --gan_mode ragan, --critic_input highpass, --lowpass_weight together."""
    result = invoke_script(
        "train", "--data_dir", str(REPO / "images"), "--weights_dir", str(tmp_path / "w"),
        "--log_dir", str(tmp_path / "l"), *TINY_ARGS, "--n_epochs", "1", "--steps_per_epoch", "2",
        "--architecture", "multiscale", "--n_scales", "2", "--kernel_size", "3", "--gan_mode", "ragan",
        "--critic_input", "highpass", "--lowpass_weight", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (checkpoint,) = (tmp_path / "w").glob("generator_0_*.h5")
    assert len(deblurgan.load_generator(checkpoint).outputs) == 2
    deblurgan.load_critic(tmp_path / "w" / "discriminator_0.h5").get_layer("highpass")
    with open(tmp_path / "l" / "losses.csv") as f:
        (row,) = csv.DictReader(f)
    assert float(row["generator/lowpass"]) > 0 and float(row["critic/relativistic"]) > 0


def test_the_script_defaults_are_the_config_defaults():
    """train.py's click defaults, read from the command itself, give exactly TrainingConfig()."""
    script = load_script("train")
    # --resume and where to train (--devices, ...: deblurgan.distribution.start) are not config fields
    where = {"devices", "coordinator_address", "num_processes", "process_id", "coordinator_timeout"}
    defaults = {p.name: p.default for p in script.main.params if p.name not in {"resume", "help", *where}}
    assert TrainingConfig.from_flags(**defaults) == TrainingConfig()
    assert (defaults["n_epochs"], defaults["batch_size"], defaults["critic_updates"]) == (50, 2, 5)
    # and every config field has its flag (but the generator's input shape and model name)
    flat = {place: name for name, place in FLAT_NAMES.items()}
    fields = {flat.get((s, f.name), f.name) for s, c in SECTIONS.items() for f in dataclasses.fields(c)}
    assert set(defaults) == fields - {"input_shape", "name"}


def test_every_flag_reaches_its_config_field():
    flags = {"critic_filters": 8, "critic_updates": 3, "content_loss": "mse", "gradient_penalty_weight": 5.0}
    flags.update(vgg_input_scaling="none", preset="paper", norm="batch", sharp_dir="photos", n_epochs=3)
    flags.update(gan_mode="ragan-ls", critic_input="highpass", lowpass_weight=2.0)
    config = TrainingConfig.from_flags(**flags)
    assert (config.critic.gan_mode, config.critic.input) == ("ragan-ls", "highpass")
    assert config.loss.lowpass_weight == 2.0
    assert (config.critic.n_filters, config.critic.updates, config.loss.content) == (8, 3, "mse")
    assert (config.loss.gradient_penalty_weight, config.loss.vgg_input_scaling) == (5.0, "none")
    # the paper preset, with its norm overridden
    assert (config.generator.norm, config.generator.output_mode, config.generator.upsampling) == (
        "batch", "clip", "transpose",
    )  # fmt: skip
    assert (config.data.sharp_dir, config.run.n_epochs) == ("photos", 3)
    with pytest.raises(DeblurGANError, match="not a training option"):
        TrainingConfig.from_flags(n_epoch=3)


def test_bad_option_values_name_the_flag(data_dir, tmp_path):
    result = _run_script("--data_dir", str(data_dir), "--batch_size", "0", *TINY_ARGS[2:])
    assert _one_line_error(result) == "error: --batch_size 0: must be at least 1"
    result = invoke_script("train", "--data_dir", str(data_dir), "--critic_updates", "0")
    assert _one_line_error(result) == "error: --critic_updates 0: must be at least 1"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--gan_mode none --critic_updates 3", "--critic_updates 3: unused, --gan_mode 'none' has no"),
        ("--gan_mode none --critic_lr 1e-3", "--critic_lr 0.001: unused, --gan_mode 'none' has no"),
        ("--gan_mode wgan --gp_weight 5", "--gp_weight 5.0: unused, only --gan_mode 'wgan-gp' has"),
        ("--gan_mode wgan-gp --clip_value 0.1", "--clip_value 0.1: unused, only --gan_mode 'wgan-clip'"),
        (
            "--gan_mode wgan --critic_layers 2",  # the Sicara critic's depth is fixed
            "--critic_layers 2: unused, only the PatchGAN critic has layers to set (--critic 'patchgan'; "
            "'auto' is the Sicara critic for --gan_mode 'wgan'); leave it out",
        ),
        ("--content_loss l1 --vgg_network vgg19", "--vgg_network 'vgg19': unused, --content_loss 'l1'"),
        ("--content_loss l1 --fft_weight 3", "--fft_weight 3.0: unused, only --content_loss 'l1+fft'"),
        ("--resize 64 --crop_size 128", "--crop_size 128: unused, --resize 64 scales whole images"),
        # recorded in options.json for a network that has none (README said they were ignored)
        (
            "--architecture multiscale --norm instance",
            "--norm 'instance': unused, --architecture 'multiscale'",
        ),
        ("--architecture multiscale --dropout_rate 0.1", "--dropout_rate 0.1: unused, --architecture 'multi"),
        (
            "--architecture multiscale --preset paper",
            "--norm 'instance', --output_mode 'clip', --upsampling 'transpose': unused, --architecture "
            "'multiscale' (DeepDeblur's network) has no such part, by hand or preset; leave them out",
        ),
        # every one at once, not one per try
        (
            "--gan_mode none --gp_weight 5 --critic_lr 1e-3 --critic_updates 3",
            "--critic_updates 3, --critic_lr 0.001: unused, --gan_mode 'none' has no critic; "
            "--gp_weight 5.0: unused, only --gan_mode 'wgan-gp' has one; leave them out",
        ),
        (  # the warm-up was refused later, alone, after the others had been named
            "--gan_mode none --critic_updates 3 --critic_warmup_steps 5",
            "--critic_updates 3, --critic_warmup_steps 5: unused, --gan_mode 'none' has no critic; "
            "leave them out",
        ),
    ],
)
def test_options_the_run_would_not_use_are_refused(data_dir, tmp_path, flags, message):
    """They were saved in options.json and ignored, unlike --blur with pairs, which was refused."""
    run = ["--data_dir", data_dir, "--weights_dir", tmp_path / "w", "--log_dir", tmp_path / "l"]
    result = invoke_script("train", *map(str, run), *flags.split())
    assert _one_line_error(result).startswith(f"error: {message}")
    assert not (tmp_path / "w").exists()


FLAT_RUN = REPO / "tests" / "data" / "flat_run"
FLAT_RUN_ARGS = [
    "--steps_per_epoch", "2", "--batch_size", "2", "--crop_size", "64", "--n_filters", "4", "--n_blocks", "1",
    "--gan_mode", "none", "--content_loss", "l1", "--norm", "none", "--output_mode", "clip",
    "--dropout_rate", "0", "--zero_init_output", "--no_progress", "--workers", "0",
]  # fmt: skip


def _write_flat_run_pairs(folder):
    """The four 64x72 pairs the checked-in flat run was trained on."""
    rng = np.random.default_rng(0)
    for i in range(4):
        sharp = np.kron(rng.integers(0, 256, (8, 9, 3), dtype=np.uint8), np.ones((8, 8, 1), dtype=np.uint8))
        blurred = ((sharp.astype(np.float32) + np.roll(sharp, 3, axis=1)) / 2).astype(np.uint8)
        for sub, image in (("A", blurred), ("B", sharp)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / sub / f"pair_{i:02d}.png")


def test_a_run_written_with_flat_options_resumes_bit_identically(tmp_path):
    """A run directory of the flat-options era (tests/data/flat_run) continues exactly as it did then."""
    _write_flat_run_pairs(tmp_path / "data")
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("options.json", "training_state.npz"):
        shutil.copy(FLAT_RUN / name, weights / name)
    result = invoke_script(
        "train", "--data_dir", str(tmp_path / "data"), "--weights_dir", str(weights),
        "--log_dir", str(tmp_path / "logs"), "--n_epochs", "2", "--resume", *FLAT_RUN_ARGS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "resuming at epoch 1" in result.stdout
    expected = np.load(FLAT_RUN / "expected_after_epoch_1.npz")
    state = np.load(weights / "training_state.npz")
    assert int(state["run/epoch"]) == 2
    for name in expected.files:
        # Recorded on one CPU: another's oneDNN kernels (AVX-512 against AVX2) sum in another order,
        # which moves weights by ~1e-8 and Adam's moments by ~1e-4 of their size after this epoch; a
        # wrong resume moves them by far more. Bit-identical resume on one machine is tested above.
        if np.issubdtype(expected[name].dtype, np.floating):
            np.testing.assert_allclose(state[name], expected[name], rtol=1e-3, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(state[name], expected[name], err_msg=name)


def _start_script(*args, ignore_sigint=False):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # A shell starts background jobs with SIGINT ignored; the child inherits that.
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "train.py"), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ignore,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("signum", "ignore_sigint"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm", "sigint-in-background"],
)
def test_a_signal_saves_the_position_like_ctrl_c(data_dir, tmp_path, signum, ignore_sigint):
    weights = tmp_path / "weights"
    process = _start_script(
        "--data_dir", str(data_dir), "--weights_dir", str(weights), "--log_dir", str(tmp_path / "logs"),
        "--n_epochs", "1000", "--gan_mode", "none", "--val_images", "0", "--bn_recalibration_batches", "0",
        *_critic_free(TINY_ARGS), ignore_sigint=ignore_sigint,
    )  # fmt: skip
    for line in process.stdout:  # wait until the run is training (its first epoch is done)
        if line.startswith("epoch 0:"):
            break
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stdout
    state = np.load(weights / "training_state.npz")
    assert (int(state["run/epoch"]), int(state["run/batch"])) >= (1, 0)


def test_ctrl_c_to_a_background_run_while_it_starts_ends_it_quietly(data_dir, tmp_path):
    """A stop sent while the modules load (run-keeper's, seconds after a resume) used to be ignored
    in a background run, which then trained on to its last epoch."""
    weights = tmp_path / "weights"
    process = _start_script(
        "--data_dir", str(data_dir), "--weights_dir", str(weights), "--log_dir", str(tmp_path / "logs"),
        "--n_epochs", "1000", *TINY_ARGS, ignore_sigint=True,
    )  # fmt: skip
    deadline = time.monotonic() + 2  # well before TensorFlow is imported
    while not _catches(process.pid, signal.SIGINT) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the script's first statements have run
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGINT
    assert (stdout, stderr) == ("", "")
    assert not weights.exists() and not (tmp_path / "logs").exists()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one
def test_a_stop_swallowed_while_the_script_loaded_ends_it_before_any_work(data_dir, tmp_path):
    """The start-up handler's SystemExit, raised in a library's garbage-collection callback, is
    swallowed by Python: the run then trained on to its last epoch, as with run-keeper's stop."""

    class StopWhenFreed:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # lands here, as in JAX's gc callback

    script = load_script("train")
    inherited = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        script._exit_on_signals()
        StopWhenFreed()  # freed at once: its SystemExit goes nowhere
        weights = tmp_path / "weights"
        args = ["--data_dir", data_dir, "--weights_dir", weights, "--log_dir", tmp_path / "logs"]
        result = invoke_script("train", *args, *TINY_ARGS)
    finally:
        script._STOPS_WHILE_LOADING.clear()
        for signum, handler in inherited.items():
            signal.signal(signum, handler)
    assert result.returncode == 128 + signal.SIGTERM
    assert not weights.exists() and not (tmp_path / "logs").exists()


def _catches(pid, signum):
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask >> (signum - 1) & 1)


def test_a_run_killed_while_writing_its_state_resumes_from_the_last_complete_one(data_dir, tmp_path):
    """SIGKILL halfway through writing epoch 1's training_state.npz: epoch 0's state survives."""
    options = _options(data_dir, tmp_path, n_epochs=2, gan_mode="none")
    code = f"""
        import os, signal
        import numpy as np
        from deblurgan import run_directory
        from deblurgan.training_loop import TrainingOptions, train
        savez, calls = np.savez, []

        def savez_then_die(path, **arrays):
            calls.append(path)
            if len(calls) == 2:  # epoch 1's state: half a file, then the kill
                with open(path, "wb") as f:
                    f.write(b"PK" + bytes(1000))
                os.kill(os.getpid(), signal.SIGKILL)
            savez(path, **arrays)

        run_directory.np.savez = savez_then_die
        flags = {options.run.__dict__ | _critic_free(TINY) | dict(gan_mode="none", n_epochs=2)!r}
        train(TrainingOptions(**flags))
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    weights = Path(options.run.weights_dir)
    assert int(np.load(weights / "training_state.npz")["run/epoch"]) == 1
    assert list(weights.glob("generator_1_*.h5"))  # written before the state, superseded on resume

    resume_training(options)
    assert int(np.load(weights / "training_state.npz")["run/epoch"]) == 2
    assert len(list(weights.glob("generator_1_*.h5"))) >= 1


@pytest.fixture
def photos_dir(tmp_path):
    """fetch_photos.py's layout: sharp photos in photos/train, validation pairs in photos/val."""
    root = tmp_path / "photos"
    rng = np.random.default_rng(3)
    (root / "train").mkdir(parents=True)
    for i in range(3):
        photo = np.kron(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), np.ones((4, 4, 1), np.uint8))
        Image.fromarray(photo).save(root / "train" / f"photo_{i}.png")
    _write_pairs(root / "val", 2, seed=4)
    return root


@pytest.mark.slow
def test_sharp_photos_train_validate_and_resume_bit_identically(photos_dir, tmp_path):
    sharp = dict(sharp_dir=str(photos_dir / "train"), samples_per_photo=2, gan_mode="none")
    rows = train(_options(tmp_path / "unused", tmp_path, "straight", n_epochs=2, **sharp))
    assert [len(rows), rows[0]["val/psnr_blurred"] > 0] == [2, True]  # photos/val found by itself
    assert [row["steps"] for row in rows] == [3, 6]  # 3 photos x 2 samples / batch 2 per epoch
    assert all(row["cpu_seconds"] > 0 for row in rows)
    train(_options(tmp_path / "unused", tmp_path, "resumed", n_epochs=1, **sharp))
    resume_training(_options(tmp_path / "unused", tmp_path, "resumed", n_epochs=2, **sharp))
    _assert_same_weights(
        _generator_weights(tmp_path / "straight" / "weights", 1),
        _generator_weights(tmp_path / "resumed" / "weights", 1),
    )


def test_no_validation_folder_found_is_said(photos_dir, caplog):
    """The run trained without validation, and only the epochs' lines without val/psnr told."""
    from deblurgan.training_loop import _data_dirs

    shutil.rmtree(photos_dir / "val")
    config = TrainingConfig.from_flags(sharp_dir=str(photos_dir / "train"))
    with caplog.at_level(logging.INFO, logger="deblurgan.training_loop"):
        assert _data_dirs(config) == (None, None)
    record = next(r for r in caplog.records if r.name == "deblurgan.training_loop")
    FlagNames().filter(record)  # as train.py shows it
    missing = photos_dir / "val" / "A"
    assert record.getMessage() == f"no validation (no {missing}); --val_dir FOLDER validates on its pairs"


def test_the_blur_flag_chooses_the_on_the_fly_blur(photos_dir):
    from deblurgan.datasets import BLUR_PRESETS
    from deblurgan.training_loop import _training_dataset

    for blur in ("default", "sample"):
        flags = dict(sharp_dir=str(photos_dir / "train"), crop_size=16, blur=blur, workers=0)
        config = TrainingConfig.from_flags(**flags)
        options = _training_dataset(config.data, None, config.run).blur_options
        preset = {"noise_sigma": (0.0, 0.0), "jpeg_quality": None, **BLUR_PRESETS[blur]}
        assert {name: getattr(options, name) for name in preset} == preset
    with pytest.raises(DeblurGANError, match="data.blur=none: choose one of default, sample"):
        TrainingConfig.from_flags(blur="none")


def test_sharp_photos_refuse_pair_only_options_in_one_line(photos_dir, tmp_path):
    common = ["--sharp_dir", str(photos_dir / "train"), "--weights_dir", str(tmp_path / "w"), *TINY_ARGS]
    line = _one_line_error(invoke_script("train", "--resize", "32", *common))
    photos = photos_dir / "train"
    assert line == (
        f"error: --resize 32: unused, --sharp_dir {photos} trains on photos cropped to --crop_size 32, "
        "not on image pairs; leave it out"
    )
    from deblurgan.training_loop import _training_dataset

    config = TrainingConfig.from_flags(sharp_dir=str(photos), crop_size=None)
    with pytest.raises(DeblurGANError) as error:
        _training_dataset(config.data, None, config.run)
    assert (
        flag_message(error.value) == f"--crop_size None: the photos of --sharp_dir {photos} need a crop size"
    )
    # and the other way round: sharp-photo options with pairs were ignored, yet saved in options.json
    pairs = ["--data_dir", str(REPO / "images"), "--weights_dir", str(tmp_path / "w"), *TINY_ARGS]
    for flag, value, shown in (("--blur", "sample", "'sample'"), ("--samples_per_photo", "3", "3")):
        line = _one_line_error(invoke_script("train", *pairs, flag, value))
        assert line == (
            f"error: {flag} {shown}: unused, only the sharp photos of --sharp_dir PHOTOS are blurred on "
            "the fly, not image pairs; leave it out"
        )
    assert not (tmp_path / "w").exists()
    (tmp_path / "no_photos").mkdir()
    line = _one_line_error(
        invoke_script(
            "train", "--sharp_dir", str(tmp_path / "no_photos"), "--weights_dir", str(tmp_path / "w")
        )
    )
    assert line.startswith("error: --sharp_dir ") and "no images" in line
    line = _one_line_error(invoke_script("train", *common, "--data_dir", str(REPO / "images")))
    assert line == (  # saved in options.json and ignored, with no validation folder found
        f"error: --data_dir '{REPO / 'images'}': unused, --sharp_dir {photos} trains on its photos, blurred "
        "on the fly; leave it out"
    )


def _train_until_ctrl_c(options):
    """``train(options)``, which must end in KeyboardInterrupt. Ctrl-C raises, as in any run (train.py
    installs such a handler); pytest started as a background job of a non-interactive shell
    (`nohup .ci/run &`) inherits SIGINT ignored, and Python keeps that."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(options)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if inherited is None else inherited)


def test_the_interrupt_message_says_what_the_folder_holds(data_dir, tmp_path, monkeypatch, caplog):
    def ctrl_c(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", ctrl_c)
    options = _options(data_dir, tmp_path, n_epochs=2)
    with caplog.at_level(logging.WARNING, logger="deblurgan.training_loop"):
        _train_until_ctrl_c(options)
    weights = options.run.weights_dir
    assert caplog.messages[-1] == f"interrupted before the first step; nothing to resume in {weights}"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one
def test_a_ctrl_c_that_lands_in_a_finalizer_still_stops_the_run(data_dir, tmp_path, monkeypatch):
    """Python swallows a handler's KeyboardInterrupt raised inside an object's __del__ ("Exception
    ignored in: EagerResourceDeleter.__del__"): a Ctrl-C during validation, say, was then lost, and
    so was run-keeper's one SIGINT. (Steps hold signals until they end: none is lost there.)"""

    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # lands here, as in a freed TensorFlow tensor

    original = training_loop._validate

    def validation_with_a_ctrl_c(*args):
        monkeypatch.setattr(training_loop, "_validate", original)  # once
        Finalized()  # freed at once: its __del__ takes the Ctrl-C
        return original(*args)

    monkeypatch.setattr(training_loop, "_validate", validation_with_a_ctrl_c)
    inherited = signal.signal(signal.SIGINT, training_loop.request_stop)  # as train.py sets it
    try:
        with pytest.raises(KeyboardInterrupt):
            train(_options(data_dir, tmp_path, n_epochs=20))
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if inherited is None else inherited)
    state = np.load(tmp_path / "run" / "weights" / "training_state.npz")
    assert (int(state["run/epoch"]), int(state["run/batch"])) == (1, 1)  # after the next step


@pytest.mark.slow
def test_a_second_ctrl_c_while_the_state_is_saved_waits_for_the_save(data_dir, tmp_path, monkeypatch):
    """An impatient user presses Ctrl-C again while the first one's save is being written."""
    original_save = run_directory.save_model

    def save_then_second_ctrl_c(model, path):
        if path.name.endswith("_interrupted.h5"):
            signal.raise_signal(signal.SIGINT)  # lands in the middle of the interrupted save
        return original_save(model, path)

    original_step, steps = DeblurGANTrainer.train_on_batch, []

    def first_ctrl_c(self, *args):
        if steps:
            raise KeyboardInterrupt  # before the second step
        steps.append(1)
        return original_step(self, *args)

    monkeypatch.setattr(run_directory, "save_model", save_then_second_ctrl_c)
    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", first_ctrl_c)
    _train_until_ctrl_c(_options(data_dir, tmp_path, "impatient", n_epochs=2))
    weights = tmp_path / "impatient" / "weights"
    assert (weights / "generator_0_interrupted.h5").is_file()
    state = np.load(weights / "training_state.npz")
    assert (int(state["run/epoch"]), int(state["run/batch"])) == (0, 1)


def test_an_interrupt_right_after_an_update_still_resumes_exactly(data_dir, tmp_path, monkeypatch):
    """Ctrl-C landing after a step has changed the weights but before the loop counted it."""
    train(_options(data_dir, tmp_path, "straight", n_epochs=2))
    original = DeblurGANTrainer.train_on_batch
    calls = {"n": 0}

    def interrupt_after_the_fifth_update(self, blurred, sharp, *args):
        logs = original(self, blurred, sharp, *args)
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 1, batch 1: the weights are updated, the loop has not counted it
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, to this thread: handled here and now
        return logs

    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", interrupt_after_the_fifth_update)
    _train_until_ctrl_c(_options(data_dir, tmp_path, "interrupted", n_epochs=2))
    weights = tmp_path / "interrupted" / "weights"
    state = np.load(weights / "training_state.npz")
    assert (int(state["run/epoch"]), int(state["run/batch"])) == (1, 2)  # the fifth step is counted
    assert int(state["generator_optimizer/0"]) == 5
    monkeypatch.setattr(DeblurGANTrainer, "train_on_batch", original)
    resume_training(_options(data_dir, tmp_path, "interrupted", n_epochs=2))
    _assert_same_weights(
        _generator_weights(tmp_path / "straight" / "weights", 1), _generator_weights(weights, 1)
    )


def test_an_interrupt_during_the_end_of_an_epoch_resumes_exactly(data_dir, tmp_path, monkeypatch, caplog):
    """Ctrl-C after the epoch's last step, during the batch-norm recalibration's dropout draws or the
    validation: the resumed run redoes both and must go on with the dropout masks it would have."""
    train(_options(data_dir, tmp_path, "straight", n_epochs=2))
    original = training_loop._validate

    def interrupted_validation(*args):
        monkeypatch.setattr(training_loop, "_validate", original)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(training_loop, "_validate", interrupted_validation)
    _train_until_ctrl_c(_options(data_dir, tmp_path, "interrupted", n_epochs=2))
    weights = tmp_path / "interrupted" / "weights"
    state = np.load(weights / "training_state.npz")
    assert (int(state["run/epoch"]), int(state["run/batch"])) == (0, 3)  # after the epoch's 3 steps
    # said so, not "at epoch 0, batch 3" of a 3-batch epoch
    assert (
        f"interrupted after the last batch of epoch 0, before its checkpoint: state saved in {weights};"
        in (caplog.text)
    )
    resume_training(_options(data_dir, tmp_path, "interrupted", n_epochs=2))
    for epoch in (0, 1):
        _assert_same_weights(
            _generator_weights(tmp_path / "straight" / "weights", epoch), _generator_weights(weights, epoch)
        )


def test_a_ctrl_c_while_the_epoch_is_saved_keeps_its_row_of_losses(data_dir, tmp_path, monkeypatch):
    original_save = run_directory.save_model

    def ctrl_c_while_saving(model, path):
        if path.name.startswith("generator_0_"):
            signal.raise_signal(signal.SIGINT)  # held until the epoch's files are written
        return original_save(model, path)

    monkeypatch.setattr(run_directory, "save_model", ctrl_c_while_saving)
    _train_until_ctrl_c(_options(data_dir, tmp_path, "run", n_epochs=2))
    monkeypatch.setattr(run_directory, "save_model", original_save)
    resume_training(_options(data_dir, tmp_path, "run", n_epochs=2))
    with open(tmp_path / "run" / "logs" / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(row["val/psnr"] for row in rows)
