"""GOPRO_Large -> {train,test}/{A,B}/<scene>_<frame>.png, on a tiny fake GOPRO tree."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_script
from PIL import Image

from deblurgan.errors import DeblurGANError
from deblurgan.gopro import organize_gopro
from deblurgan.pairing import pair_images

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "organize_gopro_dataset.py"
SCENES = {"train": ["GOPR0372_07_00", "GOPR0374_11_00"], "test": ["GOPR0384_11_00"]}
FRAMES = ["000047.png", "000048.png"]
KEYS = {"blur": 1, "blur_gamma": 2, "sharp": 3}


def fake_gopro(root):
    """Each frame's pixels encode (scene, frame, key), so every output can be traced to its source."""
    for split, scenes in SCENES.items():
        for scene_number, scene in enumerate(scenes):
            for key, key_number in KEYS.items():
                folder = root / split / scene / key
                folder.mkdir(parents=True)
                for frame_number, frame in enumerate(FRAMES):
                    value = (scene_number, frame_number, key_number)
                    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(folder / frame)
    return root


def snapshot(root):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("blur_key", ["blur", "blur_gamma"])
def test_organize_copies_scene_prefixed_pairs(tmp_path, blur_key):
    dir_in = fake_gopro(tmp_path / "GOPRO_Large")
    before = snapshot(dir_in)
    counts = organize_gopro(dir_in, tmp_path / "out", blur_key=blur_key, progress=False)
    assert counts == {"train": 4, "test": 2}
    assert snapshot(dir_in) == before, "inputs must not change"
    for split, scenes in SCENES.items():
        pairs = pair_images(tmp_path / "out" / split)
        names = [a.name for a, _ in pairs]
        assert names == sorted(f"{scene}_{frame}" for scene in scenes for frame in FRAMES)
        for blurred, sharp in pairs:
            scene, frame = blurred.name.rsplit("_", 1)
            source = dir_in / split / scene
            assert blurred.read_bytes() == (source / blur_key / frame).read_bytes()
            assert sharp.read_bytes() == (source / "sharp" / frame).read_bytes()
            assert not os.path.samefile(blurred, source / blur_key / frame)


def test_link_hard_links_and_rerun_replaces(tmp_path):
    dir_in = fake_gopro(tmp_path / "GOPRO_Large")
    organize_gopro(dir_in, tmp_path / "out", progress=False)
    organize_gopro(dir_in, tmp_path / "out", link=True, progress=False)
    target = tmp_path / "out" / "test" / "B" / "GOPR0384_11_00_000048.png"
    assert os.path.samefile(target, dir_in / "test" / "GOPR0384_11_00" / "sharp" / "000048.png")
    leftovers = [p.name for p in (tmp_path / "out").rglob(".*")]
    assert leftovers == [], "no temporary files may remain"


def test_hidden_scenes_are_skipped_and_colliding_or_stale_names_refused(tmp_path):
    dir_in = fake_gopro(tmp_path / "GOPRO_Large")
    (dir_in / "train" / ".ipynb_checkpoints").mkdir()  # stopped the run: ".../blur: missing"
    assert organize_gopro(dir_in, tmp_path / "out", progress=False) == {"train": 4, "test": 2}
    (tmp_path / "out" / "train" / "A" / "earlier_000001.png").write_bytes(b"")
    with pytest.raises(DeblurGANError, match=r"dir_out=.*out: train/A holds 1 files this run does not"):
        organize_gopro(dir_in, tmp_path / "out", progress=False)
    # scene a_b, frame c.png and scene a, frame b_c.png both gave a_b_c.png, one silently lost
    for scene, frame in (("a_b", "c.png"), ("a", "b_c.png")):
        for key in ("blur", "sharp"):
            (dir_in / "test" / scene / key).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(dir_in / "test" / scene / key / frame)
    with pytest.raises(
        DeblurGANError, match=r"a_b/blur/c.png and .*a/blur/b_c.png would both become test/A/a_b_c.png"
    ):
        organize_gopro(dir_in, tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()


def test_wrong_dir_in_explains_the_layout(tmp_path):
    dir_in = fake_gopro(tmp_path / "GOPRO_Large")
    with pytest.raises(DeblurGANError, match=r"no such folder; expected .*\{train,test\}/<scene>/"):
        organize_gopro(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(DeblurGANError, match=rf"a split folder, .* pass its parent \({dir_in}\) as dir_in"):
        organize_gopro(dir_in / "train", tmp_path / "out")
    scene = next((dir_in / "train").iterdir())
    with pytest.raises(
        DeblurGANError, match=rf"a scene folder, .* two levels up \({dir_in}\) as dir_in"
    ) as e:
        organize_gopro(scene, tmp_path / "out")
    assert f"(expected {dir_in}/{{train,test}}/<scene>/" in str(e.value)  # not {scene}/{{train,test}}
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeblurGANError, match="no train/ or test/ folder"):
        organize_gopro(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(DeblurGANError, match="choose blur or blur_gamma"):
        organize_gopro(dir_in, tmp_path / "out", blur_key="sharp")
    with pytest.raises(DeblurGANError, match="inside the input"):
        organize_gopro(dir_in, dir_in / "organized")
    assert not (tmp_path / "out").exists()


def test_incomplete_scene_is_named(tmp_path):
    dir_in = fake_gopro(tmp_path / "GOPRO_Large")
    lost = dir_in / "train" / "GOPR0374_11_00" / "sharp" / "000048.png"
    content = lost.read_bytes()
    lost.unlink()
    unmatched = r"GOPR0374_11_00: 1 frames are not in both blur/ and sharp/ \(000048"
    with pytest.raises(DeblurGANError, match=unmatched):
        organize_gopro(dir_in, tmp_path / "out")
    lost.write_bytes(content)
    for path in (dir_in / "test" / "GOPR0384_11_00" / "sharp").iterdir():
        path.unlink()
    (dir_in / "test" / "GOPR0384_11_00" / "sharp").rmdir()
    with pytest.raises(DeblurGANError, match=r"GOPR0384_11_00/sharp: missing"):
        organize_gopro(dir_in, tmp_path / "out")


@pytest.mark.slow
def test_script_end_to_end(tmp_path):
    dir_in = fake_gopro(tmp_path / "GOPRO_Large")
    env = dict(os.environ, PYTHONPATH=str(SCRIPT.parents[1]))
    run = [sys.executable, str(SCRIPT), "--dir_in", str(dir_in), "--dir_out", str(tmp_path / "out")]
    done = subprocess.run([*run, "--blur_key", "blur_gamma"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "train: 4 pairs copied" in done.stdout and "test: 2 pairs copied" in done.stdout
    assert len(list((tmp_path / "out" / "train" / "A").iterdir())) == 4
    # the error in this process: the real one above showed how the script starts and exits
    failed = invoke_script(
        "organize_gopro_dataset", "--dir_in", tmp_path / "nope", "--dir_out", tmp_path / "o"
    )
    assert failed.returncode == 2
    assert failed.stderr.splitlines()[-1].startswith("error: ") and "Traceback" not in failed.stderr
    assert "nope: no such folder" in failed.stderr
