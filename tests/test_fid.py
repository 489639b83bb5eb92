"""Tests for FID: deblurgan.metrics.frechet_distance against closed forms and an eigenvalue reference,
and deblurgan.metrics.fid with a tiny random-weight extractor (no Inception weights, no network)."""

import json
import urllib.error

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import load_script
from PIL import Image

import deblurgan
from deblurgan import fid as fid_module
from deblurgan import metrics
from deblurgan.cli import flag_message
from deblurgan.errors import DeblurGANError
from deblurgan.evaluate import evaluate_folder, format_summary_table

RNG = np.random.default_rng(0)


def random_spd(d, rng):
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d) + 0.1 * np.eye(d)


def eigen_reference(mu1, sigma1, mu2, sigma2):
    """tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2), a symmetric matrix: eigh only, no sqrtm."""
    w, v = np.linalg.eigh(sigma1)
    root1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0, None)).sum()
    diff = mu1 - mu2
    return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean


def test_diagonal_covariances_match_the_closed_form():
    # N((0,0), diag(1, 4)) vs N((3, 4), diag(9, 1)): 25 + (1 - 3)^2 + (2 - 1)^2 = 30
    value = metrics.frechet_distance([0, 0], np.diag([1.0, 4.0]), [3, 4], np.diag([9.0, 1.0]))
    assert value == pytest.approx(30.0, abs=1e-10)
    assert metrics.frechet_distance([0, 0], np.eye(2), [1, 1], 4 * np.eye(2)) == pytest.approx(4.0)
    assert metrics.frechet_distance(np.ones(3), np.eye(3), np.ones(3), np.eye(3)) == pytest.approx(
        0, abs=1e-12
    )


def test_full_covariances_match_the_eigenvalue_reference():
    rng = np.random.default_rng(1)
    for d in (3, 16, 64):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        sigma1, sigma2 = random_spd(d, rng), random_spd(d, rng)
        expected = eigen_reference(mu1, sigma1, mu2, sigma2)
        got = metrics.frechet_distance(mu1, sigma1, mu2, sigma2)
        assert got == pytest.approx(expected, rel=1e-9)
        assert metrics.frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(got, rel=1e-9)


def test_singular_covariances_from_few_samples_stay_finite_and_near_the_reference():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 20)), rng.normal(size=(5, 20)) + 0.5  # rank 4 in 20 dimensions
    stats_x = x.mean(0), np.cov(x, rowvar=False)
    stats_y = y.mean(0), np.cov(y, rowvar=False)
    value = metrics.frechet_distance(*stats_x, *stats_y)
    assert np.isfinite(value)
    assert value == pytest.approx(eigen_reference(*stats_x, *stats_y), rel=1e-4)
    assert abs(metrics.frechet_distance(*stats_x, *stats_x)) < 1e-6


def test_non_finite_square_root_is_retried_with_eps_on_the_diagonal(monkeypatch):
    calls = []
    real_sqrtm = metrics.linalg.sqrtm

    def sqrtm(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.inf) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(metrics.linalg, "sqrtm", sqrtm)
    sigma1, sigma2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    value = metrics.frechet_distance([0, 0], sigma1, [0, 0], sigma2, eps=0.5)
    np.testing.assert_array_equal(calls[1], (sigma1 + 0.5 * np.eye(2)) @ (sigma2 + 0.5 * np.eye(2)))
    # (1.5 * 9.5)^.5 + (4.5 * 1.5)^.5 on the offset matrices; traces of the originals
    assert value == pytest.approx(15 - 2 * (np.sqrt(1.5 * 9.5) + np.sqrt(4.5 * 1.5)))


def test_small_imaginary_round_off_is_dropped_and_large_is_an_error(monkeypatch):
    real_sqrtm = metrics.linalg.sqrtm
    args = ([0, 0], np.diag([1.0, 4.0]), [0, 0], np.diag([9.0, 1.0]))
    monkeypatch.setattr(metrics.linalg, "sqrtm", lambda m: real_sqrtm(m) + 1e-6j)
    assert metrics.frechet_distance(*args) == pytest.approx(2**2 + 1**2)
    monkeypatch.setattr(metrics.linalg, "sqrtm", real_sqrtm)
    # not a covariance: sqrtm(diag(-1, 1)) = diag(i, 1)
    with pytest.raises(DeblurGANError, match="imaginary parts up to 1"):
        metrics.frechet_distance([0, 0], np.diag([-1.0, 1.0]), [0, 0], np.eye(2))
    with pytest.raises(DeblurGANError, match="covariances must be"):
        metrics.frechet_distance([0, 0], np.eye(3), [0, 0], np.eye(3))


def tiny_extractor():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, strides=2)(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs)


def photos(n, seed, shift=(0, 0, 0)):
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 190, (n, 1, 1, 3)) + rng.normal(0, 20, (n, 24, 24, 3))
    return list(np.clip(base + np.asarray(shift), 0, 255).astype("uint8"))


@pytest.mark.backend
def test_fid_is_zero_on_itself_symmetric_and_grows_with_a_colour_shift():
    extractor = tiny_extractor()
    a, b = photos(24, 0), photos(24, 1)
    assert abs(metrics.fid(a, a, extractor, batch_size=5)) < 1e-6
    ab, ba = metrics.fid(a, b, extractor), metrics.fid(b, a, extractor)
    assert ab == pytest.approx(ba, rel=1e-6) and ab > 0
    shifted = [metrics.fid(a, photos(24, 0, (s, 0, -s)), extractor) for s in (0, 10, 30)]
    assert shifted[0] < 1e-6 < shifted[1] < shifted[2]


@pytest.mark.backend
def test_features_are_inceptions_input_range_and_size():
    """uint8 and [0, 1] floats give the same features; a fixed-size extractor gets resized input."""
    images = photos(3, 0)
    extractor = tiny_extractor()
    as_uint8 = fid_module.image_features(images, extractor)
    as_float = fid_module.image_features([i / 255.0 for i in images], extractor)
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-5)
    inputs = keras.Input((16, 16, 3))
    fixed = keras.Model(inputs, keras.layers.Flatten()(inputs))
    features = fid_module.image_features(images, fixed)
    assert features.shape == (3, 16 * 16 * 3) and features.min() >= -1 and features.max() <= 1


def test_fewer_than_two_images_is_one_line():
    with pytest.raises(DeblurGANError, match="images_b: FID needs at least 2 images per set, got 1"):
        metrics.fid(photos(3, 0), photos(1, 0), tiny_extractor())


def test_inception_extractor_builds_without_weights():
    extractor = fid_module.inception_feature_extractor(weights=None)
    assert extractor.output_shape == (None, 2048)
    assert fid_module.image_features(photos(2, 0), extractor).shape == (2, 2048)


def test_offline_imagenet_weights_error_names_the_file_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", no_network)
    with pytest.raises(DeblurGANError) as error:
        fid_module.inception_feature_extractor("imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{fid_module.INCEPTION_FILE}: InceptionV3 ImageNet weights are missing")
    assert fid_module.INCEPTION_URL in message and "inception_weights=PATH" in message
    assert "--inception_weights PATH" in flag_message(error.value)
    with pytest.raises(DeblurGANError, match="missing.h5: no such InceptionV3 weights file"):
        fid_module.inception_feature_extractor(tmp_path / "missing.h5")


def identity():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Activation("linear")(inputs))


def write_pairs(root, n=3):
    """A/ = B/ shifted in colour; returns the blurred and sharp uint8 lists."""
    sharp = photos(n, 0)
    blurred = [np.clip(image.astype(int) + (20, 0, -20), 0, 255).astype("uint8") for image in sharp]
    for side, images in (("A", blurred), ("B", sharp)):
        (root / side).mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / side / f"{i}.png")
    return blurred, sharp


@pytest.mark.backend
def test_evaluate_folder_reports_fid_of_blurred_and_restored(tmp_path):
    blurred, sharp = write_pairs(tmp_path / "data")
    extractor = tiny_extractor()
    report = evaluate_folder(
        identity(), tmp_path / "data", tmp_path / "out", progress=False, fid_extractor=extractor
    )
    expected = metrics.fid(blurred, sharp, extractor)
    assert expected > 0
    assert report.summary["fid"] == pytest.approx({"blurred": expected, "restored": expected, "gain": 0.0})
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["fid"] == report.summary["fid"]
    assert "FID" in format_summary_table(report.summary)
    without = evaluate_folder(identity(), tmp_path / "data", tmp_path / "out2", progress=False)
    assert "fid" not in without.summary and "FID" not in format_summary_table(without.summary)


@pytest.fixture(scope="module")
def evaluation_script():
    return load_script("test").main


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    inputs = keras.Input((None, None, 3), name="blurred")
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="conv")(inputs), name="generator")
    return deblurgan.save_model(model, tmp_path_factory.mktemp("g") / "g.h5")


def test_script_fid_user_errors_are_one_line(tmp_path, evaluation_script, generator_file):
    write_pairs(tmp_path / "data", n=2)
    args = ["--weight_path", str(generator_file), "--input_dir", str(tmp_path / "data"), "--fid"]
    args += ["--output_dir", str(tmp_path / "o"), "--inception_weights", str(tmp_path / "none.h5")]
    result = CliRunner().invoke(evaluation_script, args)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"error: {tmp_path / 'none.h5'}: no such InceptionV3 weights file")
    result = CliRunner().invoke(evaluation_script, [a for a in args if a != "--fid"])
    assert result.exit_code == 2 and not (tmp_path / "o").exists()
    unused = f"--inception_weights {tmp_path / 'none.h5'}: unused without --fid; add it or leave this out"
    assert result.output == f"error: {unused}\n"


def test_fid_of_a_single_pair_is_one_line_before_any_work(tmp_path, evaluation_script):
    write_pairs(tmp_path / "data", n=1)
    expected = "FID needs at least 2 image pairs; add pairs or leave FID out"
    with pytest.raises(DeblurGANError, match=expected) as e:
        evaluate_folder(
            identity(), tmp_path / "data", tmp_path / "o", progress=False, fid_extractor=identity()
        )
    assert flag_message(e.value).startswith(f"--input_dir {tmp_path / 'data'}: FID needs")
    assert not (tmp_path / "o").exists()  # refused before the pairs were evaluated
    args = ["--input_dir", str(tmp_path / "data"), "--fid", "--output_dir", str(tmp_path / "o")]
    result = CliRunner().invoke(evaluation_script, [*args, "--weight_path", str(tmp_path / "unloaded.h5")])
    assert result.exit_code == 2 and expected in result.output  # before the generator's file is read


@pytest.mark.slow
def test_local_weights_file_is_loaded_and_test_py_reports_fid(tmp_path, evaluation_script, generator_file):
    source = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg")
    path = tmp_path / fid_module.INCEPTION_FILE
    source.save(path)  # legacy HDF5, the format of Keras' own notop files
    extractor = fid_module.inception_feature_extractor(path)
    for got, want in zip(extractor.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    write_pairs(tmp_path / "data")
    args = ["--weight_path", str(generator_file), "--input_dir", str(tmp_path / "data")]
    args += ["--output_dir", str(tmp_path / "out"), "--fid", "--inception_weights", str(path)]
    result = CliRunner().invoke(evaluation_script, args)
    assert result.exit_code == 0, result.output
    assert "FID" in result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["fid"]) == {"blurred", "restored", "gain"}
