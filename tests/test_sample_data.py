"""The embedded dataset in images/: splits by photo, matching pairs, and a faithful rebuild."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import load_script

from deblurgan.io import list_images, read_image
from deblurgan.sample_data import (
    DEMO_SOURCES,
    SAMPLE_PHOTOS,
    SPLITS,
    gather_sample_photos,
    make_sample_dataset,
)

IMAGES = Path(__file__).resolve().parents[1] / "images"


def _source_stem(pair_name):
    return pair_name.rsplit("_", 1)[0]


def _names(folder):
    return [p.relative_to(folder).as_posix() for p in list_images(folder)]


def test_each_photo_is_in_one_split_and_demos_are_not_training_photos():
    resources = [p.resource for p in SAMPLE_PHOTOS]
    assert len(resources) == len(set(resources))
    assert {p.split for p in SAMPLE_PHOTOS} == set(SPLITS)
    training = {Path(p.resource).name for p in SAMPLE_PHOTOS if p.split == "train"}
    assert not training & set(DEMO_SOURCES)


def test_committed_splits_pair_up_and_share_no_photo():
    stems = {}
    for split in SPLITS:
        names = _names(IMAGES / split / "A")
        assert names and names == _names(IMAGES / split / "B")
        stems[split] = {_source_stem(n) for n in names}
        for name in names[:2]:
            assert read_image(IMAGES / split / "A" / name).pixels.shape == (256, 256, 3)
    assert not stems["train"] & stems["test"]
    assert not stems["train"] & stems["holdout"]
    assert not stems["test"] & stems["holdout"]
    demo = _names(IMAGES / "demo")
    assert 3 <= len(demo) <= 4 and demo == _names(IMAGES / "demo_sharp")
    assert not {_source_stem(n) for n in demo} & stems["train"]


def test_committed_dataset_is_small():
    total = sum(p.stat().st_size for p in IMAGES.rglob("*") if p.is_file())
    assert total < 15 * 2**20


@pytest.mark.slow
def test_rebuild_gives_the_committed_pixels(tmp_path):
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    make_sample_dataset(tmp_path, seed=0, progress=False)
    for folder in [*(f"{s}/{ab}" for s in SPLITS for ab in "AB"), "demo", "demo_sharp"]:
        names = _names(IMAGES / folder)
        assert _names(tmp_path / folder) == names
        for name in names:
            rebuilt = read_image(tmp_path / folder / name).pixels
            committed = read_image(IMAGES / folder / name).pixels
            # Byte-identical on one machine; another CPU's FFT may round a few pixels the other way.
            assert np.abs(rebuilt - committed).max() <= 1.5 / 255
            assert np.mean(rebuilt != committed) < 1e-3


def test_gather_copies_each_source_unchanged_into_its_split(tmp_path):
    pytest.importorskip("sklearn")
    gather_sample_photos(tmp_path)
    for split in SPLITS:
        expected = sorted(Path(p.resource).name for p in SAMPLE_PHOTOS if p.split == split)
        assert sorted(p.name for p in (tmp_path / split).iterdir()) == expected


def test_bad_options_leave_an_existing_dataset_alone(tmp_path):
    """--overwrite with a bad option deleted the whole dataset, then named the wrong option."""
    from deblurgan.errors import DeblurGANError

    (tmp_path / "train" / "A").mkdir(parents=True)
    (tmp_path / "train" / "A" / "x.png").write_bytes(b"kept")
    for options, expected in (
        ({"train_blurs": 0}, "train_blurs=0: use 1 or more"),
        ({"eval_blurs": -1}, "eval_blurs=-1: use 1 or more"),
        ({"crop_size": 0}, "crop_size=0: use at least 8 px"),
        ({"seed": -1}, "seed=-1: use a whole number"),
    ):
        with pytest.raises(DeblurGANError, match=expected):
            make_sample_dataset(tmp_path, overwrite=True, progress=False, **options)
        assert (tmp_path / "train" / "A" / "x.png").read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # no temporary folder left
    # the library's hint, "or leave it out (None)", is wrong for the script, whose default is 256
    result = CliRunner().invoke(load_script("make_sample_dataset").main, ["--crop_size", "0"])
    assert result.exit_code == 2 and "'--crop_size': 0 is not in the range x>=8" in result.output


def test_overwrite_replaces_the_dataset_but_not_a_users_files_in_it(tmp_path):
    """--overwrite deleted a user's notes and photos put in a split folder, with the dataset."""
    from deblurgan.errors import DeblurGANError

    pytest.importorskip("sklearn")
    small = dict(crop_size=16, train_blurs=1, eval_blurs=1, max_side=48, progress=False)
    make_sample_dataset(tmp_path, **small)
    (tmp_path / "train" / "mine").mkdir()
    (tmp_path / "train" / "mine" / "notes.txt").write_text("mine")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(DeblurGANError, match=r"train/mine/notes.txt: not a file of the sample dataset"):
        make_sample_dataset(tmp_path, seed=1, overwrite=True, **small)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    shutil.rmtree(tmp_path / "train" / "mine")
    make_sample_dataset(tmp_path, seed=1, overwrite=True, **small)  # the dataset's own files: replaced
    assert (tmp_path / "train" / "A").is_dir() and not (tmp_path / "train" / "mine").exists()


def test_gather_leaves_other_files_of_the_same_name_alone(tmp_path):
    from deblurgan.errors import DeblurGANError

    pytest.importorskip("sklearn")
    gather_sample_photos(tmp_path)
    gather_sample_photos(tmp_path)  # the same photos again: nothing to refuse
    (tmp_path / "train" / "astronaut.png").write_bytes(b"mine")
    with pytest.raises(DeblurGANError, match="astronaut.png: exists and is not the sample photo"):
        gather_sample_photos(tmp_path, parameter="sources_only")
    assert (tmp_path / "train" / "astronaut.png").read_bytes() == b"mine"
