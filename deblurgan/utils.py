"""The Sicara port's ``deblurgan.utils`` (``load_images``, ``load_image``, ``preprocess_image``,
``deprocess_image``, ``save_image``, ``list_image_files``), on today's reader and writer: the
Sicara scripts' imports work, but nothing is resized to 256x256 (the networks take any size
divisible by 4; ``deblurgan.deblur_array`` pads any other)."""

import logging
from pathlib import Path

import numpy as np

from deblurgan.datasets import _normalize_size
from deblurgan.errors import DeblurGANError
from deblurgan.io import (  # noqa: F401  (deprocess_image: the Sicara name, re-exported)
    IMAGE_EXTENSIONS,
    deprocess_image,
    preprocess_image,
    read_image,
    resize_image,
    to_unit_range,
    write_image,
)
from deblurgan.pairing import check_same_size, pair_images

logger = logging.getLogger(__name__)


def load_images(path, n_images=-1, size=(256, 256)):
    """Loads the pairs under ``path/A`` and ``path/B`` into memory (the Sicara port's API).

    Args:
        path: folder holding ``A/`` (blurred) and ``B/`` (sharp), paired by relative name.
        n_images: number of pairs to load (the first ones by name); negative = all.
        size: int or ``(height, width)`` every image is resized to (bicubic, as Sicara), or None to
            keep native sizes (then all images must have the same size).

    Returns:
        dict with ``'A'`` and ``'B'`` (float32 arrays (n, height, width, 3) in [-1, 1]) and
        ``'A_paths'`` and ``'B_paths'`` (arrays of path strings). Corrupt pairs are skipped with
        a warning.

    Example:
        >>> data = load_images("images/train", n_images=10)   # doctest: +SKIP
        >>> data["A"].shape                                   # doctest: +SKIP
        (10, 256, 256, 3)
    """
    size = _normalize_size(size, "size")
    if n_images == 0:  # Sicara's loop loaded one pair then; no pairs is no dataset
        raise DeblurGANError("n_images=0: load at least 1 pair, or a negative number for all", "n_images")
    pairs = pair_images(path)
    if n_images is not None and n_images >= 0:
        pairs = pairs[: int(n_images)]
    data = {"A": [], "A_paths": [], "B": [], "B_paths": []}
    skipped = 0
    for blurred_path, sharp_path in pairs:
        try:
            blurred, sharp = read_image(blurred_path).pixels, read_image(sharp_path).pixels
        except DeblurGANError as error:
            logger.warning("skipping corrupt image pair: %s", error)
            skipped += 1
            continue
        check_same_size(blurred_path, sharp_path, blurred.shape[:2], sharp.shape[:2])
        if size is not None:
            blurred, sharp = resize_image(blurred, size), resize_image(sharp, size)
        elif data["A"] and blurred.shape != data["A"][0].shape:
            first = data["A_paths"][0]
            raise DeblurGANError(
                f"{blurred_path} is {blurred.shape[1]}x{blurred.shape[0]} but {first} is "
                f"{data['A'][0].shape[1]}x{data['A'][0].shape[0]}: size=None needs equal sizes; "
                "pass size=(height, width)",
                "size",
            )
        data["A"].append(preprocess_image(blurred))
        data["B"].append(preprocess_image(sharp))
        data["A_paths"].append(str(blurred_path))
        data["B_paths"].append(str(sharp_path))
    if skipped:
        logger.warning("%s: skipped %d corrupt image pairs", path, skipped)
    if not data["A"]:
        raise DeblurGANError(f"{path}: no readable image pairs; check the warnings above")
    return {key: np.array(value) for key, value in data.items()}


def load_image(path):
    """The RGB pixels of the photo ``path`` as floats in [0, 1] (``preprocess_image`` takes them;
    Sicara returned a PIL image)."""
    return read_image(path).pixels


def save_image(image, path):
    """Writes ``image`` (the networks' [-1, 1], as Sicara's ``save_image``) to ``path``."""
    write_image(path, to_unit_range(image))


def list_image_files(directory):
    """The image files directly in ``directory``, sorted, as path strings (Sicara's function)."""
    return [str(p) for p in sorted(Path(directory).iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
