"""The benchmark scripts: requests they cannot honour stop, in one line, before any timing."""

import sys
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


def _refusal(monkeypatch, capsys, script, flags, work):
    """The error output of benchmark ``script`` (an argparse one) run with ``flags``, which must exit
    2 before ``work``, its first costly function, runs."""
    bench = load_script(script, "benchmarks")
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *flags])
    monkeypatch.setattr(bench, work, lambda *args: pytest.fail(f"{script} ran {work}"))
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    return capsys.readouterr().err


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
def test_impossible_requests_stop_before_any_timing(monkeypatch, capsys, flags, message):
    assert message in _refusal(monkeypatch, capsys, "bench_training", flags, "keras_iteration_seconds")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--backends", "jax,torch"], "--backends jax,torch: unknown torch; choose from jax, tensorflow"),
        (["--batch_size", "3"], "--batch_size 3: give an even number (half on each process)"),
        (["--crop", "30"], "--crop 30: give a multiple of 4, at least 8"),
        (["--calls", "0"], "--calls 0 --steps 3 --warmup 20: 1, 1 and 0 at least"),
    ],
)
def test_bench_processes_checks_its_requests_first(monkeypatch, capsys, flags, message):
    assert message in _refusal(monkeypatch, capsys, "bench_processes", flags, "run_engine")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cases", "bogus"], "--cases: unknown bogus; choose from 720p, 12mp"),  # a bare KeyError before
        (["--engines", "bogus"], "--engines: unknown bogus"),
        (["--cases", "720p", "--precisions", "bogus"], "--precisions: unknown bogus"),
        (["--cases", ""], "nothing to time"),  # exited 0 in silence
        (["--cases", "720p", "--weight_path", "missing.h5"], "--weight_path missing.h5: no such file"),
        # each was a traceback of the first timing process
        (["--cases", "720p", "--precisions", "int8"], "--precisions int8: runs on the onnxruntime engine"),
        (["--cases", "720p", "--runs", "0"], "--runs 0: at least 1"),  # an UnboundLocalError
    ],
)
def test_bench_inference_checks_its_requests_first(monkeypatch, capsys, flags, message):
    assert message in _refusal(monkeypatch, capsys, "bench_inference", flags, "run_case")


def test_bench_inference_refuses_a_critic_file_before_any_timing(monkeypatch, capsys, tmp_path):
    from deblurgan.checkpoints import save_model
    from deblurgan.model import patchgan_critic_model

    critic = save_model(patchgan_critic_model(n_filters=4, n_layers=1), tmp_path / "critic.h5")
    flags = ["--cases", "720p", "--weight_path", str(critic)]
    error = _refusal(monkeypatch, capsys, "bench_inference", flags, "run_case")
    assert f"--weight_path {critic}: this is a critic (discriminator) file" in error


@pytest.mark.parametrize(
    ("flags", "message"),
    [  # every configuration failed in its own process, and the script exited 0
        (["--crop", "30"], "--crop 30: give a multiple of 4, at least 8"),
        (["--precisions", "mixed_bf16"], "--precisions: unknown mixed_bf16; choose from float32"),
        (["--backends", "foo"], "--backends: unknown foo; choose from tensorflow, jax"),
        (["--runs", "0"], "--runs 0 --warmup 1: at least 1 timed run"),
        (["--batch_sizes", "4,x"], "--batch_sizes 4,x: give positive whole numbers"),
    ],
)
def test_bench_train_step_checks_its_requests_first(monkeypatch, capsys, flags, message):
    assert message in _refusal(monkeypatch, capsys, "bench_train_step", flags, "run_configuration")


@pytest.mark.parametrize(
    ("script", "flags", "message"),
    [
        ("bench_data", ["--crop_size", "800"], "--crop_size 800: larger than the 1280x720 photos"),
        ("bench_data", ["--n_images", "1"], "--fly_batch_size 8: more than the 4 samples"),  # read 0/s
        ("bench_data", ["--fly_workers", "-1"], "-1 is not in the range x>=0"),
        ("bench_generator", ["--size", "100x7"], "100x7: the generator needs both sides positive multiples"),
        ("bench_generator", ["--size", "1280"], "'1280' is not WIDTHxHEIGHT"),  # a ValueError before
        ("bench_generator", ["--runs", "0"], "0 is not in the range x>=1"),  # the median of nothing
        ("bench_blur", ["--repeats", "0"], "0 is not in the range x>=1"),  # NaN per second
    ],
)
def test_click_benchmarks_refuse_impossible_sizes_before_any_work(monkeypatch, script, flags, message):
    from click.testing import CliRunner

    bench = load_script(script, "benchmarks")
    if script == "bench_data":  # its first piece of work
        monkeypatch.setattr(bench, "write_photo_like_pairs", lambda *args: pytest.fail("wrote photos"))
    result = CliRunner().invoke(bench.main, flags)
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--megapixels", "0"], "--megapixels: 0: must be above 0"),
        (["--max_pixels", "10"], "at least 16x16 pixels each"),  # "cannot write empty image" before
        (["--weight_path", "missing.h5"], "--weight_path missing.h5: no such file"),
    ],
)
def test_bench_huge_photo_checks_its_sizes_first(monkeypatch, capsys, flags, message):
    assert message in _refusal(monkeypatch, capsys, "bench_huge_photo", flags, "_synthetic_photo")


def test_bench_huge_photo_reports_a_failed_deblur_in_its_line(tmp_path, monkeypatch):
    bench = load_script("bench_huge_photo", "benchmarks")
    with pytest.raises(SystemExit) as stop:  # a CalledProcessError traceback before
        bench._peak_of([sys.executable, "-c", "import sys; sys.exit('error: photo.png: unreadable')"])
    assert stop.value.code == "scripts/deblur.py failed: error: photo.png: unreadable"
