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

from deblurgan.errors import DeblurGANError, first_of
from deblurgan.fid import fid_from_features, image_features
from deblurgan.inference import deblur_array
from deblurgan.io import (
    DEFAULT_MAX_IMAGE_PIXELS,
    atomic_path,
    read_image,
    to_uint8,
    writable_folder,
    write_image,
)
from deblurgan.metrics import check_scorable, laplacian_variance, score_8bit
from deblurgan.pairing import check_same_size, find_pairs

log = logging.getLogger(__name__)

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


def _score_pair(blurred, restored, sharp):
    scores = {}
    for kind, image in (("blurred", blurred), ("restored", restored)):
        for metric, value in score_8bit(sharp, image).items():
            scores[f"{metric}_{kind}"] = value
    for kind, image in (("blurred", blurred), ("restored", restored), ("sharp", sharp)):
        scores[f"sharpness_{kind}"] = laplacian_variance(to_uint8(image))
    return scores


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


def plan_evaluation(input_dir, output_dir, save_images=False, overwrite=False, fid=False):
    """``(pairs, unmatched)`` of ``input_dir`` (:func:`deblurgan.pairing.find_pairs`), once the
    folders are known to suit an evaluation (scripts/test.py asks before loading its generator).

    Raises:
        DeblurGANError: no pairs (fewer than 2 with ``fid``), an ``output_dir`` inside the
            evaluated A/ or B/, or, without ``overwrite``, one that holds files at the names the
            evaluation writes.
    """
    output_dir = Path(output_dir)
    for side in ("A", "B"):  # panels written there would become pairs of the next evaluation
        if output_dir.resolve().is_relative_to((Path(input_dir) / side).resolve()):
            raise DeblurGANError(
                f"output_dir={output_dir}: inside the evaluated {Path(input_dir) / side}; choose a folder "
                "outside input_dir's A/ and B/",
                "output_dir",
            )
    pairs, unmatched = find_pairs(input_dir)
    if not pairs:
        raise DeblurGANError(
            f"input_dir={input_dir}: no A/ and B/ images share a name; pair them as A/name.png "
            "(blurred) and B/name.png (sharp)",
            "input_dir",
        )
    if fid and len(pairs) < 2:
        _fid_needs_two(input_dir)
    panels = [_panel_path(output_dir, name) for name, _, _ in pairs] if save_images else []
    # a stopped evaluation's panels too (its list): an overwrite removes them all
    existing = [p for p in [*_report_paths(output_dir), _panel_list(output_dir), *panels] if p.exists()]
    if existing and not overwrite:  # an earlier evaluation's, or the user's own files
        if existing[0] == _panel_list(output_dir):
            existing = ["the panels of an evaluation that was stopped"]
        raise DeblurGANError(
            f"output_dir={output_dir}: already holds {first_of(existing)}; choose another folder, or "
            "pass overwrite=True to replace them",
            "output_dir",
            mentions=("overwrite",),
        )
    return pairs, unmatched


def _report_paths(output_dir):
    return output_dir / "per_image.csv", output_dir / "summary.json"


def _panel_path(output_dir, name):
    return (output_dir / "images" / name).with_suffix(".png")


def _panel_list(output_dir):
    """The panels written so far by an evaluation that has not finished (hidden: not a photo)."""
    return output_dir / "images" / ".panels-in-progress.txt"


def _earlier_outputs(output_dir):
    """The reports of an earlier evaluation in ``output_dir`` and the panels its per_image.csv
    lists, or that a stopped evaluation listed as it wrote them."""
    reports, names = _report_paths(output_dir), []
    try:
        with open(reports[0], newline="", encoding="utf-8") as f:
            names = [row["name"] for row in csv.DictReader(f)]
    except (OSError, KeyError, TypeError, csv.Error, UnicodeDecodeError):
        pass  # none, or not an evaluation's: only the files at the names this one writes are replaced
    if _panel_list(output_dir).is_file():
        names += _panel_list(output_dir).read_text(encoding="utf-8").splitlines()
    inside = (output_dir / "images").resolve()
    panels = [_panel_path(output_dir, name) for name in names if name]
    return [*(p for p in panels if p.resolve().is_relative_to(inside)), _panel_list(output_dir), *reports]


def evaluate_folder(
    generator,
    input_dir,
    output_dir,
    save_images=False,
    progress=True,
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    fid_extractor=None,
    overwrite=False,
    generator_info=None,
    **options,
):
    """Evaluates ``generator`` on ``input_dir/A`` (blurred) against ``input_dir/B`` (sharp).

    Writes ``output_dir/per_image.csv`` and ``output_dir/summary.json``; with ``save_images``, a
    ``sharp | blurred | restored`` panel per pair under ``output_dir/images/`` (PNG).

    Args:
        overwrite: replace files already at those names (:func:`plan_evaluation`); the earlier
            reports, and the panels they list, are removed first, so an interrupted evaluation (or
            one without ``save_images``) leaves none that would pass for its own.
        max_image_pixels: larger images (or decompression bombs) are reported as failed pairs.
        fid_extractor: a feature extractor (``deblurgan.fid.inception_feature_extractor()``) to add
            ``summary["fid"]``: the FID of the blurred and of the restored set against the sharp
            set (needs at least 2 pairs); ``None`` skips it.
        generator_info: what to record as ``summary["generator"]`` (scripts/test.py: the weight
            file, the engine and the precision), so that a summary says what produced it.
        **options: passed to :func:`deblurgan.inference.deblur_array` (tiling, precision, ...);
            ``precision`` defaults to fp32 here, so that scores do not depend on the machine
            (training's validation scores so too).

    Returns:
        :class:`EvaluationReport`.
    """
    output_dir = Path(output_dir)
    pairs, unmatched = plan_evaluation(
        input_dir, output_dir, save_images, overwrite, fid_extractor is not None
    )
    writable_folder(output_dir, "output_dir")  # before the evaluation, not after it
    for earlier in _earlier_outputs(output_dir):  # reached with overwrite=True only
        if earlier.is_file():
            earlier.unlink()
    for name in unmatched:  # EvaluationReport.unmatched has them; scripts/test.py prints them once
        log.info("unmatched: %s", name)
    rows, failed = [], []
    features = {"blurred": [], "restored": [], "sharp": []}
    try:
        _evaluate_pairs(generator, pairs, output_dir, rows, failed, features, save_images, progress,
                        max_image_pixels, fid_extractor, options)  # fmt: skip
    except KeyboardInterrupt:
        log.warning(
            "evaluation stopped after %d of %d pairs; no reports written: the same command with "
            "overwrite=True starts it again", len(rows) + len(failed), len(pairs),
            extra={"parameters": ["overwrite"]},
        )  # fmt: skip
        raise
    if not rows:  # the first pair's reason names its file, and the option when one is at fault
        first = failed[0][1]
        raise DeblurGANError(
            f"input_dir={input_dir}: none of the {len(pairs)} pair(s) could be read; the first: {first}",
            "input_dir",
            mentions=(first.parameter,) if first.parameter else (),
        )
    summary = summarize(rows)
    if fid_extractor is not None:
        summary["fid"] = _fid_summary(features, input_dir)
    if generator_info is not None:
        summary["generator"] = generator_info
    summary["unmatched"] = unmatched
    summary["failed"] = [{"name": name, "reason": str(error)} for name, error in failed]
    _write_reports(output_dir, rows, summary)
    _panel_list(output_dir).unlink(missing_ok=True)  # per_image.csv lists the panels now
    return EvaluationReport(rows, summary, unmatched, failed)


def _evaluate_pairs(generator, pairs, output_dir, rows, failed, features, save_images, progress,
                    max_image_pixels, fid_extractor, options):  # fmt: skip
    """Scores each pair into ``rows`` (or ``failed``), its features into ``features``; writes panels."""
    for name, blurred_path, sharp_path in tqdm(pairs, desc="evaluating", unit="pair", disable=not progress):
        try:
            blurred, sharp = (read_image(p, max_pixels=max_image_pixels) for p in (blurred_path, sharp_path))
            check_same_size(blurred_path, sharp_path, blurred.pixels.shape[:2], sharp.pixels.shape[:2])
            check_scorable(blurred_path, blurred.pixels)
        except DeblurGANError as error:
            failed.append((name, error))
            continue
        restored = deblur_array(generator, blurred.pixels, **{"precision": "fp32", **options})
        height, width = sharp.pixels.shape[:2]
        scores = _score_pair(blurred.pixels, restored, sharp.pixels)
        rows.append({"name": name, "height": height, "width": width, **scores})
        if fid_extractor is not None:
            for side, image in zip(features, (blurred.pixels, restored, sharp.pixels), strict=True):
                features[side].append(image_features([to_uint8(image)], fid_extractor)[0])
        if save_images:
            panel = np.concatenate([sharp.pixels, blurred.pixels, restored], axis=1)
            _panel_path(output_dir, name).parent.mkdir(parents=True, exist_ok=True)
            with open(_panel_list(output_dir), "a", encoding="utf-8") as f:  # listed first: a stopped
                f.write(f"{name}\n")  # evaluation's panels are removed by the next one's overwrite
            write_image(_panel_path(output_dir, name), panel)


def _fid_summary(features, input_dir):
    if len(features["sharp"]) < 2:  # after unreadable pairs were left out
        _fid_needs_two(input_dir)
    sharp = np.stack(features["sharp"])
    blurred = fid_from_features(np.stack(features["blurred"]), sharp)
    restored = fid_from_features(np.stack(features["restored"]), sharp)
    return {"blurred": blurred, "restored": restored, "gain": restored - blurred}


def _fid_needs_two(input_dir):
    raise DeblurGANError(
        f"input_dir={input_dir}: FID needs at least 2 image pairs; add pairs or leave FID out",
        parameter="input_dir",
    )


def _write_reports(output_dir, rows, summary):
    with atomic_path(output_dir / "per_image.csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    with atomic_path(output_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
