"""Makes a paired deblurring dataset from a folder of sharp photos: OUT/A (blurred), OUT/B (sharp).

Example:
    python scripts/make_blur_dataset.py --input_dir photos --output_dir data/blurred \\
        --crop_size 256 --blurs_per_image 8 --seed 1
"""

import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.blur import DEFAULT_EXPOSURES
from deblurgan.blur_dataset import make_blur_dataset
from deblurgan.cli import OneLineUsageErrors, main_guard


def _floats(context, parameter, text):
    """A click callback: "3,25" -> (3.0, 25.0); a one-line usage error for what is not numbers."""
    try:
        return tuple(float(value) for value in text.split(",")) if text else None
    except ValueError:
        raise click.BadParameter(f"{text!r}: give numbers separated by commas, as 3,25") from None


@click.command(cls=OneLineUsageErrors)
@click.option("--input_dir", required=True, type=click.Path(), help="Folder of sharp photos (recursive).")
@click.option("--output_dir", required=True, type=click.Path(), help="Where A/, B/ and pairs.csv go.")
@click.option("--seed", default=0, show_default=True, help="Seed; the same seed gives identical files.")
@click.option("--blurs_per_image", default=1, show_default=True, help="Pairs made from each photo.")
@click.option(
    "--crop_size",
    default=None,
    type=int,
    help="Square crop side in px (of a smaller photo: as much as fits) [default: whole photo].",
)
@click.option("--max_side", default=None, type=int, help="Downscale photos to this longer side first.")
@click.option(
    "--test_fraction",
    default=0.0,
    show_default=True,
    help="Fraction of photos for OUT/test (then OUT/train gets the rest), split by photo.",
)
@click.option(
    "--exposures",
    default=",".join(f"{e:g}" for e in DEFAULT_EXPOSURES),
    show_default=True,
    callback=_floats,
    help="Comma-separated exposure fractions of the camera-shake trajectories.",
)
@click.option(
    "--linear_probability",
    default=0.25,
    show_default=True,
    help="Chance of a straight motion kernel instead of a camera shake.",
)
@click.option(
    "--linear_length",
    default="3,25",
    show_default=True,
    callback=_floats,
    help="min,max straight motion in px.",
)
@click.option(
    "--noise_sigma",
    default="0,0",
    show_default=True,
    callback=_floats,
    help="min,max gaussian noise std in [0, 1] units added after blurring.",
)
@click.option(
    "--jpeg_quality",
    default=None,
    callback=_floats,
    help="min,max JPEG re-compression quality [default: none].",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Delete the images already in the output's A/ and B/ (and train/, test/ {A,B}) first.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@main_guard
def main(
    input_dir,
    output_dir,
    seed,
    blurs_per_image,
    crop_size,
    max_side,
    test_fraction,
    exposures,
    linear_probability,
    linear_length,
    noise_sigma,
    jpeg_quality,
    overwrite,
    quiet,
):
    """Blurs every photo in INPUT_DIR into OUTPUT_DIR/A with its sharp crop in OUTPUT_DIR/B."""
    rows = make_blur_dataset(
        input_dir,
        output_dir,
        seed=seed,
        test_fraction=test_fraction,
        overwrite=overwrite,
        progress=not quiet,
        blurs_per_image=blurs_per_image,
        crop_size=crop_size,
        max_side=max_side,
        exposures=exposures,
        linear_probability=linear_probability,
        linear_length=linear_length,
        noise_sigma=noise_sigma,
        jpeg_quality=jpeg_quality,
    )
    print(f"wrote {len(rows)} blurred/sharp pairs to {output_dir} (list in {output_dir}/pairs.csv)")


if __name__ == "__main__":
    main()
