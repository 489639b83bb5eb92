import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_script
from scipy import ndimage

from deblurgan.blur_dataset import make_blur_dataset
from deblurgan.cli import flag_message
from deblurgan.errors import DeblurGANError
from deblurgan.io import list_images, read_image, write_image

REPO = Path(__file__).resolve().parents[1]


def _photo(seed, height=48, width=64):
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.random((height, width, 3)), sigma=(1.5, 1.5, 0))
    return np.clip((image - image.min()) / np.ptp(image), 0, 1)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    write_image(folder / "a.png", _photo(0))
    write_image(folder / "b.jpg", _photo(1, 40, 72))
    write_image(folder / "sub" / "c.png", _photo(2, 64, 48))
    return folder


def _tree(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_pairs_have_matching_names_sizes_and_are_blurred(photos, tmp_path):
    out = tmp_path / "out"
    rows = make_blur_dataset(photos, out, seed=1, blurs_per_image=2, crop_size=32, progress=False)
    names_a = [p.name for p in list_images(out / "A")]
    names_b = [p.name for p in list_images(out / "B")]
    assert (
        names_a
        == names_b
        == sorted(["a_00.png", "a_01.png", "b_00.png", "b_01.png", "sub__c_00.png", "sub__c_01.png"])
    )
    assert len(rows) == 6
    manifest = list(csv.DictReader((out / "pairs.csv").open()))
    assert [r["name"] for r in manifest] == [r["name"] for r in rows]
    for name in names_a:
        blurred, sharp = read_image(out / "A" / name).pixels, read_image(out / "B" / name).pixels
        assert blurred.shape == sharp.shape == (32, 32, 3)
        assert not np.array_equal(blurred, sharp)
        # Brightness is kept (no min-max stretch): mean differs by a fraction of a grey level.
        assert abs(blurred.mean() - sharp.mean()) < 0.03


def test_sharp_crop_is_a_crop_of_the_photo(photos, tmp_path):
    out = tmp_path / "out"
    rows = make_blur_dataset(photos, out, seed=4, crop_size=24, progress=False)
    source = read_image(photos / "a.png").pixels
    row = next(r for r in rows if r["source"] == "a.png")
    top, left, height, width = map(int, row["crop_top_left_height_width"].split())
    np.testing.assert_array_equal(
        read_image(out / "B" / row["name"]).pixels, source[top : top + height, left : left + width]
    )


def test_same_seed_is_byte_identical_different_seed_differs(photos, tmp_path):
    options = dict(blurs_per_image=2, crop_size=32, noise_sigma=(0.0, 0.02), progress=False)
    make_blur_dataset(photos, tmp_path / "one", seed=5, **options)
    make_blur_dataset(photos, tmp_path / "two", seed=5, **options)
    make_blur_dataset(photos, tmp_path / "three", seed=6, **options)
    one, two, three = _tree(tmp_path / "one"), _tree(tmp_path / "two"), _tree(tmp_path / "three")
    assert one == two
    assert one.keys() == three.keys()
    assert one["A/a_00.png"] != three["A/a_00.png"]


def test_adding_a_photo_keeps_the_other_pairs(photos, tmp_path):
    make_blur_dataset(photos, tmp_path / "before", seed=2, crop_size=32, progress=False)
    write_image(photos / "d.png", _photo(3))
    make_blur_dataset(photos, tmp_path / "after", seed=2, crop_size=32, progress=False)
    before, after = _tree(tmp_path / "before"), _tree(tmp_path / "after")
    for name in ["A/a_00.png", "B/b_00.png", "A/sub__c_00.png"]:
        assert before[name] == after[name]


def test_train_test_split_is_by_photo(photos, tmp_path):
    out = tmp_path / "out"
    make_blur_dataset(photos, out, seed=0, blurs_per_image=3, test_fraction=0.34, progress=False)
    sources = {}
    for split in ("train", "test"):
        names_a = [p.name for p in list_images(out / split / "A")]
        assert names_a == [p.name for p in list_images(out / split / "B")]
        sources[split] = {name.rsplit("_", 1)[0] for name in names_a}
    assert len(sources["test"]) == 1 and len(sources["train"]) == 2
    assert not sources["train"] & sources["test"]


def test_max_side_downscales_whole_photos(photos, tmp_path):
    out = tmp_path / "out"
    make_blur_dataset(photos, out, max_side=32, progress=False)
    assert read_image(out / "A" / "b_00.png").pixels.shape == (18, 32, 3)  # 40x72 -> 18x32
    assert read_image(out / "B" / "sub__c_00.png").pixels.shape == (32, 24, 3)


def test_user_errors(photos, tmp_path):
    with pytest.raises(DeblurGANError, match="no such folder"):
        make_blur_dataset(tmp_path / "missing", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeblurGANError, match="no images"):
        make_blur_dataset(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(DeblurGANError, match="inside the input folder") as error:
        make_blur_dataset(photos, photos / "blurred", progress=False)
    assert flag_message(error.value).startswith(f"--output_dir {photos / 'blurred'}: inside the input folder")
    for option, value, message in (
        ("noise_sigma", (0.5,), "noise_sigma=0.5: give min,max (in [0, 1] units, 0 <= min <= max <= 1)"),
        ("noise_sigma", (-1.0, 0.0), "noise_sigma=-1,0: give min,max"),
        (
            "jpeg_quality",
            (95.0, 70.0),
            "jpeg_quality=95,70: give min,max (whole numbers, 1 <= min <= max <= 100)",
        ),
        ("jpeg_quality", (70.5, 70.9), "jpeg_quality=70.5,70.9: give min,max (whole numbers"),  # wrote 70
        ("jpeg_quality", (70.0, 200.0), "jpeg_quality=70,200: give min,max"),
        ("linear_length", (0.0, 5.0), "linear_length=0,5: give min,max (px, 1 <= min <= max <= 10000)"),
        ("linear_length", (3.0, float("inf")), "linear_length=3,inf: give min,max"),  # an OverflowError
        ("noise_sigma", None, "noise_sigma=: give min,max"),  # --noise_sigma= : a TypeError before
        ("exposures", (2.0,), "exposures='2': give fractions in (0, 1], e.g. 0.5,1"),  # "(2.0,)"
        ("exposures", None, "exposures='': give fractions"),  # --exposures "": "None"
    ):
        with pytest.raises(DeblurGANError) as error:
            make_blur_dataset(photos, tmp_path / "out", progress=False, **{option: value})
        assert str(error.value).startswith(message) and error.value.parameter == option
    assert not (tmp_path / "out").exists()
    with pytest.raises(DeblurGANError, match="blurs_per_image"):
        make_blur_dataset(photos, tmp_path / "out", blurs_per_image=0, progress=False)
    with pytest.raises(DeblurGANError) as error:  # the hint said "or none", which --crop_size refuses
        make_blur_dataset(photos, tmp_path / "out", crop_size=0, progress=False)
    assert (
        flag_message(error.value)
        == "--crop_size 0: use at least 8 px, or leave it out (None) for whole photos"
    )
    make_blur_dataset(photos, tmp_path / "full", seed=0, crop_size=16, progress=False)
    with pytest.raises(DeblurGANError, match="already holds images; pass overwrite=True") as error:
        make_blur_dataset(photos, tmp_path / "full", seed=0, progress=False)
    assert "already holds images; pass --overwrite to replace them" in flag_message(error.value)
    (tmp_path / "full" / "A" / "mine.png").write_bytes(b"the user's")  # no run wrote it: never deleted
    with pytest.raises(DeblurGANError, match=r"A/mine.png: neither a pair of .*pairs.csv nor one this run"):
        make_blur_dataset(photos, tmp_path / "full", seed=1, overwrite=True, progress=False)
    (tmp_path / "full" / "A" / "mine.png").unlink()
    make_blur_dataset(
        photos, tmp_path / "full", blurs_per_image=2, crop_size=16, progress=False, overwrite=True
    )
    make_blur_dataset(photos, tmp_path / "full", seed=1, max_side=20, overwrite=True, progress=False)
    assert [p.name for p in list_images(tmp_path / "full" / "A")] == ["a_00.png", "b_00.png", "sub__c_00.png"]
    # switching between the plain and the train/test layout leaves no pairs of the other behind
    with pytest.raises(DeblurGANError, match="already holds images"):
        make_blur_dataset(photos, tmp_path / "full", test_fraction=0.5, crop_size=16, progress=False)
    make_blur_dataset(
        photos, tmp_path / "full", test_fraction=0.5, crop_size=16, overwrite=True, progress=False
    )
    assert list_images(tmp_path / "full" / "A") == [] and len(list_images(tmp_path / "full" / "test")) > 0
    make_blur_dataset(photos, tmp_path / "full", crop_size=16, overwrite=True, progress=False)
    # and no empty train/A either, which training would take for the layout in use
    assert not (tmp_path / "full" / "train").exists() and not (tmp_path / "full" / "test").exists()
    write_image(photos / "a.jpg", _photo(9))
    with pytest.raises(DeblurGANError, match="same output name"):
        make_blur_dataset(photos, tmp_path / "out", progress=False)


def test_a_seed_or_an_output_folder_that_cannot_work_is_one_line(photos, tmp_path):
    with pytest.raises(DeblurGANError, match="seed=-1: use a whole number from 0 to 4294967295"):
        make_blur_dataset(photos, tmp_path / "out", seed=-1, progress=False)
    (tmp_path / "afile").write_text("")
    with pytest.raises(DeblurGANError, match="output_dir=.*afile: cannot write there .is a file."):
        make_blur_dataset(photos, tmp_path / "afile", progress=False)


def test_photos_inside_the_output_are_never_deleted(tmp_path):
    """The 'already holds images; pass overwrite' hint, followed, deleted the only copy."""
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "ds" / "B" / name, _photo(0))
    before = _tree(tmp_path / "ds")
    for overwrite in (True, False):
        with pytest.raises(DeblurGANError, match=r"input_dir=.*B: inside .*B, where this run writes"):
            make_blur_dataset(tmp_path / "ds" / "B", tmp_path / "ds", overwrite=overwrite, progress=False)
    assert _tree(tmp_path / "ds") == before
    make_blur_dataset(tmp_path / "ds" / "B", tmp_path, progress=False)  # beside them: nothing at stake
    assert _tree(tmp_path / "ds") == before and len(list_images(tmp_path / "A")) == 2


def test_an_unreadable_photo_is_named_and_the_others_get_their_pairs(photos, tmp_path, caplog):
    (photos / "zero.png").write_bytes(b"")
    (photos / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DeblurGANError, match="broken.png: .*; 2 of 5 photos were unreadable") as error:
        make_blur_dataset(photos, tmp_path / "out", crop_size=16, progress=False)
    assert "zero.png" in caplog.text and "broken.png" in caplog.text
    assert str(error.value).endswith(f"the others' pairs are in {tmp_path / 'out'}")
    names = ["a_00.png", "b_00.png", "sub__c_00.png"]
    assert [p.name for p in list_images(tmp_path / "out" / "A")] == names
    with open(tmp_path / "out" / "pairs.csv") as f:
        assert [row["name"] for row in csv.DictReader(f)] == names


@pytest.mark.slow
def test_script_end_to_end_and_unreadable_input(photos, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = [sys.executable, str(REPO / "scripts" / "make_blur_dataset.py")]
    out = tmp_path / "out"
    done = subprocess.run(
        script
        + [
            "--input_dir",
            str(photos),
            "--output_dir",
            str(out),
            "--crop_size",
            "32",
            "--blurs_per_image",
            "2",
            "--seed",
            "3",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 6 blurred/sharp pairs" in done.stdout
    assert [p.name for p in list_images(out / "A")] == [p.name for p in list_images(out / "B")]
    (photos / "broken.png").write_bytes(b"not a png")
    # the error in this process: the real one above showed how the script starts and exits
    done = invoke_script(
        "make_blur_dataset", "--input_dir", photos, "--output_dir", tmp_path / "out2", "--quiet"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "broken.png" in done.stderr and "Traceback" not in done.stderr
    assert len(list_images(tmp_path / "out2" / "A")) == 3  # the readable photos' pairs
    common = ["--input_dir", photos, "--output_dir", tmp_path / "out3"]
    for flags, expected in (
        (["--noise_sigma", "a,b"], "'--noise_sigma': 'a,b': give numbers separated by commas, as 3,25"),
        (
            ["--jpeg_quality", "95,70"],
            "error: --jpeg_quality 95,70: give min,max (whole numbers, 1 <= min <= max <= 100)",
        ),
    ):
        done = invoke_script("make_blur_dataset", *common, *flags)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert expected in done.stderr.strip().splitlines()[-1], done.stderr


def test_a_photo_too_small_to_score_gets_no_pairs(photos, tmp_path):
    """A 1x1 photo or a 3x5000 strip became pairs that train.py and test.py then refused."""
    write_image(photos / "strip.png", np.zeros((3, 5000, 3), np.float32))
    with pytest.raises(DeblurGANError) as error:
        make_blur_dataset(photos, tmp_path / "out", progress=False)
    assert str(error.value).startswith(
        f"{photos / 'strip.png'} is 5000x3: too small to score (SSIM needs at least 11x11 pixels); 1 of 4 "
        "photos were unreadable or too small and have no pairs"
    )
    assert not any("strip" in p.name for p in (tmp_path / "out" / "A").iterdir())


def test_a_photo_smaller_than_the_crop_is_named(photos, tmp_path, caplog):
    rows = make_blur_dataset(photos, tmp_path / "out", crop_size=45, progress=False)
    sizes = {row["name"]: row["crop_top_left_height_width"].split()[2:] for row in rows}
    assert sizes == {"a_00.png": ["45", "45"], "b_00.png": ["40", "45"], "sub__c_00.png": ["45", "45"]}
    (warning,) = caplog.messages  # b.jpg is 72x40
    assert (
        warning
        == f"{photos / 'b.jpg'} is 72x40, smaller than crop_size=45: its pairs are as much of it as fits"
    )
