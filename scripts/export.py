"""Export a generator: ``python scripts/export.py --weight_path G.h5 --format onnx --output g.onnx``.

The export takes and returns float32 NHWC tensors in [-1, 1] with dynamic height and width (any
multiple of 4). Formats: keras (.keras file), saved_model (a folder), onnx (.onnx file, checked with
onnxruntime), openvino (.xml with its .bin beside it). Exit code 2 for a usage error.
"""

import sys

import click

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import OneLineUsageErrors, main_guard, weight_path_option
from deblurgan.export import FORMATS, export_file


@click.command(cls=OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@weight_path_option
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="saved_model",
    show_default=True,
    help="What to write.",
)
@click.option(
    "--output",
    required=True,
    help="File written (g.keras, g.onnx, g.xml + g.bin) or, for saved_model, the folder.",
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier export at OUTPUT.")
@main_guard
def main(weight_path, format_, output, overwrite):
    """Export the generator at WEIGHT_PATH to OUTPUT in FORMAT."""
    path = export_file(weight_path, output, format=format_, overwrite=overwrite)
    print(f"exported {weight_path} as {format_} to {path}")


if __name__ == "__main__":
    main()
