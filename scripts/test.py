"""Evaluate a generator on blurred/sharp pairs: ``python scripts/test.py --input_dir images/test``.

Writes ``per_image.csv`` and ``summary.json`` (PSNR, SSIM and sharpness of the blurred input and the
restored output) to --output_dir and prints the summary; --save_images adds sharp | blurred |
restored panels. Exit code 1 if some files were unmatched or unreadable, 2 for a usage error.
"""

import sys

import click

from deblurgan.cli import engine_option, inference_options, main_guard, weight_path_option
from deblurgan.engines import load_engine
from deblurgan.evaluate import evaluate_folder, format_summary_table


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
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
    default="results/test",
    show_default=True,
    help="Where per_image.csv, summary.json and the panels go.",
)
@click.option("--save_images", is_flag=True, help="Also write sharp | blurred | restored panels.")
@inference_options
@main_guard
def main(weight_path, engine, input_dir, output_dir, save_images, **inference):
    """Report PSNR, SSIM and sharpness of a generator's outputs on INPUT_DIR/A against INPUT_DIR/B."""
    generator = load_engine(weight_path, engine)
    report = evaluate_folder(
        generator,
        input_dir,
        output_dir,
        save_images=save_images,
        **inference,
    )
    print(format_summary_table(report.summary))
    print(f"reports written to {output_dir}/per_image.csv and {output_dir}/summary.json")
    for name in report.unmatched:
        print(f"unmatched: {name}")
    for name, reason in report.failed:
        print(f"skipped {name}: {reason}")
    if not report.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
