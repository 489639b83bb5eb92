"""Deblurring video files frame by frame through imageio-ffmpeg (whose wheel ships ffmpeg).

Frames are streamed: one is decoded, deblurred and encoded before the next is read, so memory
does not grow with the clip. The output keeps the input's frame size, frame rate and frame count
(H.264, yuv420p, or yuv444p for odd sizes, which 4:2:0 cannot hold) and gets the input's audio
track, copied unchanged when the container is the same. The file is written under a temporary
name and renamed when complete.
"""

import itertools
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deblurgan.errors import DeblurGANError
from deblurgan.inference import deblur_array
from deblurgan.io import IMAGE_EXTENSIONS, atomic_path, check_new_file, to_uint8

log = logging.getLogger(__name__)


def probe_video(path):
    """The stream's metadata (``size`` as (width, height), ``fps``, ``duration``, ``audio_codec``)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(reader)
    except (OSError, RuntimeError, StopIteration):
        raise DeblurGANError(
            f"input={path}: not a video ffmpeg can read (no video stream); pass a video file such as .mp4",
            parameter="input",
        ) from None
    finally:
        reader.close()


# Containers that hold the H.264 stream written here (WebM, for one, takes only VP8/VP9/AV1).
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi")


def check_paths(input_path, output_path, overwrite=False):
    """Raises DeblurGANError for a missing input, an output that would overwrite it, an output
    container that cannot hold H.264 and, without ``overwrite``, an existing output file."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        what = "a folder; pass a video file" if input_path.is_dir() else "no such file"
        raise DeblurGANError(f"input={input_path}: {what}", parameter="input")
    if input_path.suffix.lower() in IMAGE_EXTENSIONS:  # ffmpeg reads it as a one-frame video
        raise DeblurGANError(
            f"input={input_path}: a photo, not a video; deblur photos with scripts/deblur.py "
            "(deblurgan.deblur_file)",
            parameter="input",
        )
    if output_path.resolve() == input_path.resolve():
        raise DeblurGANError(
            f"output={output_path} is the input; choose another file name", parameter="output"
        )
    if output_path.is_dir():
        raise DeblurGANError(
            f"output={output_path} is a folder; pass a file name such as out.mp4", parameter="output"
        )
    if output_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DeblurGANError(
            f"output={output_path}: not a video file name; end it with one of {', '.join(OUTPUT_SUFFIXES)}",
            parameter="output",
        )
    check_new_file(output_path, overwrite)


def deblur_video(
    generator, input_path, output_path, side_by_side=False, progress=True, overwrite=False, **options
):
    """Deblurs every frame of ``input_path`` into ``output_path``; returns the number of frames.

    Args:
        generator: a generator or engine (see :func:`deblurgan.engines.load_engine`).
        side_by_side: write ``blurred | restored`` frames (twice as wide).
        progress: show a tqdm bar (frames/s).
        overwrite: replace an existing ``output_path``.
        **options: passed to :func:`deblurgan.inference.deblur_array` (precision, tile_size, ...).
    """
    import imageio_ffmpeg

    check_paths(input_path, output_path, overwrite)
    meta = probe_video(input_path)
    width, height = meta["size"]
    out_size = (2 * width if side_by_side else width, height)
    expected = _count_frames(input_path)
    audio = {}
    if meta.get("audio_codec"):
        same_container = Path(input_path).suffix.lower() == Path(output_path).suffix.lower()
        audio = {"audio_path": str(input_path), "audio_codec": "copy" if same_container else None}
    reader = imageio_ffmpeg.read_frames(str(input_path))
    next(reader)  # the metadata again
    first = next(reader, None)
    if first is None:
        reader.close()
        raise DeblurGANError(f"input={input_path}: the video has no frames", parameter="input")
    frames = 0
    try:
        with atomic_path(output_path, parameter="output") as tmp:
            writer = imageio_ffmpeg.write_frames(
                str(tmp),
                out_size,
                fps=meta["fps"],
                quality=8,
                macro_block_size=1,
                ffmpeg_log_level="error",
                pix_fmt_out="yuv420p" if out_size[0] % 2 == 0 and height % 2 == 0 else "yuv444p",
                **audio,
            )
            writer.send(None)
            try:
                stream = itertools.chain([first], reader)
                for raw in tqdm(
                    stream, total=expected, unit="frame", desc="deblurring", disable=not progress
                ):
                    writer.send(_deblur_frame(generator, raw, height, width, side_by_side, options))
                    frames += 1
            finally:
                writer.close()
    except OSError as error:
        raise DeblurGANError(
            f"output={output_path}: cannot write ({error}); choose a writable folder", parameter="output"
        ) from None
    finally:
        reader.close()
    log.info("deblurred %d frames into %s", frames, output_path)
    return frames


def _deblur_frame(generator, raw, height, width, side_by_side, options):
    """One rgb24 frame (bytes) in, the restored rgb24 frame (bytes) out."""
    frame = np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(np.float32) / 255.0
    restored = deblur_array(generator, frame, **options)
    if side_by_side:
        restored = np.concatenate([frame, restored], axis=1)
    return np.ascontiguousarray(to_uint8(restored)).tobytes()


def _count_frames(path):
    """The number of video frames (ffmpeg decodes the stream once, far faster than deblurring it);
    None where ffmpeg cannot tell. The container's duration would count audio past the last frame."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.count_frames_and_secs(str(path))[0] or None
    except (OSError, RuntimeError, ValueError):
        return None
