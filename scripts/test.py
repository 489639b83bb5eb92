"""Evaluate a generator on blurred/sharp pairs: ``python scripts/test.py --input_dir images/test``.

Writes ``per_image.csv`` and ``summary.json`` (PSNR, SSIM and sharpness of the blurred input and the
restored output) to --output_dir and prints the summary; --save_images adds sharp | blurred |
restored panels. Exit code 1 if some files were unmatched or unreadable, 2 for a usage error.
"""

import functools
import sys
from pathlib import Path

import click
from click.core import ParameterSource

try:  # Ctrl-C while the package loads (seconds of TensorFlow): a quiet exit, not a traceback
    import deblurgan  # noqa: F401
except KeyboardInterrupt:
    sys.exit(130)

from deblurgan.cli import (
    OneLineUsageErrors,
    engine_option,
    exit_if_left_out,
    inference_options,
    main_guard,
    weight_path_option,
)
from deblurgan.engines import load_engine
from deblurgan.errors import DeblurGANError
from deblurgan.evaluate import evaluate_folder, format_summary_table, plan_evaluation
from deblurgan.fid import inception_feature_extractor


@click.command(cls=OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@weight_path_option
@engine_option
@click.option(
    "--input_dir",
    default="images/test",
    show_default=True,
    help="Folder holding A/ (blurred) and B/ (sharp) with the same file names.",
)
@click.option(
    "--output_dir",
    default=None,
    help="Where per_image.csv, summary.json and the panels go.  [default: results/<input_dir's name>]",
)
@click.option("--save_images", is_flag=True, help="Also write sharp | blurred | restored panels.")
@click.option("--overwrite", is_flag=True, help="Replace the reports and panels of an earlier evaluation.")
@click.option("--fid", is_flag=True, help="Also report FID (InceptionV3) of blurred and restored vs sharp.")
@click.option(
    "--inception_weights",
    default="imagenet",
    show_default=True,
    help="For --fid: 'imagenet' (downloaded once) or a local InceptionV3 notop .h5 file.",
)
@functools.partial(inference_options, precision="fp32")  # scores as training's validation
@main_guard
def main(
    weight_path, engine, input_dir, output_dir, save_images, overwrite, fid, inception_weights, **inference
):
    """Report PSNR, SSIM and sharpness of a generator's outputs on INPUT_DIR/A against INPUT_DIR/B."""
    # one folder per evaluated set by default, so evaluating another set keeps this one's reports
    output_dir = output_dir or str(Path("results") / Path(input_dir).resolve().name)
    given = (
        click.get_current_context().get_parameter_source("inception_weights") == ParameterSource.COMMANDLINE
    )
    if given and not fid:
        raise DeblurGANError(
            f"inception_weights={inception_weights}: unused without fid=True; add it or leave this out",
            parameter="inception_weights",
            mentions=("fid",),
        )
    # the folders' mistakes before loading the generator, which can take minutes (an export)
    plan_evaluation(input_dir, output_dir, save_images, overwrite, fid)
    generator = load_engine(weight_path, engine, inference["precision"])
    fid_extractor = inception_feature_extractor(inception_weights) if fid else None
    print(f"generator: {weight_path}")  # the Sicara scripts read ./generator.h5; this one may not be it
    report = evaluate_folder(
        generator,
        input_dir,
        output_dir,
        save_images=save_images,
        overwrite=overwrite,
        fid_extractor=fid_extractor,
        generator_info=dict(weight_path=str(weight_path), engine=engine, precision=inference["precision"]),
        **inference,
    )
    print(format_summary_table(report.summary))
    print(f"reports written to {output_dir}/per_image.csv and {output_dir}/summary.json")
    exit_if_left_out(report)


if __name__ == "__main__":
    main()
