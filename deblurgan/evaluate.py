"""Evaluating a generator on a folder of blurred/sharp pairs (``A/`` blurred, ``B/`` sharp).

For every pair: PSNR and SSIM against the sharp image, and the Laplacian-variance sharpness, for the
blurred input and for the restored output (rounded to 8 bits, as it would be saved). The report is
a CSV with one row per image and a JSON summary (means, and the gain of the output over the input).
"""

import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deblurgan.errors import DeblurGANError
from deblurgan.fid import fid_from_features, image_features
from deblurgan.inference import deblur_array
from deblurgan.io import atomic_path, list_images, read_image, to_uint8, write_image
from deblurgan.metrics import laplacian_variance, psnr, ssim

log = logging.getLogger(__name__)

PSNR_CAP = 100.0  # identical images have infinite PSNR; JSON and means need a finite number
COLUMNS = (
    "name",
    "height",
    "width",
    "psnr_blurred",
    "psnr_restored",
    "ssim_blurred",
    "ssim_restored",
    "sharpness_blurred",
    "sharpness_restored",
    "sharpness_sharp",
)
METRICS = ("psnr", "ssim", "sharpness")


@dataclasses.dataclass
class EvaluationReport:
    """Per-image rows, the summary, and what was left out (unmatched names, unreadable pairs)."""

    rows: list
    summary: dict
    unmatched: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.unmatched and not self.failed


def _pair_folder(input_dir):
    """``(relative name, blurred path, sharp path)`` for files of ``A/`` and ``B/`` with the same
    relative path (extension ignored, so ``x.png`` pairs with ``x.jpg``), and the unmatched names.

    A private helper; ``deblurgan.data`` may offer the same pairing for training.
    """
    input_dir = Path(input_dir)
    folders = {side: input_dir / side for side in ("A", "B")}
    for side, folder in folders.items():
        if not folder.is_dir():
            raise DeblurGANError(
                f"--input_dir {input_dir}: no {side}/ folder; it must hold A/ (blurred) and B/ (sharp) "
                "with the same file names"
            )
    keyed = {}
    for side, folder in folders.items():
        keyed[side] = {p.relative_to(folder).with_suffix("").as_posix(): p for p in list_images(folder)}
    common = sorted(keyed["A"].keys() & keyed["B"].keys())
    unmatched = sorted(
        [
            f"A/{keyed['A'][k].relative_to(folders['A']).as_posix()} (no B/ partner)"
            for k in keyed["A"].keys() - keyed["B"].keys()
        ]
        + [
            f"B/{keyed['B'][k].relative_to(folders['B']).as_posix()} (no A/ partner)"
            for k in keyed["B"].keys() - keyed["A"].keys()
        ]
    )
    if not common:
        raise DeblurGANError(
            f"--input_dir {input_dir}: no A/ and B/ images share a file name; "
            "pair them as A/name.png (blurred) and B/name.png (sharp)"
        )
    pairs = [
        (keyed["A"][k].relative_to(folders["A"]).as_posix(), keyed["A"][k], keyed["B"][k]) for k in common
    ]
    return pairs, unmatched


def _score_pair(blurred8, restored8, sharp8):
    return {
        "psnr_blurred": min(psnr(sharp8, blurred8), PSNR_CAP),
        "psnr_restored": min(psnr(sharp8, restored8), PSNR_CAP),
        "ssim_blurred": ssim(sharp8, blurred8),
        "ssim_restored": ssim(sharp8, restored8),
        "sharpness_blurred": laplacian_variance(blurred8),
        "sharpness_restored": laplacian_variance(restored8),
        "sharpness_sharp": laplacian_variance(sharp8),
    }


def summarize(rows):
    """Means of every metric for the blurred input and the restored output, and the gains."""
    summary = {"images": len(rows)}
    for metric in METRICS:
        blurred = float(np.mean([row[f"{metric}_blurred"] for row in rows]))
        restored = float(np.mean([row[f"{metric}_restored"] for row in rows]))
        summary[metric] = {"blurred": blurred, "restored": restored, "gain": restored - blurred}
    summary["sharpness"]["sharp"] = float(np.mean([row["sharpness_sharp"] for row in rows]))
    return summary


def format_summary_table(summary):
    """The summary as an aligned text table."""
    lines = [
        f"{summary['images']} image pair(s)",
        f"{'metric':<12}{'blurred':>12}{'restored':>12}{'gain':>12}",
    ]
    rows = (("psnr", "PSNR (dB)", ".2f"), ("ssim", "SSIM", ".4f"), ("sharpness", "sharpness", ".1f"))
    if "fid" in summary:
        rows += (("fid", "FID", ".2f"),)
    for metric, label, fmt in rows:
        values = summary[metric]
        lines.append(
            f"{label:<12}{values['blurred']:>12{fmt}}{values['restored']:>12{fmt}}{values['gain']:>+12{fmt}}"
        )
    return "\n".join(lines)


def evaluate_folder(
    generator, input_dir, output_dir, save_images=False, progress=True, fid_extractor=None, **options
):
    """Evaluates ``generator`` on ``input_dir/A`` (blurred) against ``input_dir/B`` (sharp).

    Writes ``output_dir/per_image.csv`` and ``output_dir/summary.json``; with ``save_images``, a
    ``sharp | blurred | restored`` panel per pair under ``output_dir/images/`` (PNG).

    Args:
        fid_extractor: a feature extractor (``deblurgan.fid.inception_feature_extractor()``) to add
            ``summary["fid"]``: the FID of the blurred and of the restored set against the sharp
            set (needs at least 2 pairs); ``None`` skips it.
        **options: passed to :func:`deblurgan.inference.deblur_array` (tiling, precision, ...).

    Returns:
        :class:`EvaluationReport`.
    """
    pairs, unmatched = _pair_folder(input_dir)
    output_dir = Path(output_dir)
    for name in unmatched:
        log.warning("unmatched: %s", name)
    rows, failed = [], []
    features = {"blurred": [], "restored": [], "sharp": []}
    for name, blurred_path, sharp_path in tqdm(pairs, desc="evaluating", unit="pair", disable=not progress):
        try:
            blurred, sharp = read_image(blurred_path), read_image(sharp_path)
            if blurred.pixels.shape != sharp.pixels.shape:
                (bh, bw), (sh, sw) = blurred.pixels.shape[:2], sharp.pixels.shape[:2]
                raise DeblurGANError(
                    f"{blurred_path} is {bw}x{bh} but {sharp_path} is {sw}x{sh}; "
                    "a pair must have the same size"
                )
        except DeblurGANError as error:
            failed.append((name, str(error)))
            continue
        restored = deblur_array(generator, blurred.pixels, **options)
        blurred8, restored8, sharp8 = (to_uint8(x) for x in (blurred.pixels, restored, sharp.pixels))
        height, width = sharp8.shape[:2]
        scores = _score_pair(blurred8, restored8, sharp8)
        rows.append({"name": name, "height": height, "width": width, **scores})
        if fid_extractor is not None:
            for side, image in zip(features, (blurred8, restored8, sharp8), strict=True):
                features[side].append(image_features([image], fid_extractor)[0])
        if save_images:
            panel = np.concatenate([sharp.pixels, blurred.pixels, restored], axis=1)
            write_image((output_dir / "images" / name).with_suffix(".png"), panel)
    if not rows:
        raise DeblurGANError(f"--input_dir {input_dir}: none of the {len(pairs)} pair(s) could be read")
    summary = summarize(rows)
    if fid_extractor is not None:
        summary["fid"] = _fid_summary(features, input_dir)
    summary["unmatched"] = unmatched
    summary["failed"] = [{"name": name, "reason": reason} for name, reason in failed]
    _write_reports(output_dir, rows, summary)
    return EvaluationReport(rows, summary, unmatched, failed)


def _fid_summary(features, input_dir):
    if len(features["sharp"]) < 2:
        raise DeblurGANError(
            f"--input_dir {input_dir}: FID needs at least 2 image pairs; add pairs or drop --fid"
        )
    sharp = np.stack(features["sharp"])
    blurred = fid_from_features(np.stack(features["blurred"]), sharp)
    restored = fid_from_features(np.stack(features["restored"]), sharp)
    return {"blurred": blurred, "restored": restored, "gain": restored - blurred}


def _write_reports(output_dir, rows, summary):
    with atomic_path(output_dir / "per_image.csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    with atomic_path(output_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
