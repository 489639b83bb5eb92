"""Blend two generators weight by weight (ESRGAN's network interpolation).

``python scripts/interpolate_weights.py --from_weights A.h5 --to_weights B.h5 --alpha 0.8 --output C.h5``
writes a generator whose every weight is ``(1 - alpha) * A + alpha * B``: typically A is trained on
the content loss only and B is A fine-tuned adversarially, and alpha trades PSNR for sharpness.
"""

import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import OneLineUsageErrors, main_guard
from deblurgan.interpolation import interpolate_weight_files


@click.command(cls=OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--from_weights", required=True, help="Generator file A (.h5 or .keras), weight at alpha=0.")
@click.option("--to_weights", required=True, help="Generator file B, same architecture, weight at alpha=1.")
@click.option("--alpha", type=float, required=True, help="In [0, 1]: 0 gives A, 1 gives B (ESRGAN: 0.8).")
@click.option("--output", required=True, help="The new generator file (.h5 or .keras); never an input.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@main_guard
def main(from_weights, to_weights, alpha, output, overwrite):
    """Write (1 - ALPHA) * FROM_WEIGHTS + ALPHA * TO_WEIGHTS to OUTPUT."""
    path = interpolate_weight_files(from_weights, to_weights, alpha, output, overwrite)
    print(f"wrote {path}: (1 - {alpha}) * {from_weights} + {alpha} * {to_weights}")


if __name__ == "__main__":
    main()
