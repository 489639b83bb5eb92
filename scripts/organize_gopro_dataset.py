"""Rearranges GOPRO_Large into the A (blurred) / B (sharp) layout the training script reads.

Example:
    python scripts/organize_gopro_dataset.py --dir_in GOPRO_Large --dir_out images/gopro
"""

import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import OneLineUsageErrors, main_guard
from deblurgan.gopro import organize_gopro


@click.command(cls=OneLineUsageErrors)
@click.option("--dir_in", required=True, type=click.Path(file_okay=False), help="GOPRO_Large folder.")
@click.option("--dir_out", required=True, type=click.Path(file_okay=False), help="Destination folder.")
@click.option(
    "--blur_key",
    default="blur",
    show_default=True,
    type=click.Choice(["blur", "blur_gamma"]),
    help="Blurred frames to use: linear (blur) or gamma-corrected (blur_gamma).",
)
@click.option("--link", is_flag=True, help="Hard-link instead of copying (same filesystem only).")
@main_guard
def main(dir_in, dir_out, blur_key, link):
    """GOPRO_Large/{train,test}/<scene>/{blur,sharp} -> DIR_OUT/{train,test}/{A,B}/<scene>_<frame>."""
    counts = organize_gopro(dir_in, dir_out, blur_key=blur_key, link=link)
    action = "linked" if link else "copied"
    for split, n_pairs in counts.items():
        print(f"{split}: {n_pairs} pairs {action} to {dir_out}/{split}/A (blurred: {blur_key}) and B (sharp)")


if __name__ == "__main__":
    main()
