"""Draws a training run's validation PSNR against steps and CPU-hours, across restarted segments.

Each ``--run LABEL=LOSSES_CSV`` is the ``losses.csv`` of one run directory, in order. A run that
started from an earlier one's generator says which epoch with ``@EPOCH``
(``--run sample=RUN/logs/losses.csv@11``): its steps and CPU time then continue from that epoch's
totals, so the curve shows everything the generator went through. ``cpu_seconds`` is per epoch,
``steps`` cumulative within a run. An epoch without a validation PSNR (a run resumed with
``--val_images 0``) counts in the steps and CPU time but has no point. Prints the rows as a
markdown table as well. An existing ``--output`` is replaced only with ``--overwrite``.

    python benchmarks/plot_training_curve.py \\
        --run noisy=~/deblurgan-runs/default-noisy/logs/losses.csv \\
        --run sample=~/deblurgan-runs/default/logs/losses.csv@11 \\
        --blurred 24.46 --shipped 24.66 --output images/readme/training_curve.png --overwrite
"""

import csv
import os
from pathlib import Path

import click
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deblurgan.cli import main_guard  # noqa: E402
from deblurgan.errors import DeblurGANError  # noqa: E402
from deblurgan.io import check_new_file, writable_folder  # noqa: E402


def read_segments(runs):
    """``[(label, rows)]`` with each row's ``total_steps`` and ``cpu_hours`` counted from the first run."""
    segments, totals = [], {}
    for spec in runs:
        label, _, path = spec.partition("=")
        head, at, branch = path.rpartition("@")  # an @ inside a folder name is part of the path
        path, branch = (head, branch) if at and "/" not in branch else (path, "")
        rows = _read_rows(spec, label, os.path.expanduser(path))
        steps, hours = (0, 0.0) if not branch else _branch_totals(spec, segments, totals, branch)
        totals[label] = {}
        for row in rows:
            hours += float(row["cpu_seconds"]) / 3600
            row["total_steps"], row["cpu_hours"] = steps + int(row["steps"]), hours
            totals[label][int(row["epoch"])] = (row["total_steps"], hours)
        segments.append((label, rows))
    return segments


def _read_rows(spec, label, path):
    if not (label and path):
        raise DeblurGANError(f"run={spec}: give LABEL=LOSSES_CSV[@EPOCH]", "run")
    if not os.path.isfile(path):
        raise DeblurGANError(f"run={spec}: {path} is not a file (a run's logs/losses.csv)", "run")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows, columns = list(reader), reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as error:
        why = f"is not a CSV file ({error}); give a run's logs/losses.csv"
        raise DeblurGANError(f"run={spec}: {path} {why}", "run") from None
    missing = [c for c in ("epoch", "steps", "cpu_seconds", "val/psnr") if c not in columns]
    if missing or not rows:
        why = f"no {', '.join(missing)} column" if missing else "no epochs"
        raise DeblurGANError(f"run={spec}: {path} has {why} (a run validated with --val_images > 0?)", "run")
    return rows


def _branch_totals(spec, segments, totals, branch):
    """The steps and CPU-hours of the previous run at the epoch ``branch`` it was branched from."""
    if not segments:
        raise DeblurGANError(f"run={spec}: @EPOCH continues an earlier --run; give that run first", "run")
    previous = segments[-1][0]
    if not branch.isdigit() or int(branch) not in totals[previous]:
        epochs = f"{min(totals[previous])} to {max(totals[previous])}"
        raise DeblurGANError(f"run={spec}: {previous} has no epoch {branch!r} (it has {epochs})", "run")
    return totals[previous][int(branch)]


@click.command()
@click.option("--run", "runs", multiple=True, required=True, help="LABEL=LOSSES_CSV[@EPOCH], in order.")
@click.option("--blurred", type=float, default=None, help="PSNR of the blurred validation inputs (dB).")
@click.option("--shipped", type=float, default=None, help="PSNR of the shipped generator (dB).")
@click.option("--target_gain", type=float, default=2.0, show_default=True, help="Gain to mark.")
@click.option("--output", default="training_curve.png", show_default=True, help="PNG to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@main_guard
def main(runs, blurred, shipped, target_gain, output, overwrite):
    if Path(output).suffix.lower() != ".png":
        raise DeblurGANError(f"output={output}: give a .png file", "output")
    check_new_file(output, overwrite)
    writable_folder(Path(output).parent, "output", create=False)
    segments = read_segments(runs)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    print("| run | epoch | steps | CPU-hours | validation PSNR (dB) |\n|---|---|---|---|---|")
    for label, rows in segments:
        validated = [row for row in rows if row["val/psnr"]]  # "": an epoch without validation
        psnr = [float(row["val/psnr"]) for row in validated]
        axes[0].plot([row["total_steps"] for row in validated], psnr, marker=".", label=label)
        axes[1].plot([row["cpu_hours"] for row in validated], psnr, marker=".", label=label)
        for row in rows:
            steps, hours, value = row["total_steps"], row["cpu_hours"], row["val/psnr"]
            shown = f"{float(value):.2f}" if value else "-"
            print(f"| {label} | {row['epoch']} | {steps:,} | {hours:.2f} | {shown} |")
    target = None if blurred is None else blurred + target_gain
    references = (
        ("blurred input", blurred, ":"),
        ("shipped generator", shipped, "--"),
        (f"target (+{target_gain:g} dB)", target, "-."),
    )
    for axis, xlabel in zip(axes, ("optimiser steps", "CPU-hours"), strict=True):
        for name, value, style in references:
            if value is not None:
                axis.axhline(value, linestyle=style, color="grey", linewidth=1, label=name)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("validation PSNR (dB)")
    axes[1].legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
