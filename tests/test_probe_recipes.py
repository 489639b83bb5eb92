"""benchmarks/probe_recipes.py: CPU budgets, the table, and one tiny probe end to end."""

import argparse
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

from deblurgan.config import TrainingConfig
from deblurgan.training_loop import build_trainer, initial_generator

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def probe():
    return load_script("probe_recipes", "benchmarks")


def test_the_table_reports_gain_per_cpu_hour(probe):
    results = [
        dict(
            variant="a",
            flags="--lr 2e-4",
            steps=40,
            cpu_minutes=30.0,
            psnr=25.5,
            start_psnr=24.0,
            stopped=True,
        ),
        dict(variant="b", flags="", steps=9, cpu_minutes=6.0, psnr=23.9, start_psnr=24.0, stopped=False),
    ]
    lines = probe.table(results).splitlines()
    assert len(lines) == 4  # header, rule, one row per variant
    assert lines[2] == "| a | `--lr 2e-4` | 40 | 30.0 | 25.50 | +1.50 | +3.00 |"  # 1.5 dB in half an hour
    assert lines[3] == "| b (ran to the end) | `` | 9 | 6.0 | 23.90 | -0.10 | -1.00 |"


def test_variant_flags_are_checked_against_train_py(probe, monkeypatch):
    params = probe.parse_flags(["--lr", "1e-3", "--content_loss", "l1+fft", "--lr", "5e-4"])
    assert (params["lr"], params["content_loss"]) == (5e-4, "l1+fft")  # the last flag wins
    with pytest.raises(ValueError, match="no_such_flag"):
        probe.parse_flags(["--no_such_flag", "1"])
    monkeypatch.setitem(probe.VARIANTS, "bogus", "--no_such_flag 1")
    with pytest.raises(SystemExit):
        probe.main(["--variants", "bogus", "--output_dir", "unused"])
    with pytest.raises(SystemExit):
        probe.main(["--variants", "no_such_variant"])


def test_cpu_seconds_of_a_busy_child_agree_with_its_rusage(probe):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\n"
    child = subprocess.Popen(
        [sys.executable, "-c", busy + "print('idle', flush=True)\ntime.sleep(0.5)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout.readline() == "idle\n"  # 1 s of CPU spent; asleep now
    seen = probe.cpu_seconds(child.pid)
    child.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert 1.0 <= total < 1.6
    assert abs(seen - total) < 0.1


def test_the_initial_generator_is_the_one_training_starts_from():
    config = TrainingConfig.from_flags(n_filters=4, n_blocks=1, gan_mode="none", content_loss="l1", seed=3)
    started = initial_generator(config).get_weights()
    for a, b in zip(started, build_trainer(config).generator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(w).sum() > 0 for w in started)


@pytest.mark.slow
def test_a_tiny_probe_runs_end_to_end_with_one_row_per_variant(probe, tmp_path, capsys, monkeypatch):
    base = "--n_filters 4 --n_blocks 1 --crop_size 32 --batch_size 2 --steps_per_epoch 10 --n_epochs 1000"
    base += " --workers 0 --norm batch --bn_recalibration_batches 2"  # recalibrated after the SIGINT
    variants = ["lr2e-4", "lr1e-3+cos+clip"]  # every variant is flags; the table test covers more rows
    monkeypatch.chdir(tmp_path)  # a relative --output_dir is this folder's, for the runs too
    settings = ["--cpu_minutes", "0.3", "--output_dir", "probes", "--base_flags", base]
    results = probe.main([
        *settings, "--variants", ",".join(variants), "--val_dir", str(REPO / "images" / "test"),
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert "avx2=" in out.splitlines()[0]
    rows = [line for line in out.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == variants
    for result in results:
        assert result["stopped"] and result["exit_code"] == 130  # SIGINT: train.py saved its position
        assert result["steps"] > 0 and 0.25 < result["cpu_minutes"] < 0.6
        assert result["psnr"] != result["start_psnr"]  # the trained generator was scored
    # a second call with the same settings reuses the results instead of training again
    again = [*settings, "--variants", "lr2e-4", "--val_dir", str(REPO / "images" / "test")]
    assert probe.main(again) == [results[0]]
    capsys.readouterr()
    with pytest.raises(SystemExit):  # a result of other settings is not shown as this probe's
        probe.main([*again, "--cpu_minutes", "5"])
    assert "variant lr2e-4: " in capsys.readouterr().err


def test_a_failed_variant_is_not_kept_as_its_result_and_runs_again_from_the_start(
    probe, tmp_path, monkeypatch
):
    """A failure was saved as result.json and shown as that variant's row on every later probe."""

    exit_codes = [1, probe.SIGINT_EXIT]

    def failing_run(command, seconds, log_path, desc=None):
        Path(log_path).write_text("error: boom")
        return exit_codes.pop(0), 6.0, False  # the second: a SIGINT the probe did not send

    monkeypatch.setattr(probe, "run_with_cpu_budget", failing_run)
    monkeypatch.setattr(probe, "_start_score", lambda *args: (25.0, 24.0))
    # an earlier attempt's run, which train.py would refuse to start over, and its scores, which
    # evaluate_folder would refuse to replace
    for partial in ("weights/training_state.npz", "scores/summary.json", "start_scores/summary.json"):
        (tmp_path / "v" / partial).parent.mkdir(parents=True)
        (tmp_path / "v" / partial).write_bytes(b"")
    args = argparse.Namespace(
        output_dir=str(tmp_path), cpu_minutes=0.1, val_dir=str(REPO / "images" / "test")
    )
    result = probe.probe("v", "--lr 1e-3", args, [])
    assert result["error"] == "error: boom" and not (tmp_path / "v" / "result.json").exists()
    assert not any((tmp_path / "v" / partial).exists() for partial in ("weights", "scores", "start_scores"))
    interrupted = probe.probe("v", "--lr 1e-3", args, [])
    assert "error" in interrupted and not (tmp_path / "v" / "result.json").exists()
    assert probe.table([interrupted]).splitlines()[2].startswith("| v (interrupted) |")


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--cpu_minutes", "-1"], "--cpu_minutes -1: must be above 0"),
     (["--val_dir", "nowhere"], f"--val_dir {Path('nowhere').resolve()}: holds no A/ and B/ pairs")],
)  # fmt: skip
def test_bad_options_stop_before_any_training(probe, flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        probe.main([*flags, "--variants", "lr2e-4"])
    assert stop.value.code == 2 and message in capsys.readouterr().err
