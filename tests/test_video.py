"""scripts/deblur_video.py and deblurgan.video: frame count, size, fps and audio kept; bad input."""

import wave

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import load_script
from infer_helpers import tiny_generator

from deblurgan.checkpoints import save_model
from deblurgan.io import write_image
from deblurgan.video import _count_frames, deblur_video

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")


def make_clip(path, width, height, frames, fps, audio=False):
    """A clip of moving gradients; with ``audio``, a 1-second tone (AAC) from a generated WAV."""
    options = {}
    if audio:
        wav = path.with_suffix(".wav")
        with wave.open(str(wav), "wb") as f:
            f.setnchannels(1), f.setsampwidth(2), f.setframerate(8000)
            f.writeframes((np.sin(np.arange(8000) * 0.2) * 3000).astype("<i2").tobytes())
        options = {"audio_path": str(wav), "audio_codec": "aac"}
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    size = (width, height)
    writer = imageio_ffmpeg.write_frames(
        str(path), size, fps=fps, macro_block_size=1, pix_fmt_out=pix_fmt, **options
    )
    writer.send(None)
    ramp = np.add.outer(np.arange(height), np.arange(width))
    for i in range(frames):
        frame = np.stack([(ramp * 4 + 20 * i) % 256, ramp % 256, (ramp * 2) % 256], axis=-1)
        writer.send(frame.astype(np.uint8).tobytes())
    writer.close()
    return path


def video_facts(path):
    meta = next(imageio_ffmpeg.read_frames(str(path)))
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return {"size": meta["size"], "fps": meta["fps"], "frames": frames, "audio": "audio_codec" in meta}


@pytest.mark.parametrize(
    "width, height, frames, fps, audio",
    [(48, 32, 7, 10, False), (44, 30, 5, 25, True), (45, 29, 4, 12, False)],  # odd sizes: yuv444p
)
def test_clip_keeps_frame_count_size_fps_and_audio(tmp_path, width, height, frames, fps, audio):
    source = make_clip(tmp_path / "in.mp4", width, height, frames, fps, audio=audio)
    written = deblur_video(tiny_generator(), source, tmp_path / "out.mp4", progress=False)
    assert written == frames
    assert _count_frames(source) == frames  # the progress bar's total (audio may outlast the frames)
    assert video_facts(tmp_path / "out.mp4") == video_facts(source)
    assert video_facts(source) == {"size": (width, height), "fps": fps, "frames": frames, "audio": audio}
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4") == ["in.mp4", "out.mp4"]


def test_side_by_side_doubles_the_width(tmp_path):
    source = make_clip(tmp_path / "in.mp4", 40, 24, 3, 10)
    deblur_video(tiny_generator(), source, tmp_path / "out.mp4", side_by_side=True, progress=False)
    facts = video_facts(tmp_path / "out.mp4")
    assert facts["size"] == (80, 24) and facts["frames"] == 3


@pytest.fixture(scope="module")
def script():
    return load_script("deblur_video").main


def _bad_inputs(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", 40, 24, 2, 10)
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "empty.y4m").write_text("YUV4MPEG2 W40 H24 F10:1 Ip A1:1 C420jpeg\n")  # a header, no frame
    (tmp_path / "file").write_text("a file, not a folder")
    (tmp_path / "frames").mkdir(exist_ok=True)
    write_image(tmp_path / "photo.png", np.zeros((24, 40, 3), np.float32))
    return {
        "a folder": ("frames", "out.mp4", "a folder; pass a video file"),  # was "no such file"
        "a photo": ("photo.png", "out.mp4", "a photo, not a video; deblur photos with scripts/deblur.py"),
        "not a video": ("notes.mp4", "out.mp4", "not a video ffmpeg can read"),
        "zero frames": ("empty.y4m", "out.mp4", "the video has no frames"),
        "unwritable output": (clip.name, "file/out.mp4", "cannot write"),
        "output is input": (clip.name, clip.name, "is the input; choose another file name"),
        "missing": ("missing.mp4", "out.mp4", "no such file"),
        "existing output": (
            clip.name, "notes.mp4", "notes.mp4: already exists; choose another name, or pass --overwrite"
        ),
        "not a video name": (clip.name, "out.txt", "not a video file name; end it with one of .mp4"),
    }


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, script):
    weights = save_model(tiny_generator(), tmp_path / "weights" / "g.keras")
    before = None
    for case, (source, target, message) in _bad_inputs(tmp_path).items():
        before = before or {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
        args = ["--weight_path", weights, "--input", tmp_path / source, "--output", tmp_path / target]
        result = CliRunner().invoke(script, [str(a) for a in args])
        assert result.exit_code == 2, (case, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --"), (case, result.output)
        assert message in lines[0], case
        assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before, case


def test_the_script_deblurs_a_clip_end_to_end(tmp_path, script):
    """Every valid video ended in "deblur_array() got an unexpected keyword argument 'max_image_pixels'"."""
    weights = save_model(tiny_generator(), tmp_path / "g.keras")
    source = make_clip(tmp_path / "in.mp4", 44, 30, 3, 10)
    (tmp_path / "out.mp4").write_text("an earlier output")  # replaced in silence before --overwrite
    args = ["--weight_path", weights, "--input", source, "--output", tmp_path / "out.mp4", "--side_by_side"]
    args.append("--overwrite")
    result = CliRunner().invoke(script, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert f"deblurred 3 frames into {tmp_path / 'out.mp4'}" in result.output
    assert video_facts(tmp_path / "out.mp4")["size"] == (88, 30)
    assert "--max_image_pixels" not in CliRunner().invoke(script, ["--help"]).output
