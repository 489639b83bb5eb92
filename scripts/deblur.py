"""Deblur photos of any size: ``python scripts/deblur.py --input_dir blurred/ --output_dir out/``.

Each output keeps the input's file name, format, size, alpha and grayscale. Unreadable files are
reported and skipped; the exit code is then 1 (2 for a usage error).
"""

import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import (
    OneLineUsageErrors,
    engine_option,
    flag_message,
    inference_options,
    main_guard,
    weight_path_option,
)
from deblurgan.engines import load_engine
from deblurgan.inference import deblur_folder, format_summary, plan_outputs


@click.command(cls=OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@weight_path_option
@engine_option
@click.option(
    "--input_dir",
    "--image_path",  # the Sicara README's name for it
    default="images/demo",
    show_default=True,
    help="Folder of blurred photos (searched recursively) or a single photo.",
)
@click.option(
    "--output_dir",
    default="deblurred",
    show_default=True,
    help="Where to write the results (created; must not be the input folder).",
)
@click.option("--overwrite", is_flag=True, help="Replace files already at the output names.")
@click.option(
    "--skip_existing", is_flag=True, help="Keep files already at the output names (go on after Ctrl-C)."
)
@click.option("--side_by_side", is_flag=True, help="Write blurred | restored side by side (Sicara demo).")
@inference_options
@main_guard
def main(weight_path, engine, input_dir, output_dir, overwrite, skip_existing, side_by_side, **inference):
    """Deblur every photo of INPUT_DIR into OUTPUT_DIR with a trained DeblurGAN generator."""
    # the folders' mistakes before loading the generator, which can take minutes (an export)
    plan_outputs(input_dir, output_dir, overwrite, skip_existing)
    generator = load_engine(weight_path, engine, inference["precision"])
    print(f"generator: {weight_path}")  # the Sicara scripts read ./generator.h5; this one may not be it
    summary = deblur_folder(
        generator,
        input_dir,
        output_dir,
        side_by_side=side_by_side,
        overwrite=overwrite,
        skip_existing=skip_existing,
        **inference,
    )
    print(format_summary(summary, output_dir, describe=flag_message))
    if not summary.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
