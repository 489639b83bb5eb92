"""Rebuilds the embedded sample dataset (images/) from photos shipped by scikit-image and scikit-learn.

Example (the command images/README.md records):
    python scripts/make_sample_dataset.py --output_dir images --seed 0 --overwrite
"""

import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import OneLineUsageErrors, main_guard
from deblurgan.sample_data import gather_sample_photos, make_sample_dataset


@click.command(cls=OneLineUsageErrors)
@click.option(
    "--output_dir",
    default="images",
    show_default=True,
    type=click.Path(),
    help="Dataset root: train/, test/, holdout/ ({A,B} each), demo/, demo_sharp/.",
)
@click.option("--seed", default=0, show_default=True, help="Seed; the same seed gives identical files.")
@click.option(
    "--crop_size",
    default=256,
    show_default=True,
    type=click.IntRange(min=8),
    help="Side of the square crops in px.",
)
@click.option("--train_blurs", default=8, show_default=True, help="Pairs per training photo.")
@click.option("--eval_blurs", default=3, show_default=True, help="Pairs per test and holdout photo.")
@click.option("--overwrite", is_flag=True, help="Replace existing split folders under --output_dir.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option(
    "--sources_only",
    default=None,
    type=click.Path(),
    help="Only copy the sharp source photos into this folder's train/, test/, holdout/ and stop "
    "(e.g. to build a larger training set with make_blur_dataset.py).",
)
@main_guard
def main(output_dir, seed, crop_size, train_blurs, eval_blurs, overwrite, quiet, sources_only):
    """Gathers the source photos into per-split folders and blurs them into OUTPUT_DIR."""
    if sources_only:
        gather_sample_photos(sources_only, parameter="sources_only")
        print(f"copied the source photos into {sources_only}/{{train,test,holdout}}")
        return
    rows = make_sample_dataset(
        output_dir,
        seed=seed,
        crop_size=crop_size,
        train_blurs=train_blurs,
        eval_blurs=eval_blurs,
        overwrite=overwrite,
        progress=not quiet,
    )
    for split, split_rows in rows.items():
        print(f"{split}: {len(split_rows)} pairs")


if __name__ == "__main__":
    main()
