"""int8 post-training quantisation of the ONNX export, for ``--engine onnxruntime --precision int8``.

ONNX Runtime's static quantiser: QDQ format, int8 weights per output channel, uint8 activations
whose ranges are calibrated (min/max) on crops of blurred photos. The calibration photos are
``images/train/A`` of the repository by default (the sample dataset's blurred side), or the folder
in ``$DEBLURGAN_CALIBRATION_DIR``. On ``images/test`` and ``images/holdout`` the default weights
lose 0.01 to 0.014 dB of PSNR against fp32 (README), inside the 0.1 dB the project allows for
offering it.
"""

import itertools
import logging
import os
from pathlib import Path

import numpy as np

from deblurgan.errors import DeblurGANError
from deblurgan.io import IMAGE_EXTENSIONS, read_image
from deblurgan.quiet import log_lines_hidden

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "images" / "train" / "A"
MIN_SIDE = 32  # smaller crops say little about a photo's activations (and 0 px fails to pad)


def calibration_dir():
    """``$DEBLURGAN_CALIBRATION_DIR`` or the repository's ``images/train/A``."""
    return Path(os.environ.get("DEBLURGAN_CALIBRATION_DIR") or DEFAULT_CALIBRATION_DIR)


def calibration_crops(folder, n_crops=16, crop_size=128, seed=0):
    """``n_crops`` seeded ``crop_size`` crops of the photos in ``folder``, float32 NHWC in [-1, 1];
    unreadable photos, or ones under ``MIN_SIDE`` pixels, are left out with a warning."""
    paths = sorted(
        p for p in Path(folder).glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.name[0] != "."
    )
    rng = np.random.default_rng(seed)
    crops, left_out = [], set()
    for path in itertools.cycle(paths):  # round the photos, one crop each, leaving out unusable ones
        if len(crops) == n_crops or len(left_out) == len(paths):
            break
        if path in left_out:
            continue
        pixels = _calibration_photo(path)
        if pixels is None:
            left_out.add(path)
            continue
        height, width = pixels.shape[:2]
        size = min(crop_size, height, width) // 4 * 4
        top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
        crops.append(pixels[top : top + size, left : left + size] * 2.0 - 1.0)
    if not crops:
        raise DeblurGANError(
            f"no usable calibration photos in {folder}: int8 is calibrated on blurred photos of at least "
            f"{MIN_SIDE}x{MIN_SIDE} pixels; point DEBLURGAN_CALIBRATION_DIR at a folder of them (the "
            "repository's images/train/A)",
            parameter="calibration_dir",
        )
    return [crop[None].astype(np.float32) for crop in crops]


def _calibration_photo(path):
    """The pixels of ``path``, or None (with a warning) if it is unreadable or under ``MIN_SIDE``."""
    try:
        pixels = read_image(path).pixels
    except DeblurGANError as error:
        log.warning("int8 calibration leaves out %s", error)
        return None
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        log.warning("int8 calibration leaves out %s: %dx%d, under %d px", path, width, height, MIN_SIDE)
        return None
    return pixels


def quantize_onnx(fp32_path, int8_path, folder=None):
    """Writes the int8 (QDQ) quantisation of the ONNX model at ``fp32_path`` to ``int8_path``."""
    import onnx
    from onnxruntime import quantization as q

    folder = calibration_dir() if folder is None else Path(folder)
    crops = calibration_crops(folder)
    name = onnx.load(str(fp32_path)).graph.input[0].name

    class Crops(q.CalibrationDataReader):
        def __init__(self):
            self._batches = iter({name: crop} for crop in crops)

        def get_next(self):
            return next(self._batches, None)

    log.warning("quantising %s to int8, calibrated on %d crops of %s", fp32_path, len(crops), folder)
    partial = Path(int8_path).with_name(Path(int8_path).name + ".partial")
    # ONNX Runtime's advice (to the root logger) to pre-process is to this module, not the user:
    # the int8 scores in benchmarks/README.md are measured without it
    with log_lines_hidden(logging.getLogger(), "pre-processing before quantization"):
        q.quantize_static(
            str(fp32_path), str(partial), Crops(), quant_format=q.QuantFormat.QDQ, per_channel=True,
            activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
        )  # fmt: skip
    os.replace(partial, int8_path)  # a killed quantisation leaves no half file under the real name
