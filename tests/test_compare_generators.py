"""benchmarks/compare_generators.py: PSNR, SSIM and sharpness ratio of generators side by side."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

import deblurgan
from tests.conftest import randomize_weights

REPO = Path(__file__).resolve().parents[1]
BT601 = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def compare():
    path = REPO / "benchmarks" / "compare_generators.py"
    spec = importlib.util.spec_from_file_location("compare_generators", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Two 32x32 pairs: smooth random photos and their 3x3 box blur, as 8-bit PNGs."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(7)
    images = []
    for i in range(2):
        sharp = ndimage.zoom(rng.uniform(0, 255, (8, 8, 3)), (4, 4, 1), order=1)
        blurred = ndimage.uniform_filter(sharp, size=(3, 3, 1), mode="reflect")
        sharp8, blurred8 = (np.clip(np.round(x), 0, 255).astype(np.uint8) for x in (sharp, blurred))
        for folder, image in (("A", blurred8), ("B", sharp8)):
            (root / folder).mkdir(exist_ok=True)
            Image.fromarray(image).save(root / folder / f"p{i}.png")
        images.append((blurred8, sharp8))
    return root, images


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generators")
    options = dict(n_filters=8, n_blocks=1, norm="none", output_mode="clip", dropout_rate=0.0)
    identity = deblurgan.generator_model(zero_init_output=True, **options)  # clip(x + tanh(0))
    deblurgan.save_model(identity, folder / "identity.h5")
    random = randomize_weights(deblurgan.generator_model(**options), seed=3)
    deblurgan.save_model(random, folder / "random.h5")
    return folder


def _laplacian_variance(image8):
    gray = image8.astype(np.float64) @ BT601
    return ndimage.laplace(gray)[1:-1, 1:-1].var()  # the interior: no padding convention


def test_rows_match_independent_psnr_and_sharpness_and_the_identity_equals_the_input(
    compare, pairs, generators, tmp_path
):
    root, images = pairs
    specs = [f"identity={generators / 'identity.h5'}", f"random={generators / 'random.h5'}"]
    args = ["--input_dir", str(root), "--output_dir", str(tmp_path)]
    result = CliRunner().invoke(compare.main, [*args, *[a for s in specs for a in ("--generator", s)]])
    assert result.exit_code == 0, result.output
    scores = compare.scores_of(
        compare.evaluate_generator(generators / "identity.h5", root, tmp_path / "again")
    )

    psnr = np.mean([peak_signal_noise_ratio(s, b, data_range=255) for b, s in images])
    ratio = np.mean([_laplacian_variance(b) / _laplacian_variance(s) for b, s in images])
    assert scores["blurred"]["psnr"] == pytest.approx(psnr, abs=1e-9)
    assert scores["blurred"]["sharpness_ratio"] == pytest.approx(ratio, rel=1e-9)
    assert 0 < ratio < 0.9  # a box blur lowers the Laplacian variance
    assert scores["restored"] == pytest.approx(scores["blurred"], rel=1e-9)  # the identity network

    blurred_row, identity_row, random_row = result.output.strip().splitlines()[-3:]
    assert blurred_row == "| blurred input | {psnr:.2f} | {ssim:.4f} | {sharpness_ratio:.3f} |".format(
        **scores["blurred"]
    )
    assert identity_row == blurred_row.replace("blurred input", "identity")
    assert random_row.startswith("| random |") and random_row.split("|")[2:] != blurred_row.split("|")[2:]
    assert (tmp_path / "random" / "summary.json").is_file()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("weights.h5", "--generator weights.h5: write LABEL=PATH"),
        (
            "a=missing.h5",
            "error: --generator a=missing.h5: no such generator file missing.h5",
        ),  # not --weight_path
    ],
)
def test_bad_generator_specs_are_one_line_errors(compare, pairs, spec, message):
    result = CliRunner().invoke(compare.main, ["--input_dir", str(pairs[0]), "--generator", spec])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_left_out_pairs_are_listed_and_exit_1(compare, pairs, generators, tmp_path):
    root, _ = pairs
    shutil.copytree(root, tmp_path / "data")
    (tmp_path / "data" / "A" / "only_blurred.png").write_bytes((root / "A" / "p0.png").read_bytes())
    (tmp_path / "data" / "A" / "p1.png").write_bytes(b"not a png")
    spec = f"identity={generators / 'identity.h5'}"
    result = CliRunner().invoke(compare.main, ["--input_dir", str(tmp_path / "data"), "--generator", spec])
    assert result.exit_code == 1, result.output
    assert f"{tmp_path / 'data'}: 1 pair(s), 1 generator(s), fp32\n" in result.output
    assert "\nunmatched: A/only_blurred.png (no B/ partner)\n" in result.output
    assert "\nskipped p1.png: " in result.output


def test_every_report_folder_is_checked_before_the_first_generator_is_scored(
    compare, pairs, generators, tmp_path
):
    root, _ = pairs
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "summary.json").write_text("{}")  # an earlier comparison's
    specs = [f"a={generators / 'identity.h5'}", f"b={generators / 'random.h5'}"]
    args = [
        "--input_dir",
        str(root),
        "--output_dir",
        str(tmp_path),
        *[x for s in specs for x in ("--generator", s)],
    ]
    result = CliRunner().invoke(compare.main, args)
    assert result.exit_code == 2 and "pass --overwrite to replace them" in result.output
    assert not (tmp_path / "a").exists()
    assert CliRunner().invoke(compare.main, [*args, "--overwrite"]).exit_code == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["psnr"]
    escaping = CliRunner().invoke(
        compare.main, [*args[:4], "--generator", f"../x={generators / 'random.h5'}"]
    )
    assert escaping.exit_code == 2 and "the label must be a name" in escaping.output
