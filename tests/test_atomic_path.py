"""deblurgan.io.atomic_path: whole files or none, synced before the rename, one-line errors."""

import os

import pytest

from deblurgan.errors import DeblurGANError
from deblurgan.io import atomic_path


def test_a_long_name_that_fits_the_file_system_is_written(tmp_path):
    """The temporary name added 14 characters to the whole name: a 254-byte one failed (ENAMETOOLONG)."""
    path = tmp_path / ("x" * 250 + ".png")
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"data")
    assert path.read_bytes() == b"data" and os.listdir(tmp_path) == [path.name]


def test_the_data_and_the_rename_are_synced(tmp_path, monkeypatch):
    synced, fsync = [], os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    with atomic_path(tmp_path / "a.csv") as tmp:
        tmp.write_text("a")
    assert synced == [str(tmp), str(tmp_path)]  # the file before the rename, its folder after


def test_a_folder_at_the_name_is_one_line_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "per_image.csv").mkdir()
    with pytest.raises(DeblurGANError, match="per_image.csv: cannot write there .a folder has that name"):
        with atomic_path(tmp_path / "per_image.csv") as tmp:
            tmp.write_text("a")
    assert os.listdir(tmp_path) == ["per_image.csv"]


def test_a_broken_link_in_the_way_is_named(tmp_path):
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    with pytest.raises(DeblurGANError) as error:
        with atomic_path(tmp_path / "out" / "g.h5"):
            pass
    assert str(error.value) == (
        f"{tmp_path / 'out' / 'g.h5'}: cannot write there ({tmp_path / 'out'} is a link to "
        f"{tmp_path / 'gone'}, which does not exist)"
    )


def test_an_error_while_writing_keeps_the_earlier_file(tmp_path):
    (tmp_path / "a.txt").write_text("earlier")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert (tmp_path / "a.txt").read_text() == "earlier" and os.listdir(tmp_path) == ["a.txt"]
