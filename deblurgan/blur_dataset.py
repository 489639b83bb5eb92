"""Building paired (blurred, sharp) datasets from a folder of sharp photos.

``make_blur_dataset`` writes ``OUT/A`` (blurred) and ``OUT/B`` (sharp) with matching names, the
layout that training reads. Each pair is a crop of a photo, blurred with a random camera-shake or
linear kernel from :mod:`deblurgan.blur`; ``OUT/pairs.csv`` records the source, crop, kernel and
PSNR of every pair. For one seed the output is identical, byte for byte, on every run, and each
photo's draws depend only on the seed and its own relative path, so adding a photo does not
change the pairs made from the others.
"""

import csv
import dataclasses
import io
import logging
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from deblurgan import blur
from deblurgan.errors import DeblurGANError, check_seed, first_of
from deblurgan.io import atomic_path, list_images, read_image, writable_folder, write_image
from deblurgan.metrics import check_scorable, psnr_8bit
from deblurgan.pairing import check_sharp_only

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class BlurOptions:
    """How pairs are drawn (see :func:`deblurgan.blur.random_kernel` for the kernel options)."""

    blurs_per_image: int = 1
    crop_size: int | None = None
    max_side: int | None = None
    exposures: tuple = blur.DEFAULT_EXPOSURES
    linear_probability: float = 0.25
    linear_length: tuple = (3.0, 25.0)
    noise_sigma: tuple = (0.0, 0.0)
    jpeg_quality: tuple | None = None


def make_blur_dataset(
    input_dir,
    output_dir,
    seed=0,
    test_fraction=0.0,
    overwrite=False,
    progress=True,
    **options,
):
    """Blurs every photo under ``input_dir`` into ``output_dir/A`` with its sharp crop in ``output_dir/B``.

    Args:
        input_dir: folder of sharp photos (searched recursively; read-only).
        output_dir: where ``A/``, ``B/`` and ``pairs.csv`` go; with ``test_fraction > 0``,
            ``train/{A,B}`` and ``test/{A,B}`` instead, split by photo (no photo in both).
        seed: integer seed; the same seed gives identical files.
        test_fraction: fraction of the photos (at least one when > 0) kept for ``test/``.
        overwrite: delete the images already in the output's ``A``/``B`` folders first; without
            it, a non-empty ``A``/``B`` is an error (stale pairs would mix with new ones).
        progress: show a tqdm progress bar.
        **options: fields of :class:`BlurOptions`: ``blurs_per_image`` (pairs per photo),
            ``crop_size`` (square crop side in px, None = whole photo), ``max_side`` (downscale
            photos so their longer side is at most this, before cropping), ``exposures``,
            ``linear_probability``, ``linear_length`` (min, max px), ``noise_sigma`` (min, max),
            ``jpeg_quality`` (min, max or None).

    Returns:
        list of dicts, one per pair written (the rows of ``pairs.csv``).

    Raises:
        DeblurGANError: missing or empty input folder, names that collide, an output folder inside
            the input folder (or the reverse), or a bad option, before anything is written; and
            after the other photos' pairs and ``pairs.csv`` are written, unreadable photos (each
            named in a warning, the first in the error).

    Example::

        make_blur_dataset("photos", "data/blurred", seed=1, crop_size=256, blurs_per_image=8)
    """
    options = check_options(BlurOptions(**options), test_fraction)
    seed = check_seed(seed)
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    photos = _list_photos(input_dir, output_dir)
    splits = _split_by_photo(photos, input_dir, seed, test_fraction)
    writable_folder(output_dir, "output_dir")
    _clear_outputs(output_dir, overwrite, _planned_pairs(splits, input_dir, output_dir, options))
    total = len(photos) * options.blurs_per_image
    rows, unreadable = [], []
    with tqdm(total=total, desc="blurring", unit="pair", disable=not progress) as bar:
        for split, split_photos in splits.items():
            split_dir = output_dir / split if split else output_dir
            for photo_path in split_photos:
                relative = photo_path.relative_to(input_dir).as_posix()
                try:
                    rows += _make_pairs(photo_path, relative, split, split_dir, seed, options)
                except DeblurGANError as error:  # the other photos still get their pairs
                    logger.warning("skipped %s", error)
                    unreadable.append(error)
                bar.update(options.blurs_per_image)
    _write_manifest(output_dir / "pairs.csv", rows)
    logger.info("wrote %d pairs to %s", len(rows), output_dir)
    if unreadable:
        raise DeblurGANError(
            f"{unreadable[0]}; {len(unreadable)} of {len(photos)} photos were unreadable or too small and "
            f"have no pairs (each named above); the others' pairs are in {output_dir}"
        )
    return rows


def check_options(options, test_fraction=0.0):
    """Validates :class:`BlurOptions` (and ``test_fraction``); returns the options."""
    if options.blurs_per_image < 1:
        raise DeblurGANError(f"blurs_per_image={options.blurs_per_image}: use 1 or more", "blurs_per_image")
    if options.crop_size is not None and options.crop_size < 8:
        raise DeblurGANError(
            f"crop_size={options.crop_size}: use at least 8 px, or leave it out (None) for whole photos",
            "crop_size",
        )
    if options.max_side is not None and options.max_side < 8:
        raise DeblurGANError(f"max_side={options.max_side}: use at least 8 px", "max_side")
    if not 0 <= test_fraction < 1:
        raise DeblurGANError(f"test_fraction={test_fraction}: use a value in [0, 1)", "test_fraction")
    if not 0 <= options.linear_probability <= 1:
        raise DeblurGANError(
            f"linear_probability={options.linear_probability}: use a value in [0, 1]", "linear_probability"
        )
    if not options.exposures or any(not 0 < e <= 1 for e in options.exposures):
        shown = ",".join(f"{e:g}" for e in options.exposures or ())
        raise DeblurGANError(f"exposures={shown!r}: give fractions in (0, 1], e.g. 0.5,1", "exposures")
    for name, low, high, unit in (
        ("linear_length", 1, 1e4, "px, 1 <= min <= max <= 10000"),
        ("noise_sigma", 0, 1, "in [0, 1] units, 0 <= min <= max <= 1"),
        ("jpeg_quality", 1, 100, "whole numbers, 1 <= min <= max <= 100"),
    ):
        value = getattr(options, name)
        if value is None and name == "jpeg_quality":  # no JPEG re-compression
            continue
        whole = name != "jpeg_quality" or all(float(v).is_integer() for v in value or ())
        if value is None or len(value) != 2 or not low <= value[0] <= value[1] <= high or not whole:
            shown = "" if value is None else ",".join(f"{v:g}" for v in value)
            raise DeblurGANError(f"{name}={shown}: give min,max ({unit})", name)
    return options


def _list_photos(input_dir, output_dir):
    if not input_dir.is_dir():
        what = "a file, not a folder" if input_dir.exists() else "no such folder"
        raise DeblurGANError(f"input_dir={input_dir}: {what} of sharp photos", "input_dir")
    if output_dir.resolve().is_relative_to(input_dir.resolve()):
        raise DeblurGANError(
            f"output_dir={output_dir}: inside the input folder {input_dir}; choose another", "output_dir"
        )
    for folder in _output_folders(output_dir):  # emptied by overwrite=True: the photos would go
        if input_dir.resolve().is_relative_to(folder.resolve()):
            raise DeblurGANError(
                f"input_dir={input_dir}: inside {folder}, where this run writes its pairs; move the "
                "photos elsewhere or choose another output_dir",
                "input_dir",
                mentions=("output_dir",),
            )
    photos = list_images(input_dir)
    if not photos:
        raise DeblurGANError(f"input_dir={input_dir}: no images (.png, .jpg, ...) found", "input_dir")
    check_sharp_only(input_dir, photos, "input_dir")
    stems = {}
    for photo in photos:
        stem = _output_stem(photo.relative_to(input_dir).as_posix())
        if stem in stems:
            raise DeblurGANError(f"{photo}: gives the same output name as {stems[stem]}; rename one of them")
        stems[stem] = photo
    return photos


def _output_folders(output_dir):
    """Where pairs go in either layout (A/B, and train/ and test/ with a test split)."""
    return [output_dir / split / side for split in ("", "train", "test") for side in "AB"]


def _clear_outputs(output_dir, overwrite, planned):
    # both layouts, so a rerun that switches between them leaves no pairs of the earlier run
    # beside the new ones, nor empty train/A, which training would take for the layout in use
    folders = [folder for folder in _output_folders(output_dir) if folder.is_dir()]
    existing = [image for folder in folders for image in list_images(folder)]
    if existing and not overwrite:
        raise DeblurGANError(
            f"{existing[0].parent}: already holds images; pass overwrite=True to replace them, or choose "
            "another output folder",
            mentions=("overwrite",),
        )
    ours = planned | _recorded_pairs(output_dir)
    foreign = [image for image in existing if image not in ours]
    if foreign:  # the user's own images, put there by hand: never deleted
        raise DeblurGANError(
            f"{first_of(foreign)}: neither a pair of {output_dir / 'pairs.csv'} nor one this run writes, "
            "and overwrite=True replaces only those; move it out, or choose another output folder",
            mentions=("overwrite",),
        )
    for image in existing:
        image.unlink()
    for folder in folders:
        for empty in (folder, folder.parent):
            if empty != output_dir and empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()


def _planned_pairs(splits, input_dir, output_dir, options):
    """The A/ and B/ files this run writes (an interrupted run with the same photos wrote some)."""
    return {
        (output_dir / split if split else output_dir) / side / f"{_output_stem(relative)}_{index:02d}.png"
        for split, photos in splits.items()
        for relative in (photo.relative_to(input_dir).as_posix() for photo in photos)
        for index in range(options.blurs_per_image)
        for side in "AB"
    }


def _recorded_pairs(output_dir):
    """The A/ and B/ files an earlier run listed in ``pairs.csv`` (none if it is unreadable)."""
    try:
        with open(output_dir / "pairs.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()
    return {
        (output_dir if row.get("split") in (None, "-") else output_dir / row["split"]) / side / row["name"]
        for row in rows
        if row.get("name")
        for side in "AB"
    }


def _output_stem(relative):
    """'city/street.jpg' -> 'city__street' (pairs from sub-folders keep distinct flat names)."""
    return relative.rsplit(".", 1)[0].replace("/", "__")


def _split_by_photo(photos, input_dir, seed, test_fraction):
    if test_fraction == 0:
        return {"": photos}
    if len(photos) < 2:
        raise DeblurGANError(f"{input_dir}: a train/test split needs at least 2 photos")
    n_test = min(len(photos) - 1, max(1, round(test_fraction * len(photos))))
    order = np.random.default_rng([seed, 0x5B117]).permutation(len(photos))
    test = set(order[:n_test].tolist())
    return {
        "train": [p for i, p in enumerate(photos) if i not in test],
        "test": [p for i, p in enumerate(photos) if i in test],
    }


def _photo_rng(seed, relative):
    """A generator that depends only on the seed and the photo's relative path."""
    return np.random.default_rng([seed, zlib.crc32(relative.encode("utf-8"))])


def _make_pairs(photo_path, relative, split, split_dir, seed, options):
    pixels = downscale(read_image(photo_path).pixels, options.max_side)
    check_scorable(photo_path, pixels)  # its pairs could be neither scored nor trained on
    height, width = pixels.shape[:2]
    if options.crop_size and min(height, width) < options.crop_size:
        logger.warning(
            "%s is %dx%d, smaller than crop_size=%d: its pairs are as much of it as fits",
            photo_path, width, height, options.crop_size,
        )  # fmt: skip
    rng = _photo_rng(seed, relative)
    rows = []
    for index in range(options.blurs_per_image):
        sharp, blurred, drawn = blur_crop(pixels, rng, options)
        name = f"{_output_stem(relative)}_{index:02d}.png"
        write_image(split_dir / "A" / name, blurred)
        write_image(split_dir / "B" / name, sharp)
        psnr_db = f"{psnr_8bit(sharp, blurred):.2f}"
        rows.append({"split": split or "-", "name": name, "source": relative, **drawn, "psnr_db": psnr_db})
    return rows


def blur_crop(pixels, rng, options):
    """One pair from a photo: a crop of ``pixels`` and the same crop blurred with a fresh kernel.

    Draws, in this order, the kernel, the crop window, the noise level and the JPEG quality from
    ``rng``; the blur sees the real pixels around the crop. Used by :func:`make_blur_dataset` and by
    the on-the-fly training dataset, so both make pairs the same way.

    Args:
        pixels: (height, width, 3), float32 in [0, 1], or uint8/uint16 (a cached photo: only the
            window around the crop is converted to floats).
        rng: ``numpy.random.Generator``.
        options: :class:`BlurOptions` (its ``crop_size`` and kernel, noise and JPEG fields).

    Returns:
        ``(sharp, blurred, drawn)``: float32 crops in [0, 1] and a dict describing the draws.
    """
    kernel, description = blur.random_kernel(
        rng,
        exposures=options.exposures,
        linear_probability=options.linear_probability,
        linear_length=options.linear_length,
    )
    top, left, height, width = _crop_box(rng, pixels.shape, options.crop_size)
    sharp = unit_range(pixels[top : top + height, left : left + width])
    blurred = _blur_window(pixels, kernel, top, left, height, width)
    sigma = float(rng.uniform(*options.noise_sigma)) if options.noise_sigma[1] > 0 else 0.0
    if sigma > 0:
        blurred = blur.add_noise(blurred, rng, sigma)
    quality = None
    if options.jpeg_quality is not None:
        quality = int(rng.integers(options.jpeg_quality[0], options.jpeg_quality[1] + 1))
        blurred = blur.jpeg_recompress(blurred, quality)
    drawn = {
        "crop_top_left_height_width": f"{top} {left} {height} {width}",
        "kernel": description,
        "noise_sigma": f"{sigma:.4f}",
        "jpeg_quality": quality if quality is not None else "-",
    }
    return sharp, blurred, drawn


def scaled_size(size, max_side):
    """``(height, width)`` of a photo of ``size`` after :func:`downscale` to ``max_side``."""
    height, width = size
    if max_side is None or max(height, width) <= max_side:
        return size
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def downscale(pixels, max_side):
    """``pixels`` shrunk (Lanczos, in float) so that the longer side is at most ``max_side`` (None: as is)."""
    size = scaled_size(pixels.shape[:2], max_side)
    if size == pixels.shape[:2]:
        return pixels
    size = size[::-1]  # Pillow's (width, height)
    # Resize each channel as 32-bit float so nothing is quantised before blurring.
    channels = []
    for c in range(pixels.shape[-1]):
        channel = Image.fromarray(np.ascontiguousarray(pixels[..., c]), mode="F")
        channels.append(np.asarray(channel.resize(size, Image.Resampling.LANCZOS)))
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def unit_range(pixels):
    """uint8, uint16 or float pixels -> float32 in [0, 1]."""
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    return np.asarray(pixels, dtype=np.float32)


def _crop_box(rng, shape, crop_size):
    height, width = shape[:2]
    if crop_size is None:
        return 0, 0, height, width
    crop_h, crop_w = min(crop_size, height), min(crop_size, width)
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return top, left, crop_h, crop_w


def _blur_window(pixels, kernel, top, left, height, width):
    """Blurs the crop with real neighbouring pixels around it (reflection only at photo borders).

    Blurring a window one kernel larger than the crop and cutting the crop out gives the same
    pixels as blurring the whole photo, at a fraction of the cost for large photos.
    """
    margin = max(kernel.shape)
    y0, x0 = max(0, top - margin), max(0, left - margin)
    y1 = min(pixels.shape[0], top + height + margin)
    x1 = min(pixels.shape[1], left + width + margin)
    blurred = blur.blur_image(unit_range(pixels[y0:y1, x0:x1]), kernel)
    return blurred[top - y0 : top - y0 + height, left - x0 : left - x0 + width]


def _write_manifest(path, rows):
    if not rows:
        return
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue(), encoding="utf-8")
