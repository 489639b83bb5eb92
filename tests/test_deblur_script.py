import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_script, remove_flag_names
from infer_helpers import random_photo, tiny_generator
from PIL import Image

from deblurgan import inference
from deblurgan.checkpoints import load_generator, save_model

REPO = Path(__file__).resolve().parents[1]


def _run(script, *args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_model(tiny_generator(), tmp_path_factory.mktemp("w") / "generator.keras")


def _photo(path, height, width, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((random_photo(height, width, seed) * 255).astype(np.uint8)).save(path)


def test_files_already_at_the_output_names_are_replaced_only_with_overwrite(weights, tmp_path):
    """deblur.py --input_dir demo --output_dir demo_sharp replaced the sharp originals there."""
    _photo(tmp_path / "in" / "a.png", 16, 16)
    _photo(tmp_path / "sharp" / "a.png", 16, 16, seed=1)
    _photo(tmp_path / "sharp" / "b.png", 16, 16, seed=2)
    original = (tmp_path / "sharp" / "a.png").read_bytes()
    args = ["--weight_path", weights, "--input_dir", tmp_path / "in", "--output_dir", tmp_path / "sharp"]
    unloaded = ["--weight_path", tmp_path / "missing.h5", *args[2:]]  # said before any loading
    result = invoke_script("deblur", *unloaded)
    assert result.returncode == 2 and result.stderr == (
        f"error: --output_dir {tmp_path / 'sharp'}: already holds {tmp_path / 'sharp' / 'a.png'}; "
        "choose another folder, pass --overwrite to replace them, or --skip_existing to keep them\n"
    )
    assert (tmp_path / "sharp" / "a.png").read_bytes() == original
    assert invoke_script("deblur", *args, "--overwrite").returncode == 0
    assert (tmp_path / "sharp" / "a.png").read_bytes() != original
    result = invoke_script("deblur", *args, "--overwrite", "--skip_existing")
    assert result.stderr == "error: --overwrite and --skip_existing: pick one\n"


def test_an_interrupted_folder_goes_on_with_skip_existing(weights, tmp_path, monkeypatch, caplog):
    """After Ctrl-C the rerun was refused (outputs there), and --overwrite redid every photo."""
    for name in "abc":
        _photo(tmp_path / "in" / f"{name}.png", 16, 16)
    original, calls = inference.deblur_file, []

    def ctrl_c_on_the_second(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(inference, "deblur_file", ctrl_c_on_the_second)
    with pytest.raises(KeyboardInterrupt), caplog.at_level(logging.WARNING, logger="deblurgan.inference"):
        inference.deblur_folder(load_generator(weights), tmp_path / "in", tmp_path / "out", progress=False)
    assert [r.getMessage() for r in caplog.records if r.name == "deblurgan.inference"] == [
        f"1 of 3 photos written to {tmp_path / 'out'} before the interruption; skip_existing=True goes on "
        "with the rest"
    ]
    first = (tmp_path / "out" / "a.png").read_bytes()
    monkeypatch.undo()
    args = ["--weight_path", weights, "--input_dir", tmp_path / "in", "--output_dir", tmp_path / "out"]
    result = invoke_script("deblur", *args, "--skip_existing")
    assert result.returncode == 0, result.stderr
    kept = f"deblurred 2 photo(s) into {tmp_path / 'out'}\nkept the 1 output(s) already there\n"
    assert result.stdout == f"generator: {weights}\n{kept}"
    assert (tmp_path / "out" / "a.png").read_bytes() == first
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    # an interrupted overwrite leaves earlier outputs, which --skip_existing would keep as this run's
    remove_flag_names()  # the library's own words again, not the script's
    calls.clear()
    monkeypatch.setattr(inference, "deblur_file", ctrl_c_on_the_second)
    caplog.clear()
    with pytest.raises(KeyboardInterrupt), caplog.at_level(logging.WARNING, logger="deblurgan.inference"):
        inference.deblur_folder(
            load_generator(weights), tmp_path / "in", tmp_path / "out", progress=False, overwrite=True
        )
    assert [r.getMessage() for r in caplog.records if r.name == "deblurgan.inference"] == [
        f"1 of 3 photos written to {tmp_path / 'out'} before the interruption; 2 other outputs there are "
        "from before this run; overwrite=True replaces them all"
    ]


def test_ctrl_c_while_the_script_loads_ends_it_quietly(tmp_path):
    """It printed a KeyboardInterrupt traceback, or, landing in JAX's garbage-collection callback
    while TensorFlow loaded, was lost, and the script deblurred the whole folder."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = [sys.executable, str(REPO / "scripts" / "deblur.py"), "--output_dir", str(tmp_path / "out")]
    process = subprocess.Popen(
        script, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal, not nohup's
    )  # fmt: skip
    maps, deadline = Path(f"/proc/{process.pid}/maps"), time.monotonic() + 60
    while "tensorflow" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)  # until TensorFlow's libraries load: the import has seconds to go
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert (process.returncode, stdout, stderr) == (130, "", "")
    assert not (tmp_path / "out").exists()


def test_a_single_photo_is_planned_as_carefully_as_a_folder(weights, tmp_path):
    """A rerun on one photo replaced its earlier output in silence; a text file made an empty output
    folder and exit 1; --output_dir out/a.png made a folder named a.png."""
    _photo(tmp_path / "a.png", 16, 16)
    (tmp_path / "notes.txt").write_text("mine")
    common = ["--weight_path", weights, "--input_dir"]
    assert (
        invoke_script("deblur", *common, tmp_path / "a.png", "--output_dir", tmp_path / "out").returncode == 0
    )
    written = (tmp_path / "out" / "a.png").read_bytes()
    for source, output, message in (
        ("a.png", "out", f"--output_dir {tmp_path / 'out'}: already holds {tmp_path / 'out' / 'a.png'}; "),
        ("notes.txt", "new", f"--input_dir {tmp_path / 'notes.txt'}: not a photo (.png, .jpg, .tif, ...)"),
        ("a.png", "new/a.png", f"--output_dir {tmp_path / 'new' / 'a.png'}: the folder the result goes into"),
    ):
        result = invoke_script("deblur", *common, tmp_path / source, "--output_dir", tmp_path / output)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
    assert (tmp_path / "out" / "a.png").read_bytes() == written and not (tmp_path / "new").exists()


@pytest.mark.slow
def test_corrupt_file_gives_summary_and_exit_1_while_good_ones_are_written(weights, tmp_path):
    _photo(tmp_path / "in" / "a.png", 37, 53)
    _photo(tmp_path / "in" / "sub" / "c.jpg", 64, 40, seed=1)
    (tmp_path / "in" / "b.png").write_bytes(b"not a png at all")
    before = {p: p.read_bytes() for p in (tmp_path / "in").rglob("*") if p.is_file()}
    result = invoke_script(
        "deblur",
        "--weight_path",
        weights,
        "--input_dir",
        tmp_path / "in",
        "--output_dir",
        tmp_path / "out",
        "--tile_size",
        96,
        "--precision",
        "bf16",
    )
    assert result.returncode == 1, result.stderr
    assert "deblurred 2 photo(s)" in result.stdout and "b.png" in result.stdout
    assert "Traceback" not in result.stderr
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert out.size == (53, 37)
    with Image.open(tmp_path / "out" / "sub" / "c.jpg") as out:
        assert out.size == (40, 64) and out.format == "JPEG"
    assert not (tmp_path / "out" / "b.png").exists()
    assert before == {p: p.read_bytes() for p in (tmp_path / "in").rglob("*") if p.is_file()}


@pytest.mark.slow
def test_sicara_name_side_by_side_and_created_output_folder(weights, tmp_path):
    """deblur_image.py --image_path PHOTO, the Sicara README's command (no such option before)."""
    _photo(tmp_path / "one.png", 20, 24)
    result = _run(
        "deblur_image.py",
        "--weight_path",
        weights,
        "--image_path",
        tmp_path / "one.png",
        "--output_dir",
        tmp_path / "deep" / "new",
        "--side_by_side",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"generator: {weights}\n")  # not Sicara's ./generator.h5
    with Image.open(tmp_path / "deep" / "new" / "one.png") as out:
        assert out.size == (48, 20)


@pytest.mark.slow
def test_user_errors_are_one_line_and_exit_2(weights, tmp_path):
    _photo(tmp_path / "a.png", 16, 16)
    # a real process once (exit status and stderr as a shell sees them), then in this one
    same = _run("deblur.py", "--weight_path", weights, "--input_dir", tmp_path, "--output_dir", tmp_path)
    assert same.returncode == 2
    assert same.stderr.strip().splitlines()[-1].startswith("error: --output_dir")
    missing = invoke_script(
        "deblur",
        "--weight_path",
        tmp_path / "none.h5",
        "--input_dir",
        tmp_path,
        "--output_dir",
        tmp_path / "out",
    )
    assert missing.returncode == 2
    assert "scripts/train.py" in missing.stderr and "Traceback" not in missing.stderr
    options = ["--input_dir", tmp_path, "--output_dir", tmp_path / "out"]
    relative = invoke_script("deblur", "--weight_path", "no_such/g.h5", *options)  # as the default is
    assert f"--weight_path no_such/g.h5: no such generator file in {Path.cwd()}; " in relative.stderr
    options = ["--weight_path", weights, "--input_dir", tmp_path, "--output_dir", tmp_path / "int8"]
    int8 = invoke_script("deblur", *options, "--precision", "int8")  # keras engine: before any photo
    assert int8.returncode == 2
    assert int8.stderr.strip().splitlines()[-1] == (
        "error: --precision int8: runs on the onnxruntime engine only, not keras"
    )
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    for side in ("A", "B"):
        _photo(tmp_path / "pairs" / side / "a.png", 16, 16)
    for folder, why in ((a_file, "is a file"), (a_file / "sub", f"{a_file} is a file")):
        for script, input_dir in (
            ("deblur", tmp_path),
            ("test", tmp_path / "pairs"),
        ):  # test.py: before evaluating
            options = ["--weight_path", weights, "--input_dir", input_dir, "--output_dir", folder]
            refused = invoke_script(script, *options)
            assert (refused.returncode, refused.stderr.strip().splitlines()) == (
                2,
                [f"error: --output_dir {folder}: cannot write there ({why}); choose another folder"],
            )
    assert a_file.read_text() == "keep me"
    if Path("/proc/self").is_dir():  # root may write to /proc by its mode: the mkdir was a traceback
        refused = invoke_script("deblur", "--weight_path", weights, "--output_dir", "/proc/deblurgan_out")
        assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1].startswith(
            "error: --output_dir /proc/deblurgan_out: cannot write there ("
        )


def test_photo_over_max_image_pixels_is_one_line_and_the_others_are_written(weights, tmp_path, caplog):
    _photo(tmp_path / "in" / "a.png", 32, 40)
    _photo(tmp_path / "in" / "huge.png", 64, 80, seed=1)  # 5,120 px, "huge" under the limit below
    options = ["--input_dir", tmp_path / "in", "--output_dir", tmp_path / "out", "--max_image_pixels", 2000]
    with caplog.at_level(logging.WARNING):
        result = invoke_script("deblur", "--weight_path", weights, *options)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and (tmp_path / "out" / "a.png").is_file()
    lines = [line for line in result.stdout.splitlines() if "huge.png" in line]
    assert len(lines) == 1 and "80x64 pixels, over --max_image_pixels 2,000" in lines[0], result.stdout
    assert "huge.png" not in result.stderr + caplog.text  # said once, in the summary, as flags
    assert not (tmp_path / "out" / "huge.png").exists()
