"""Reading and writing photos, and the one [-1, 1] <-> pixel convention.

``read_image`` returns RGB floats in [0, 1] whatever the file holds (grayscale, palette, RGBA,
16-bit, EXIF-rotated) and keeps alpha aside, so that training, blur synthesis and deblurring see
the same pixels. ``preprocess_image``/``deprocess_image`` are the only place that maps pixels to
the networks' [-1, 1] range and back.
"""

import dataclasses
import logging
import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deblurgan.errors import DeblurGANError

log = logging.getLogger(__name__)

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
        icc_profile: the embedded colour profile (bytes), or None: the pixels are in its space.
        dpi: the ``(x, y)`` resolution the file states, or None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    grayscale: bool = False
    bit_depth: int = 8
    format: str | None = None
    icc_profile: bytes | None = None
    dpi: tuple | None = None


def list_images(folder):
    """Image files under ``folder`` (recursively), sorted, by extension (case-insensitive). Hidden
    ones (a name or folder starting with "."), such as the temporary file of a write that was
    killed (:func:`atomic_path`) or macOS's ``._photo.jpg``, are not photos."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


# A 16,000 x 12,000 panorama fits; Pillow's own limit (89 MP) would refuse it.
DEFAULT_MAX_IMAGE_PIXELS = 200_000_000
# Every image deblurgan opens goes through _open_checked's max_pixels check, which names the file and
# the option; Pillow's own two-line warning for the same image would only repeat it, less usefully.
_IGNORE_PILLOWS_LIMIT = ("ignore", None, Image.DecompressionBombWarning, None, 0)
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error)


def read_image(path, box=None, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    """Decodes ``path`` into a :class:`Photo`, applying its EXIF orientation.

    Args:
        path: the image file.
        box: ``(left, top, right, bottom)`` in upright pixels: decode only this window (cheaper
            than converting the whole photo), or None for the whole image.
        max_pixels: refuse images with more pixels than this (decompression bombs, or photos too
            large for memory), before decoding them.

    Raises:
        DeblurGANError: the file is missing, unreadable, truncated, too large or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise DeblurGANError(f"{path}: no such image file; check the path")
    try:
        with _open_checked(path, max_pixels) as image:
            file_format = image.format
            if getattr(image, "n_frames", 1) > 1:  # a multi-page TIFF, an animated WebP
                log.warning("%s: %d frames (pages); only the first is read", path, image.n_frames)
            if _is_16bit_color(image):
                photo = _crop_photo(_read_16bit_color(path, image), box)
                info = dict(image.info)  # loaded: a PNG's chunks after the pixels included
            else:
                orientation = _exif_orientation(image)
                image.load()
                info = dict(image.info)
                if box is not None:
                    image = image.crop(_stored_box(box, orientation, image.size))
                photo = _decode(image, file_format)
                photo.pixels = _orient(photo.pixels, orientation)
                photo.alpha = None if photo.alpha is None else _orient(photo.alpha, orientation)
    except _UNREADABLE as error:
        raise DeblurGANError(
            f"{path}: not a readable image ({error}); re-export it as PNG or JPEG or remove it"
        ) from None
    photo.icc_profile = _profile_of(info.get("icc_profile"), photo.grayscale)
    photo.dpi = info.get("dpi")
    return photo


def _profile_of(icc_profile, grayscale):
    """``icc_profile`` if it describes the decoded pixels (an RGB profile for RGB, a gray one for
    gray), else None: a CMYK photo's profile, say, is wrong for its RGB conversion."""
    space = b"GRAY" if grayscale else b"RGB "
    return icc_profile if icc_profile and icc_profile[16:20] == space else None


def _open_checked(path, max_pixels):
    """``Image.open`` that refuses images over ``max_pixels`` with a DeblurGANError naming the file."""
    # Pillow refuses (or warns about) large images by a global limit; this check replaces it.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = int(max_pixels)
    hint = "raise the limit if it is a real photo (about 20 bytes of memory per pixel), or remove it"
    _quiet_pillows_limit()
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:
        raise DeblurGANError(
            f"{path}: over twice max_image_pixels={max_pixels:,}; {hint}", "max_image_pixels"
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        message = f"{path}: {width}x{height} pixels, over max_image_pixels={max_pixels:,}; {hint}"
        raise DeblurGANError(message, "max_image_pixels")
    return image


def _quiet_pillows_limit():
    if _IGNORE_PILLOWS_LIMIT not in warnings.filters:  # here, not at import: catch_warnings undoes that
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def image_size(path):
    """``(height, width)`` of ``path`` after EXIF orientation, from the header only, or None.

    None means the header is unreadable (the file will then be treated as corrupt when loaded).
    """
    _quiet_pillows_limit()
    try:
        with Image.open(path) as image:
            width, height = image.size
            # Pillow decodes a whole PNG to look for an EXIF chunk after the pixels; such files
            # are rare, and the loader checks the decoded size again anyway.
            if image.format == "PNG" and "exif" not in image.info:
                orientation = 1
            else:
                orientation = _exif_orientation(image)
    except (*_UNREADABLE, Image.DecompressionBombError):
        return None
    # Orientations 5-8 turn by 90 degrees, so the stored width is the displayed height.
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def _exif_orientation(image):
    orientation = image.getexif().get(0x0112, 1)
    return orientation if orientation in range(1, 9) else 1


def _stored_box(box, orientation, stored_size):
    """The window of the stored image that becomes ``box`` of the upright one (see ``_orient``)."""
    left, top, right, bottom = box
    width, height = stored_size
    return {
        1: (left, top, right, bottom),
        2: (width - right, top, width - left, bottom),
        3: (width - right, height - bottom, width - left, height - top),
        4: (left, height - bottom, right, height - top),
        5: (top, left, bottom, right),
        6: (top, height - right, bottom, height - left),
        7: (width - bottom, height - right, width - top, height - left),
        8: (width - bottom, left, width - top, right),
    }[orientation]


def _crop_photo(photo, box):
    if box is not None:
        left, top, right, bottom = box
        photo.pixels = np.ascontiguousarray(photo.pixels[top:bottom, left:right])
        if photo.alpha is not None:
            photo.alpha = np.ascontiguousarray(photo.alpha[top:bottom, left:right])
    return photo


def resize_image(pixels, size):
    """Resizes float RGB ``pixels`` (height, width, 3) to ``size`` = (height, width), bicubic.

    This is the Sicara port's whole-image resize (Pillow's bicubic filter), done per channel on
    floats so 16-bit files keep their precision; the result is clipped back to [0, 1].
    """
    height, width = size
    if pixels.shape[:2] == (height, width):
        return pixels
    bicubic = Image.Resampling.BICUBIC
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize((width, height), bicubic))
        for c in range(pixels.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


# Pillow decodes 16-bit RGB(A) into 8-bit modes by keeping each sample's high byte. Its unpackers
# for the other byte order keep the *low* byte instead, with the same scanline unfiltering, so
# decoding twice and combining gives the exact 16-bit values (PNG and uncompressed TIFF).
_SWAPPED_RAWMODES = {
    "RGB;16B": "RGB;16L",
    "RGB;16L": "RGB;16B",
    "RGBA;16B": "RGBA;16L",
    "RGBA;16L": "RGBA;16B",
}


def _rawmode(tile):
    args = tile.args if hasattr(tile, "args") else tile[3]
    return args if isinstance(args, str) else args[0]


def _is_16bit_color(image):
    tiles = getattr(image, "tile", None) or []
    return (
        image.format in ("PNG", "TIFF")
        and image.mode in ("RGB", "RGBA")
        and len(tiles) > 0
        and all(tile[0] in ("zip", "raw") and _rawmode(tile) in _SWAPPED_RAWMODES for tile in tiles)
    )


def _swap_rawmode(tile):
    args = tile.args if hasattr(tile, "args") else tile[3]
    if isinstance(args, str):
        args = _SWAPPED_RAWMODES[args]
    else:
        args = (_SWAPPED_RAWMODES[args[0]],) + tuple(args[1:])
    return tile._replace(args=args) if hasattr(tile, "_replace") else (*tile[:3], args)


def _read_16bit_color(path, image):
    """Exact 16-bit RGB(A) from a PNG or uncompressed TIFF (see ``_SWAPPED_RAWMODES``)."""
    image.load()  # a PNG's eXIf chunk may follow the pixel data
    orientation = _exif_orientation(image)
    first = np.asarray(image).astype(np.uint16)
    with Image.open(path) as again:
        again.tile = [_swap_rawmode(tile) for tile in again.tile]
        again.load()
        second = np.asarray(again).astype(np.uint16)
    # The file's own byte order gives each sample's high byte, the swapped one its low byte.
    values = _orient((first << 8) | second, orientation).astype(np.float32) / 65535.0
    alpha = values[..., 3].copy() if values.shape[-1] == 4 else None
    return Photo(values[..., :3].copy(), alpha, False, 16, image.format)


def _orient(array, orientation):
    """Applies an EXIF orientation (1-8) to an (height, width, ...) array, as exif_transpose does."""
    operations = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    return np.ascontiguousarray(operations.get(orientation, lambda a: a)(array))


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
    if mode == "F":  # no range of its own: only [0, 1] (a little round-off aside) is a photo's
        values = np.asarray(image, dtype=np.float32)
        low, high = float(np.min(values)), float(np.max(values))
        if not (low >= -0.01 and high <= 1.01):  # NaN too
            raise ValueError(f"floating-point pixels from {low:g} to {high:g}, where 0 to 1 is expected")
        return Photo(_gray3(np.clip(values, 0, 1)), None, True, 16, file_format)
    if mode in ("1", "L", "LA"):
        if mode == "LA":
            alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return Photo(_gray3(gray), alpha, True, 8, file_format)
    if mode in ("RGBA", "RGBa", "PA"):
        image = image.convert("RGBA")
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    rgb = _unit_rgb(image if image.mode == "RGB" else image.convert("RGB"))
    return Photo(rgb, alpha, False, 8, file_format)


def _unit_rgb(image, band=256):
    """An RGB image as float32 in [0, 1], converted in row bands: one float copy of a huge photo and
    no whole-photo 8-bit temporaries."""
    width, height = image.size
    rgb = np.empty((height, width, 3), np.float32)
    for top in range(0, height, band):
        rows = rgb[top : top + band]
        rows[...] = np.asarray(image.crop((0, top, width, top + rows.shape[0])))
        rows /= 255.0
    return rgb


def _gray3(gray):
    return np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)


LOSSY_QUALITY = 95  # of JPEG and WebP outputs: a restored photo should not lose detail again


def write_image(path, pixels, alpha=None, grayscale=False, bit_depth=8, icc_profile=None, dpi=None):
    """Writes RGB floats in [0, 1] to ``path`` atomically (temporary file, then rename).

    The format follows the extension. ``grayscale`` writes one luminance channel (BT.601 weights,
    as Pillow's ``convert("L")``); ``alpha`` (height, width) in [0, 1] is stored where the format
    allows it; ``bit_depth=16`` is kept for PNG (and grayscale TIFF) and rounded to 8 bits otherwise.
    ``icc_profile`` (the colour space of ``pixels``) and ``dpi`` are stored where the format has room.
    JPEG and WebP are written at quality ``LOSSY_QUALITY`` (95).
    """
    path = Path(path)
    pixels = np.asarray(pixels, dtype=np.float32)  # every branch below clips
    if bit_depth == 16 and not grayscale and path.suffix.lower() == ".png":
        with atomic_path(path) as tmp:
            tmp.write_bytes(_encode_png16(pixels, alpha, icc_profile, dpi))
        return
    if grayscale:
        gray = np.clip(pixels, 0.0, 1.0) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if bit_depth == 16 and path.suffix.lower() in (".png", ".tif", ".tiff"):
            image = Image.fromarray(np.round(np.clip(gray, 0, 1) * 65535).astype(np.uint16))
            alpha = None
        else:
            image = Image.fromarray(to_uint8(gray), mode="L")
    else:
        image = Image.fromarray(to_uint8(pixels), mode="RGB")
    if alpha is not None and path.suffix.lower() in (".png", ".tif", ".tiff", ".webp"):
        image = image.convert("LA" if grayscale else "RGBA")
        image.putalpha(Image.fromarray(to_uint8(alpha), mode="L"))
    lossy = path.suffix.lower() in (".jpg", ".jpeg", ".webp")  # Pillow's default quality is 75 or 80
    save_kwargs = {"quality": LOSSY_QUALITY} if lossy else {}
    metadata = {"icc_profile": icc_profile, "dpi": dpi}
    save_kwargs.update({key: value for key, value in metadata.items() if value is not None})
    file_format = Image.registered_extensions().get(path.suffix.lower())
    with atomic_path(path) as tmp:
        image.save(tmp, format=file_format, **save_kwargs)


def _encode_png16(pixels, alpha=None, icc_profile=None, dpi=None):
    """A 16-bit RGB (or RGBA) PNG, which Pillow cannot write: NumPy and zlib, "Up" row filters."""
    channels = [pixels] if alpha is None else [pixels, np.asarray(alpha, dtype=np.float32)[..., None]]
    samples = np.round(np.clip(np.concatenate(channels, axis=-1), 0, 1) * 65535).astype(">u2")
    height, width, depth = samples.shape
    rows = samples.reshape(height, width * depth).view(np.uint8)
    up = rows - np.vstack([np.zeros_like(rows[:1]), rows[:-1]])  # uint8 wraps modulo 256
    scanlines = np.hstack([np.full((height, 1), 2, np.uint8), up])  # filter type 2 = Up

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    color_type = 2 if depth == 3 else 6
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    metadata = b""
    if icc_profile:  # the profile's name, compression method 0 (zlib), the profile
        metadata += chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile))
    if dpi:  # pixels per metre, unit 1 (metre)
        metadata += chunk(b"pHYs", struct.pack(">IIB", *(round(d / 0.0254) for d in dpi[:2]), 1))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + metadata
        + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def to_uint8(unit):
    """[0, 1] floats -> 8-bit pixels (clipped, rounded to the nearest level)."""
    unit = np.asarray(unit)
    if unit.ndim < 3:
        return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)
    out = np.empty(unit.shape, np.uint8)
    for top in range(0, unit.shape[0], 256):  # row bands bound the float temporaries of huge photos
        out[top : top + 256] = np.round(np.clip(unit[top : top + 256], 0.0, 1.0) * 255.0)
    return out


def check_new_file(path, overwrite, parameter="output"):
    """Refuses an existing ``path`` unless ``overwrite``: it may be the user's only copy."""
    if Path(path).exists() and not overwrite:
        raise DeblurGANError(
            f"{parameter}={path}: already exists; choose another name, or pass overwrite=True to replace it",
            parameter,
            mentions=("overwrite",),
        )


def writable_folder(path, parameter, create=True):
    """Checks that the folder ``path`` can be created (where missing) and written to, before any
    work whose results would go there; one line naming ``parameter`` otherwise. ``create``: create
    it now (with its parents)."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())  # the nearest that exists
    if not existing.is_dir():
        why = "is a file" if existing == path else f"{existing} is a file"
    elif not os.access(existing, os.W_OK | os.X_OK):  # a read-only folder or file system
        why = "not writable" if existing == path else f"{existing} is not writable"
    else:
        try:  # /proc, /sys: writable by their mode, yet no folder can be made there
            if create:
                path.mkdir(parents=True, exist_ok=True)
            return path
        except OSError as error:
            why = error.strerror or str(error)
    raise DeblurGANError(f"{parameter}={path}: cannot write there ({why}); choose another folder", parameter)


class atomic_path:
    """Context manager yielding a temporary path beside ``path`` that is renamed onto it on success.

    A crash or error midway leaves any earlier ``path`` untouched and removes the temporary file.
    The temporary name keeps the extension, because Keras and Pillow choose the format by it.
    The file's data reaches the disk before the rename (fsync), so that after a power loss
    ``path`` holds the old file or the whole new one. A place that cannot be written is one line,
    about ``parameter`` when given.
    """

    def __init__(self, path, parameter=None):
        self.path, self.parameter = Path(path), parameter

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(  # the stem shortened: the name must stay under 255 bytes
                prefix=f".{self.path.stem[:64]}.", suffix=f".tmp{self.path.suffix}", dir=self.path.parent
            )
        except OSError as error:
            raise _cannot_write(self.path, error, self.parameter) from None
        os.close(fd)
        os.unlink(tmp)  # writers (h5py, Pillow) create the file themselves
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                _sync(self.tmp)
                os.replace(self.tmp, self.path)
            except OSError as error:
                self.tmp.unlink(missing_ok=True)
                raise _cannot_write(self.path, error, self.parameter) from None
            _sync(self.path.parent)  # the rename itself
        elif self.tmp.exists():
            self.tmp.unlink()
        return False


def _sync(path):
    """Flushes a file's data, or a folder's entries, to the disk (best effort for folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():  # some file systems cannot sync a folder
            raise
    finally:
        os.close(fd)


def _cannot_write(path, error, parameter=None):
    """The one-line error for ``path``, naming a broken link, a file or a folder in the way."""
    why = error.strerror or str(error)
    broken = [p for p in (path, *path.parents) if p.is_symlink() and not p.exists()]
    files = [p for p in path.parents if p.is_file()]
    if broken:
        why = f"{broken[0]} is a link to {os.readlink(broken[0])}, which does not exist"
    elif files:
        why = f"{files[0]} is a file"
    elif path.is_dir():
        why = "a folder has that name; move it away or choose another name"
    named = f"{parameter}={path}" if parameter else str(path)
    return DeblurGANError(f"{named}: cannot write there ({why})", parameter)


def preprocess_image(image, inplace=False):
    """uint8 pixels (0..255), or floats in [0, 1], -> float32 in [-1, 1] (the networks' range);
    floats outside [0, 1] are refused (:func:`check_unit_floats`).

    Unlike the Sicara port, nothing is resized: the networks take any size divisible by 4.
    ``inplace=True`` reuses a float32 array's memory (for huge photos).
    """
    image = np.asarray(image)
    if inplace and image.dtype == np.float32:
        image *= 2.0
        image -= 1.0
        return image
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 127.5 - 1.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 32767.5 - 1.0
    image = np.asarray(image, dtype=np.float32)
    check_unit_floats(image, "image")  # 0-255 floats became [-1, 509] without a word
    return image * 2.0 - 1.0


def check_unit_floats(image, parameter):
    """Raises unless the float array ``image`` lies in [0, 1] (0.01 of round-off aside; NaN does
    not): one line naming ``parameter``, with the conversion that the range suggests."""
    low, high = (float(np.min(image)), float(np.max(image))) if image.size else (0.0, 0.0)
    if -0.01 <= low and high <= 1.01:  # NaN fails both comparisons
        return
    fix = "8-bit values divided by 255, 16-bit ones by 65535, or the uint8 or uint16 pixels themselves"
    if -1.01 <= low and high <= 1.01:
        fix = "(x + 1) / 2 of an array in [-1, 1], the networks' range (preprocess_image, load_images)"
    message = f"{parameter} holds values from {low:.4g} to {high:.4g}: give floats in [0, 1] ({fix})"
    raise DeblurGANError(message, parameter)


def deprocess_image(image):
    """Network output in [-1, 1] -> uint8 pixels, rounded to nearest and clipped."""
    image = np.asarray(image, dtype=np.float32)
    return np.round(np.clip(image * 127.5 + 127.5, 0.0, 255.0)).astype(np.uint8)


def to_unit_range(image, inplace=False):
    """Network output in [-1, 1] -> float32 in [0, 1] (for ``write_image`` and the metrics).

    ``inplace=True`` reuses a float32 array's memory (for huge photos).
    """
    if inplace and isinstance(image, np.ndarray) and image.dtype == np.float32:
        image += 1.0
        image *= 0.5
        return np.clip(image, 0.0, 1.0, out=image)
    return np.clip((np.asarray(image, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)
