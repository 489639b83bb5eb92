"""Deblur a video: ``python scripts/deblur_video.py --input clip.mp4 --output out.mp4``.

Streams the frames through the generator (memory does not grow with the clip's length) and keeps
the frame rate, frame size, frame count and audio track. Exit code 2 for bad input (not a video,
no frames, unwritable output, output equal to input).
"""

import functools
import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import (
    OneLineUsageErrors,
    engine_option,
    inference_options,
    main_guard,
    weight_path_option,
)
from deblurgan.engines import load_engine
from deblurgan.video import check_paths, deblur_video, probe_video


@click.command(cls=OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@weight_path_option
@engine_option
@click.option("--input", "input_path", required=True, help="Video to deblur (.mp4, .mov, .mkv, ...).")
@click.option("--output", "output_path", required=True, help="Video to write (must not be the input).")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
@click.option("--side_by_side", is_flag=True, help="Write blurred | restored side by side.")
@functools.partial(inference_options, photos=False)
@main_guard
def main(weight_path, engine, input_path, output_path, overwrite, side_by_side, **inference):
    """Deblur every frame of INPUT into OUTPUT with a trained DeblurGAN generator."""
    check_paths(input_path, output_path, overwrite)
    probe_video(input_path)  # a bad input fails before the model loads
    generator = load_engine(weight_path, engine, inference["precision"])
    frames = deblur_video(
        generator, input_path, output_path, side_by_side=side_by_side, overwrite=overwrite, **inference
    )
    print(f"deblurred {frames} frames into {output_path}")


if __name__ == "__main__":
    main()
