"""Average the checkpoints of one run weight by weight (checkpoint averaging, as in SWA).

``python scripts/average_weights.py RUN/weights/generator_{5,6,7,8,9,10}_*.h5 --output averaged.h5``
writes a generator whose every weight is the mean of the inputs': the checkpoints of a run's last
epochs, whose validation PSNR wanders from epoch to epoch, average to one network that scores near
their best without more training.
"""

import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import OneLineUsageErrors, main_guard
from deblurgan.interpolation import average_weight_files


@click.command(cls=OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("weights", nargs=-1, required=True)
@click.option("--output", required=True, help="The new generator file (.h5 or .keras); never an input.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@main_guard
def main(weights, output, overwrite):
    """Write the mean of the generator files WEIGHTS (two or more, one architecture) to OUTPUT."""
    path = average_weight_files(weights, output, overwrite)
    print(f"wrote {path}: the mean of {len(weights)} generators ({', '.join(weights)})")


if __name__ == "__main__":
    main()
