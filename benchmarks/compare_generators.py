"""Side-by-side quality of several generators on the same pairs: PSNR, SSIM and sharpness ratio.

    python benchmarks/compare_generators.py --input_dir PHOTOS/val \\
        --generator content=weights/generator.h5 --generator wgan-gp=RUN/generator_1_interrupted.h5

Each generator is scored with ``deblurgan.evaluate.evaluate_folder`` (8-bit PSNR and SSIM of whole
images, as ``scripts/test.py``; fp32 unless ``--precision`` says otherwise, so that figures from CPUs
with and without AMX compare), one markdown row per generator plus one for the blurred input. The
sharpness ratio is the mean over pairs of the Laplacian variance of the image divided by that of
the sharp image: 1 is as sharp as the ground truth, below 1 blurrier, above 1 sharper (often ringing
or noise). It is what PSNR misses when an adversarial loss trades a little PSNR for detail.
Unmatched names and unreadable pairs are listed after the table, with exit code 1, as
``scripts/test.py`` does; the table covers the pairs that were scored.
"""

import tempfile
from pathlib import Path

import click
import numpy as np

from deblurgan.cli import exit_if_left_out, main_guard
from deblurgan.errors import DeblurGANError
from deblurgan.evaluate import evaluate_folder, plan_evaluation
from deblurgan.inference import load_inference_generator
from deblurgan.precision import PRECISION_CHOICES


def sharpness_ratio(rows, kind):
    """Mean over pairs of ``sharpness_{kind} / sharpness_sharp`` (a flat sharp image is skipped)."""
    ratios = [row[f"sharpness_{kind}"] / row["sharpness_sharp"] for row in rows if row["sharpness_sharp"] > 0]
    return float(np.mean(ratios)) if ratios else float("nan")


def evaluate_generator(weight_path, input_dir, output_dir, precision="fp32", overwrite=False):
    """The :class:`~deblurgan.evaluate.EvaluationReport` of the generator file ``weight_path``."""
    generator = load_inference_generator(weight_path)
    info = {"weight_path": str(weight_path), "engine": "keras", "precision": precision}
    return evaluate_folder(
        generator, input_dir, output_dir, precision=precision, overwrite=overwrite, generator_info=info
    )


def scores_of(report):
    """``{"psnr", "ssim", "sharpness_ratio"}`` of the restored images, and the same of the blurred."""
    return {
        kind: {
            "psnr": report.summary["psnr"][kind],
            "ssim": report.summary["ssim"][kind],
            "sharpness_ratio": sharpness_ratio(report.rows, kind),
        }
        for kind in ("blurred", "restored")
    }


def table(scores):
    """Markdown rows: the blurred input (from the first generator's run), then each generator."""
    lines = ["| | PSNR (dB) | SSIM | sharpness / sharp |", "|---|---|---|---|"]
    first = next(iter(scores.values()))["blurred"]
    entries = [("blurred input", first)] + [(label, s["restored"]) for label, s in scores.items()]
    for label, s in entries:
        lines.append(f"| {label} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['sharpness_ratio']:.3f} |")
    return "\n".join(lines)


def _parse(specs):
    generators = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise DeblurGANError(f"--generator {spec}: write LABEL=PATH, e.g. content=weights/generator.h5")
        if label in generators:
            raise DeblurGANError(f"--generator {spec}: the label {label!r} is used twice")
        if label in (".", "..") or Path(label).name != label:  # it names the label's report folder
            raise DeblurGANError(f"--generator {spec}: the label must be a name, without / or ..")
        if not Path(path).is_file():  # before any generator is scored (it was named as --weight_path)
            raise DeblurGANError(f"--generator {spec}: no such generator file {path}")
        generators[label] = path
    return generators


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--input_dir", required=True, help="Folder holding A/ (blurred) and B/ (sharp) pairs.")
@click.option("--generator", "specs", multiple=True, required=True, help="LABEL=PATH, repeated.")
@click.option("--output_dir", default=None, help="Where each generator's reports go (default: temporary).")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="fp32", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the reports of an earlier comparison.")
@main_guard
def main(input_dir, specs, output_dir, precision, overwrite):
    """Print the comparison table of the generators on INPUT_DIR."""
    generators = _parse(specs)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(output_dir or scratch)
        for label in generators:  # every folder before the first generator is scored
            plan_evaluation(input_dir, root / label, overwrite=overwrite)
        reports = {
            label: evaluate_generator(path, input_dir, root / label, precision, overwrite)
            for label, path in generators.items()
        }
    scores = {label: scores_of(report) for label, report in reports.items()}
    # every generator saw the same pairs: the files are read the same way for each
    first = next(iter(reports.values()))
    print(f"{input_dir}: {len(first.rows)} pair(s), {len(generators)} generator(s), {precision}\n")
    print(table(scores))
    exit_if_left_out(first)
    return scores


if __name__ == "__main__":
    main()
