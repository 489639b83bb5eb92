"""benchmarks/bench_training.py and bench_inference.py: requests they cannot honour stop before any timing."""

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


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cases", "bogus"], "--cases: unknown bogus; choose from 720p, 12mp"),  # a bare KeyError before
        (["--engines", "bogus"], "--engines: unknown bogus"),
        (["--cases", "720p", "--precisions", "bogus"], "--precisions: unknown bogus"),
        (["--cases", ""], "nothing to time"),  # exited 0 in silence
        (["--cases", "720p", "--weight_path", "missing.h5"], "--weight_path missing.h5: no such file"),
    ],
)
def test_bench_inference_checks_its_requests_first(monkeypatch, capsys, flags, message):
    bench = load_script("bench_inference", "benchmarks")
    monkeypatch.setattr(sys, "argv", ["bench_inference.py", *flags])
    monkeypatch.setattr(bench, "run_case", lambda *args: pytest.fail("timed a case"))
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2 and message in capsys.readouterr().err
