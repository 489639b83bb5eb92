"""benchmarks/bench_training.py: requests it cannot honour stop before anything is timed."""

import sys
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_training", "benchmarks")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--modes", "wgan,bogus"], "--modes: unknown bogus"),  # wgan was timed, then a traceback
        (
            ["--torch_reference", "--n_filters", "4"],
            "times the full-size networks",
        ),  # tiny vs full, as "same"
        (["--torch_reference", "--crop", "32"], "--crop 32: --torch_reference's PatchGAN critic needs"),
    ],
)
def test_impossible_requests_stop_before_any_timing(bench, monkeypatch, capsys, flags, message):
    monkeypatch.setattr(sys, "argv", ["bench_training.py", *flags])
    monkeypatch.setattr(bench, "keras_iteration_seconds", lambda *args: pytest.fail("timed a mode"))
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2 and message in capsys.readouterr().err
