"""Reading and writing photos, and the one [-1, 1] <-> pixel convention.

``read_image`` returns RGB floats in [0, 1] whatever the file holds (grayscale, palette, RGBA,
16-bit, EXIF-rotated) and keeps alpha aside, so that training, blur synthesis and deblurring see
the same pixels. ``preprocess_image``/``deprocess_image`` are the only place that maps pixels to
the networks' [-1, 1] range and back.
"""

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deblurgan.errors import DeblurGANError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class Photo:
    """A decoded image file.

    Attributes:
        pixels: float32 array (height, width, 3), RGB in [0, 1]; grayscale is repeated to 3 channels.
        alpha: float32 array (height, width) in [0, 1], or None.
        grayscale: the file had a single (luminance) channel.
        bit_depth: 8 or 16 bits per channel in the file.
        format: Pillow's format name ("PNG", "JPEG", ...), or None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    grayscale: bool = False
    bit_depth: int = 8
    format: str | None = None


def list_images(folder):
    """Image files under ``folder`` (recursively), sorted, by extension (case-insensitive)."""
    folder = Path(folder)
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_image(path):
    """Decodes ``path`` into a :class:`Photo`, applying its EXIF orientation.

    Raises:
        DeblurGANError: the file is missing, unreadable, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise DeblurGANError(f"{path}: no such image file; check the path")
    try:
        with Image.open(path) as image:
            file_format = image.format
            image = ImageOps.exif_transpose(image)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DeblurGANError(
            f"{path}: not a readable image ({error}); re-export it as PNG or JPEG or remove it"
        ) from None
    return _decode(image, file_format)


def _decode(image, file_format):
    mode = image.mode
    alpha = None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float32)
        scale = 65535.0
        return Photo(_gray3(np.clip(values / scale, 0, 1)), None, True, 16, file_format)
    if mode == "F":
        values = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
        return Photo(_gray3(values), None, True, 16, file_format)
    if mode in ("1", "L", "LA"):
        if mode == "LA":
            alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return Photo(_gray3(gray), alpha, True, 8, file_format)
    if mode in ("RGBA", "RGBa", "PA"):
        image = image.convert("RGBA")
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return Photo(rgb, alpha, False, 8, file_format)


def _gray3(gray):
    return np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)


def write_image(path, pixels, alpha=None, grayscale=False, bit_depth=8):
    """Writes RGB floats in [0, 1] to ``path`` atomically (temporary file, then rename).

    The format follows the extension. ``grayscale`` writes one luminance channel (BT.601 weights,
    as Pillow's ``convert("L")``); ``alpha`` (height, width) in [0, 1] is stored where the format
    allows it; ``bit_depth=16`` is kept for grayscale PNG/TIFF and rounded to 8 bits otherwise.
    """
    path = Path(path)
    pixels = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    if grayscale:
        gray = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if bit_depth == 16 and path.suffix.lower() in (".png", ".tif", ".tiff"):
            image = Image.fromarray(np.round(gray * 65535).astype(np.uint16))
            alpha = None
        else:
            image = Image.fromarray(_to_uint8(gray), mode="L")
    else:
        image = Image.fromarray(_to_uint8(pixels), mode="RGB")
    if alpha is not None and path.suffix.lower() in (".png", ".tif", ".tiff", ".webp"):
        image = image.convert("LA" if grayscale else "RGBA")
        image.putalpha(Image.fromarray(_to_uint8(alpha), mode="L"))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        save_kwargs = {"quality": 95}
    else:
        save_kwargs = {}
    file_format = Image.registered_extensions().get(path.suffix.lower())
    with atomic_path(path) as tmp:
        image.save(tmp, format=file_format, **save_kwargs)


def _to_uint8(unit):
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


class atomic_path:
    """Context manager yielding a temporary path beside ``path`` that is renamed onto it on success.

    A crash or error midway leaves any earlier ``path`` untouched and removes the temporary file.
    The temporary name keeps the extension, because Keras and Pillow choose the format by it.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.stem}.", suffix=f".tmp{self.path.suffix}", dir=self.path.parent
        )
        os.close(fd)
        os.unlink(tmp)  # writers (h5py, Pillow) create the file themselves
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()
        return False


def preprocess_image(image):
    """uint8 pixels (0..255), or floats in [0, 1], -> float32 in [-1, 1] (the networks' range).

    Unlike the Sicara port, nothing is resized: the networks take any size divisible by 4.
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 127.5 - 1.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 32767.5 - 1.0
    return np.asarray(image, dtype=np.float32) * 2.0 - 1.0


def deprocess_image(image):
    """Network output in [-1, 1] -> uint8 pixels, rounded to nearest and clipped."""
    image = np.asarray(image, dtype=np.float32)
    return np.round(np.clip(image * 127.5 + 127.5, 0.0, 255.0)).astype(np.uint8)


def to_unit_range(image):
    """Network output in [-1, 1] -> float32 in [0, 1] (for ``write_image`` and the metrics)."""
    return np.clip((np.asarray(image, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)
