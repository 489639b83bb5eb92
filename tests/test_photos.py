"""fetch_photos: the reviewed selection, the manifest, a fake .deb, and bad input (no network)."""

import csv
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import load_script
from PIL import Image

from deblurgan.errors import DeblurGANError
from deblurgan.io import list_images
from deblurgan.photos import (
    DEBIAN_PACKAGES,
    PHOTOS,
    PIP_NAMES,
    VAL_CROP_SIZE,
    DebianPackage,
    PackagedPhoto,
    debian_licence,
    fetch_photos,
)
from deblurgan.sample_data import SAMPLE_PHOTOS

FAKE_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake-wallpapers

Files: *
Copyright: 2020 Someone Else
License: GPL-2+

Files: 22.04/forest_by_Ann.png
Copyright: Ann Example, 2024
License: CC-BY-4.0

Files: debian/*
Copyright: 2024 Packager
License: Expat
"""
REPO = Path(__file__).resolve().parents[1]
PYTHON_PHOTOS = tuple(p for p in PHOTOS if p.package in PIP_NAMES)


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _fake_deb(folder):
    """A real .deb (dpkg-deb --build) holding one 640x600 'photo' and a DEP-5 copyright file."""
    root = folder / "fake-wallpapers"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: fake-wallpapers\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: Test <test@example.org>\nDescription: test wallpapers\n"
    )
    (root / "usr/share/backgrounds").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (600, 640, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "usr/share/backgrounds/forest_by_Ann.png")
    (root / "usr/share/doc/fake-wallpapers").mkdir(parents=True)
    (root / "usr/share/doc/fake-wallpapers/copyright").write_text(FAKE_COPYRIGHT)
    deb = folder / "debs" / "fake-wallpapers_1.0-1_all.deb"
    deb.parent.mkdir()
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True
    )
    return deb


def test_selection_is_reviewed_and_keeps_evaluation_photos_out():
    keys = [(p.package, p.resource) for p in PHOTOS]
    assert len(keys) == len(set(keys))
    assert all(p.reason and p.split in ("train", "val") for p in PHOTOS)
    assert all(p.licence for p in PYTHON_PHOTOS)  # Debian licences are read from the package
    pinned = {package.name for package in DEBIAN_PACKAGES}
    assert {p.package for p in PHOTOS} - set(PIP_NAMES) == pinned
    held_out = {(p.package, p.resource) for p in SAMPLE_PHOTOS if p.split != "train"}
    assert len(held_out) == 4 and not held_out & set(keys)
    assert sum(p.split == "val" for p in PHOTOS) == 6


def test_debian_licence_takes_the_last_matching_paragraph():
    assert debian_licence(FAKE_COPYRIGHT, "usr/share/backgrounds/forest_by_Ann.png") == (
        "CC-BY-4.0 (Ann Example, 2024)"
    )
    assert debian_licence(FAKE_COPYRIGHT, "usr/share/backgrounds/other.png") == "GPL-2+ (2020 Someone Else)"
    with pytest.raises(DeblurGANError, match="no licence"):
        debian_licence("Files: debian/*\nCopyright: x\nLicense: MIT\n", "usr/share/a.png")


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_manifest_lists_every_file_with_its_source_licence_and_hash(tmp_path):
    deb = _fake_deb(tmp_path)
    fake = PackagedPhoto("fake-wallpapers", "usr/share/backgrounds/forest_by_Ann.png", "val", "noise")
    package = DebianPackage("fake-wallpapers", "1.0-1", _sha256(deb))
    out = tmp_path / "photos"
    fetch_photos(
        out, photos=PYTHON_PHOTOS + (fake,), debian_packages=(package,), deb_dir=deb.parent, progress=False
    )

    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir makes it, not mkdtemp's 0700
    with open(out / "manifest.csv", newline="") as stream:
        rows = {row["file"]: row for row in csv.DictReader(stream)}
    assert sorted(rows) == sorted(p.relative_to(out).as_posix() for p in list_images(out))
    for name, row in rows.items():
        assert _sha256(out / name) == row["sha256"]
        assert row["licence"] and row["source_package"] and row["package_version"] and row["path_in_package"]
        with Image.open(out / name) as image:
            assert image.size == (int(row["width"]), int(row["height"]))
    train = {row["path_in_package"] for row in rows.values() if row["split"] == "train"}
    val = {row["path_in_package"] for row in rows.values() if row["split"] == "val"}
    assert len(train) == 7 and val == {fake.resource, "mpl-data/sample_data/grace_hopper.jpg"}
    assert not {p.resource for p in SAMPLE_PHOTOS if p.split != "train"} & train
    forest = rows["val_photos/fake-wallpapers__forest_by_Ann.png"]
    assert forest["licence"] == "CC-BY-4.0 (Ann Example, 2024)" and forest["package_version"] == "1.0-1"
    pairs = [row for row in rows.values() if row["split"] == "val_pair"]
    assert len(pairs) == 2 * 2 * 2  # 2 photos x 2 crops x (A, B)
    assert all(row["width"] == str(VAL_CROP_SIZE) for row in pairs)
    # the pinned hash is checked before anything is unpacked
    bad = DebianPackage("fake-wallpapers", "1.0-1", "0" * 64)
    with pytest.raises(DeblurGANError, match="pinned"):
        fetch_photos(
            tmp_path / "bad", photos=(fake,), debian_packages=(bad,), deb_dir=deb.parent, progress=False
        )
    assert not (tmp_path / "bad").exists()


def test_bad_folders_and_offline_are_one_line(tmp_path, monkeypatch):
    main = load_script("fetch_photos").main
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x.txt").write_text("keep me")
    (tmp_path / "a_file").write_text("")
    runner = CliRunner()
    for output, expected in (("full", "already holds files"), ("a_file/sub", "cannot write there")):
        result = runner.invoke(main, ["--output_dir", str(tmp_path / output), "--skip_debian", "--quiet"])
        assert result.exit_code == 2 and expected in result.output
        assert result.output.startswith(f"error: --output_dir {tmp_path / output}: ")
        assert result.output.count("\n") == 1
    assert (tmp_path / "full/x.txt").read_text() == "keep me"
    for deb_dir, skip, expected in (
        ("none", [], "no such folder; `apt-get download` the packages into a folder and name that"),
        ("full", ["--skip_debian"], "unused with --skip_debian; leave one out"),
        (
            "full",
            [],
            "no plasma-workspace-wallpapers_*.deb; run `apt-get download plasma-workspace-wallpapers=",
        ),
    ):
        args = ["--output_dir", str(tmp_path / "new"), "--deb_dir", str(tmp_path / deb_dir), *skip, "--quiet"]
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and result.output.count("\n") == 1
        assert result.output.startswith(f"error: --deb_dir {tmp_path / deb_dir}: {expected}")
        assert not (tmp_path / "new").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no apt-get: as on a machine without Debian
    result = runner.invoke(main, ["--output_dir", str(tmp_path / "new"), "--quiet"])
    assert result.exit_code == 2 and "--skip_debian" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new.partial-*"))
