import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import invoke_script
from infer_helpers import random_photo, tiny_generator
from PIL import Image
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deblurgan.checkpoints import save_model
from deblurgan.errors import DeblurGANError
from deblurgan.evaluate import evaluate_folder, format_summary_table
from deblurgan.inference import deblur_array

REPO = Path(__file__).resolve().parents[1]


def _dataset(root, names=("x", "sub/y"), size=(40, 56)):
    """A/ blurred (Gaussian-blurred B/), B/ sharp; returns the sharp and blurred uint8 arrays."""
    arrays = {}
    for i, name in enumerate(names):
        sharp = (random_photo(*size, seed=i) * 255).astype(np.uint8)
        blurred = ndimage.gaussian_filter(sharp, sigma=(1.5, 1.5, 0))
        for side, array in (("A", blurred), ("B", sharp)):
            path = root / side / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path)
        arrays[name] = (sharp, blurred)
    return arrays


def _identity():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Activation("linear")(inputs))


def test_identity_generator_scores_equal_the_input_and_match_skimage(tmp_path):
    arrays = _dataset(tmp_path / "data")
    report = evaluate_folder(_identity(), tmp_path / "data", tmp_path / "out", progress=False)
    assert report.ok and [row["name"] for row in report.rows] == ["sub/y.png", "x.png"]
    for row in report.rows:
        sharp, blurred = arrays[row["name"][:-4]]
        assert row["psnr_blurred"] == pytest.approx(peak_signal_noise_ratio(sharp, blurred, data_range=255))
        expected_ssim = structural_similarity(
            sharp,
            blurred,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=255,
        )
        assert row["ssim_blurred"] == pytest.approx(expected_ssim, abs=1e-6)
        assert row["psnr_restored"] == pytest.approx(row["psnr_blurred"])
        assert row["sharpness_sharp"] > row["sharpness_blurred"]
    assert report.summary["psnr"]["gain"] == pytest.approx(0.0, abs=1e-9)


def test_reports_panels_and_unmatched_names(tmp_path, caplog):
    arrays = _dataset(tmp_path / "data")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "data" / "A" / "lonely.png")
    generator = tiny_generator()
    with caplog.at_level(logging.WARNING):
        report = evaluate_folder(generator, tmp_path / "data", tmp_path / "out", True, progress=False)
    assert report.unmatched == ["A/lonely.png (no B/ partner)"] and not report.ok
    assert "lonely.png" not in caplog.text  # the report has it, and test.py prints it once
    with open(tmp_path / "out" / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(rows) == 2 and summary["images"] == 2
    assert summary["unmatched"] == report.unmatched
    # The restored column is the generator's output, scored independently here.
    sharp, blurred = arrays["x"]
    restored = np.round(deblur_array(generator, blurred / 255.0, precision="fp32") * 255)  # evaluate_folder's
    row = next(r for r in rows if r["name"] == "x.png")
    expected = peak_signal_noise_ratio(sharp, restored, data_range=255)
    assert float(row["psnr_restored"]) == pytest.approx(expected)
    mean = np.mean([float(r["ssim_restored"]) - float(r["ssim_blurred"]) for r in rows])
    assert summary["ssim"]["gain"] == pytest.approx(mean)
    with Image.open(tmp_path / "out" / "images" / "sub" / "y.png") as panel:
        panel = np.asarray(panel)
    assert panel.shape == (40, 168, 3)
    np.testing.assert_array_equal(panel[:, :56], arrays["sub/y"][0])  # sharp | blurred | restored
    np.testing.assert_array_equal(panel[:, 56:112], arrays["sub/y"][1])
    assert "PSNR (dB)" in format_summary_table(report.summary)


def test_missing_folders_and_no_pairs_are_user_errors(tmp_path):
    (tmp_path / "A").mkdir()
    with pytest.raises(DeblurGANError, match="missing B/ folder"):
        evaluate_folder(_identity(), tmp_path, tmp_path / "out")
    (tmp_path / "B").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "A" / "a.png")
    with pytest.raises(DeblurGANError, match=r"B: no images \(.png"):
        evaluate_folder(_identity(), tmp_path, tmp_path / "out")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "B" / "b.png")
    with pytest.raises(DeblurGANError, match="input_dir=.*no A/ and B/ images share a name") as error:
        evaluate_folder(_identity(), tmp_path, tmp_path / "out")
    assert error.value.parameter == "input_dir"
    # test.py says so before it loads the generator (here, one that does not exist)
    result = invoke_script("test", "--weight_path", tmp_path / "missing.h5", "--input_dir", tmp_path)
    assert result.returncode == 2 and result.stderr.startswith(f"error: --input_dir {tmp_path}: no A/ and B/")


def test_an_output_folder_inside_the_pairs_is_refused_before_anything_is_written(tmp_path):
    data = tmp_path / "data"
    _dataset(data)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    for inside in (data / "B", data / "A" / "results"):
        with pytest.raises(DeblurGANError, match=f"output_dir={inside}: inside the evaluated") as error:
            evaluate_folder(_identity(), data, inside, save_images=True, progress=False)
        assert error.value.parameter == "output_dir"
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert evaluate_folder(_identity(), data, data / "reports", progress=False).ok  # beside A/ and B/: fine


def test_an_earlier_evaluation_or_a_users_file_is_replaced_only_with_overwrite(tmp_path, monkeypatch):
    """test.py replaced the reports (and panels) of an earlier evaluation, or a user's own files
    at those names, in silence; stopped halfway, it left the earlier reports beside new panels."""
    data, out = tmp_path / "data", tmp_path / "out"
    _dataset(data)
    evaluate_folder(_identity(), data, out, save_images=True, progress=False)
    written = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len(written) == 4  # two reports, two panels
    with pytest.raises(
        DeblurGANError, match=f"output_dir={out}: already holds {out / 'per_image.csv'} and 1 more; "
    ):
        evaluate_folder(_identity(), data, out, progress=False)
    mine = tmp_path / "mine" / "images" / "sub" / "y.png"  # at a panel's name
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the user's")
    with pytest.raises(
        DeblurGANError, match=f"already holds {mine}; choose another folder, or pass overwrite=True"
    ):
        evaluate_folder(
            _identity(), data, tmp_path / "mine", save_images=True, overwrite=False, progress=False
        )
    assert mine.read_bytes() == b"the user's"
    assert evaluate_folder(_identity(), data, tmp_path / "mine", progress=False).ok  # no panels: no clash
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == written

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("deblurgan.evaluate.deblur_array", stopped)
    with pytest.raises(KeyboardInterrupt):
        evaluate_folder(_identity(), data, out, overwrite=True, progress=False)
    assert not (out / "summary.json").exists() and not (out / "per_image.csv").exists()
    monkeypatch.undo()
    assert evaluate_folder(_identity(), data, out, save_images=True, overwrite=True, progress=False).ok
    assert len(list((out / "images").rglob("*.png"))) == 2
    assert evaluate_folder(_identity(), data, out, overwrite=True, progress=False).ok  # no panels now
    assert not list((out / "images").rglob("*.png"))  # the earlier ones would pass for this one's


def test_a_stopped_evaluations_panels_are_removed_by_the_next_overwrite_and_the_stop_says_how(
    tmp_path, monkeypatch, caplog
):
    """Stopped halfway, test.py said only "interrupted", and its panels (listed in no report) were
    left beside a later evaluation's reports, --overwrite or not, as if they were its own."""
    data, out = tmp_path / "data", tmp_path / "out"
    _dataset(data, names=("a", "b", "c"))
    calls = []

    def stopped_at_the_third(generator, image, **options):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return image

    monkeypatch.setattr("deblurgan.evaluate.deblur_array", stopped_at_the_third)
    with pytest.raises(KeyboardInterrupt), caplog.at_level(logging.WARNING, logger="deblurgan.evaluate"):
        evaluate_folder(_identity(), data, out, save_images=True, progress=False)
    monkeypatch.undo()
    assert sorted(p.name for p in (out / "images").glob("*.png")) == ["a.png", "b.png"]
    assert [r.getMessage() for r in caplog.records if r.name == "deblurgan.evaluate"] == [
        "evaluation stopped after 2 of 3 pairs; no reports written: the same command with overwrite=True "
        "starts it again"
    ]
    other = tmp_path / "other"
    _dataset(other, names=("z",))
    with pytest.raises(DeblurGANError, match="already holds the panels of an evaluation that was stopped"):
        evaluate_folder(_identity(), other, out, save_images=True, progress=False)
    assert evaluate_folder(_identity(), other, out, save_images=True, overwrite=True, progress=False).ok
    assert sorted(p.name for p in (out / "images").iterdir()) == ["z.png"]  # and no list left


@pytest.mark.slow
def test_script_end_to_end(tmp_path):
    _dataset(tmp_path / "data")
    weights = save_model(tiny_generator(), tmp_path / "g.keras")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "test.py"),
            "--weight_path",
            str(weights),
            "--input_dir",
            str(tmp_path / "data"),
            "--output_dir",
            str(tmp_path / "res"),
            "--save_images",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "PSNR (dB)" in result.stdout and "SSIM" in result.stdout
    assert result.stdout.startswith(f"generator: {weights}\n")  # not Sicara's ./generator.h5
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert summary["images"] == 2
    assert summary["generator"] == {"weight_path": str(weights), "engine": "keras", "precision": "fp32"}
    assert (tmp_path / "res" / "images" / "x.png").is_file()


def test_when_no_pair_can_be_read_the_line_names_the_first_file_and_the_option(tmp_path):
    _dataset(tmp_path / "data")
    weights = save_model(tiny_generator(), tmp_path / "g.keras")
    folders = ["--input_dir", tmp_path / "data", "--output_dir", tmp_path / "res"]
    result = invoke_script("test", "--weight_path", weights, *folders, "--max_image_pixels", 1000)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    first = tmp_path / "data" / "A" / "sub" / "y.png"  # pairs in name order
    assert line.startswith(f"error: --input_dir {tmp_path / 'data'}: none of the 2 pair(s) could be read; ")
    assert f"the first: {first}" in line and "over --max_image_pixels 1,000" in line, line


def test_each_evaluated_folder_gets_its_own_default_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = save_model(tiny_generator(), tmp_path / "g.keras")
    for name in ("test", "holdout"):
        _dataset(tmp_path / "sets" / name, names=(name,))
        assert invoke_script("test", "--weight_path", weights, "--input_dir", f"sets/{name}").returncode == 0
    for name in ("test", "holdout"):  # the second set did not overwrite the first one's reports
        rows = list(csv.DictReader((tmp_path / "results" / name / "per_image.csv").read_text().splitlines()))
        assert [row["name"] for row in rows] == [f"{name}.png"]


def test_images_over_max_image_pixels_are_failed_pairs(tmp_path):
    _dataset(tmp_path / "data")
    _dataset(tmp_path / "data", names=("big",), size=(64, 64))
    out = tmp_path / "out"
    report = evaluate_folder(_identity(), tmp_path / "data", out, progress=False, max_image_pixels=40 * 56)
    assert [row["name"] for row in report.rows] == ["sub/y.png", "x.png"]
    [(name, error)] = report.failed
    assert name == "big.png" and error.parameter == "max_image_pixels" and "64x64 pixels" in str(error)


def test_a_pair_of_two_sizes_is_a_failed_pair_named_as_training_names_it(tmp_path):
    _dataset(tmp_path / "data")
    Image.fromarray(np.zeros((30, 20, 3), np.uint8)).save(tmp_path / "data" / "A" / "x.png")
    report = evaluate_folder(_identity(), tmp_path / "data", tmp_path / "out", progress=False)
    assert [row["name"] for row in report.rows] == ["sub/y.png"]
    [(name, error)] = report.failed
    a, b = tmp_path / "data" / "A" / "x.png", tmp_path / "data" / "B" / "x.png"
    assert name == "x.png" and str(error) == (
        f"{a} is 20x30 but {b} is 56x40 (width x height); a blurred/sharp pair must have the same size: "
        "re-export one of them"
    )


def test_training_validation_scores_equal_test_py_scores(tmp_path):
    """Training's val/psnr, val/ssim and val/psnr_blurred are test.py's numbers (evaluate_folder's)
    for the same folder and the generator of that epoch's checkpoint."""
    from deblurgan.checkpoints import load_generator
    from deblurgan.training_loop import TrainingOptions, train

    _dataset(tmp_path / "data" / "train", names=("a", "b"))
    _dataset(tmp_path / "val", size=(48, 64))
    _dataset(tmp_path / "val", names=("tiny",), size=(8, 8))  # left out of both, not a crash
    [row] = train(
        TrainingOptions(
            data_dir=str(tmp_path / "data"), val_dir=str(tmp_path / "val"), weights_dir=str(tmp_path / "w"),
            log_dir=str(tmp_path / "logs"), n_epochs=1, batch_size=2, crop_size=32, n_filters=4,
            n_blocks=1, gan_mode="none", content_loss="l1", workers=0, progress=False,
        )
    )  # fmt: skip
    (checkpoint,) = (tmp_path / "w").glob("generator_0_*.h5")
    report = evaluate_folder(load_generator(checkpoint), tmp_path / "val", tmp_path / "out", progress=False)
    assert [name for name, _ in report.failed] == ["tiny.png"]
    # both in fp32, whatever the machine: auto would pick bf16 on a CPU with AMX
    fp32 = evaluate_folder(
        load_generator(checkpoint), tmp_path / "val", tmp_path / "fp32", progress=False, precision="fp32"
    )
    assert report.summary["psnr"]["restored"] == fp32.summary["psnr"]["restored"]
    assert row["val/psnr"] == pytest.approx(report.summary["psnr"]["restored"], abs=1e-9)
    assert row["val/ssim"] == pytest.approx(report.summary["ssim"]["restored"], abs=1e-9)
    assert row["val/psnr_blurred"] == pytest.approx(report.summary["psnr"]["blurred"], abs=1e-9)
    assert row["val/psnr"] != pytest.approx(row["val/psnr_blurred"], abs=1e-6)  # the network did something


def test_a_pair_too_small_to_score_is_a_failed_pair_and_the_others_are_scored(tmp_path):
    """It stopped the whole evaluation with 'SSIM needs images of at least 11x11 pixels, got 3x3'."""
    _dataset(tmp_path / "data")
    _dataset(tmp_path / "data", names=("zz_tiny",), size=(3, 3))
    report = evaluate_folder(_identity(), tmp_path / "data", tmp_path / "out", progress=False)
    assert [row["name"] for row in report.rows] == ["sub/y.png", "x.png"]
    ((name, error),) = report.failed
    tiny = tmp_path / "data" / "A" / "zz_tiny.png"
    assert name == "zz_tiny.png"
    assert str(error) == f"{tiny} is 3x3: too small to score (SSIM needs at least 11x11 pixels)"


def test_test_py_scores_in_fp32_by_default_and_deblur_py_picks_the_fastest():
    from conftest import load_script

    def default(script):
        return next(p.default for p in load_script(script).main.params if p.name == "precision")

    assert (default("test"), default("deblur")) == ("fp32", "auto")
