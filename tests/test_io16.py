"""16-bit RGB(A) images, which Pillow alone reads and writes as 8-bit."""

import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from deblurgan.errors import DeblurGANError
from deblurgan.io import read_image, write_image


def _paeth(left, up, upleft):
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    return np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))


def _png16(samples, filter_type, orientation=None):
    """A reference encoder independent of deblurgan.io: any PNG row filter, optional eXIf."""
    height, width, depth = samples.shape
    rows = samples.astype(">u2").reshape(height, -1).view(np.uint8).astype(np.int32)
    bpp = 2 * depth
    lines = []
    for y in range(height):
        raw = rows[y]
        prior = rows[y - 1] if y else np.zeros_like(raw)
        left = np.concatenate([np.zeros(bpp, np.int32), raw[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prior[:-bpp]])
        predictor = {0: 0, 1: left, 2: prior, 3: (left + prior) // 2, 4: _paeth(left, prior, upleft)}
        lines.append(bytes([filter_type]) + ((raw - predictor[filter_type]) % 256).astype(np.uint8).tobytes())

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    out = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2 if depth == 3 else 6, 0, 0, 0)
    )
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = exif.tobytes()
        out += chunk(b"eXIf", data[6:] if data.startswith(b"Exif\x00\x00") else data)
    return out + chunk(b"IDAT", zlib.compress(b"".join(lines))) + chunk(b"IEND", b"")


def _samples(height, width, depth, seed=0):
    return np.random.default_rng(seed).integers(0, 65536, (height, width, depth)).astype(np.uint16)


@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("depth", [3, 4])
def test_16bit_png_is_read_exactly_whatever_the_row_filter(tmp_path, filter_type, depth):
    samples = _samples(9, 13, depth, seed=filter_type)
    (tmp_path / "x.png").write_bytes(_png16(samples, filter_type))
    photo = read_image(tmp_path / "x.png")
    assert photo.bit_depth == 16 and not photo.grayscale
    np.testing.assert_array_equal(np.round(photo.pixels * 65535), samples[..., :3])
    if depth == 4:
        np.testing.assert_array_equal(np.round(photo.alpha * 65535), samples[..., 3])
    else:
        assert photo.alpha is None


def test_16bit_png_round_trips_through_write_image(tmp_path):
    samples = _samples(11, 7, 4, seed=5)
    write_image(tmp_path / "y.png", samples[..., :3] / 65535.0, alpha=samples[..., 3] / 65535.0, bit_depth=16)
    photo = read_image(tmp_path / "y.png")
    np.testing.assert_array_equal(np.round(photo.pixels * 65535), samples[..., :3])
    np.testing.assert_array_equal(np.round(photo.alpha * 65535), samples[..., 3])
    with Image.open(tmp_path / "y.png") as image:  # a valid PNG for other readers too
        assert image.size == (7, 11) and image.mode == "RGBA"


def test_16bit_png_exif_orientation(tmp_path):
    samples = _samples(5, 8, 3)
    (tmp_path / "r.png").write_bytes(_png16(samples, 4, orientation=6))
    photo = read_image(tmp_path / "r.png")
    # Orientation 6: rotate 90 degrees clockwise to display, as Pillow's exif_transpose does.
    expected = np.asarray(Image.fromarray(samples[..., 0]).transpose(Image.Transpose.ROTATE_270))
    assert photo.pixels.shape == (8, 5, 3)
    np.testing.assert_array_equal(np.round(photo.pixels[..., 0] * 65535), expected)


def test_16bit_uncompressed_tiff_is_read_exactly(tmp_path):
    samples = _samples(6, 10, 3, seed=2)
    tifffile.imwrite(tmp_path / "t.tif", samples, photometric="rgb")
    photo = read_image(tmp_path / "t.tif")
    assert photo.bit_depth == 16
    np.testing.assert_array_equal(np.round(photo.pixels * 65535), samples)


def test_8bit_files_are_unchanged(tmp_path):
    rgb = _samples(6, 10, 3).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "e.png")
    photo = read_image(tmp_path / "e.png")
    assert photo.bit_depth == 8
    np.testing.assert_array_equal(np.round(photo.pixels * 255), rgb)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_crop_box_is_a_window_of_the_upright_image(tmp_path, orientation):
    from PIL import ImageOps

    stored = np.random.default_rng(orientation).integers(0, 256, (10, 14, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as image:  # Pillow's own orientation as the reference
        upright = np.asarray(ImageOps.exif_transpose(image)) / 255.0
    np.testing.assert_array_equal(read_image(tmp_path / "o.png").pixels, upright.astype(np.float32))
    box = (2, 3, 7, 9)  # left, top, right, bottom, inside both orientations' shapes
    crop = read_image(tmp_path / "o.png", box=box).pixels
    np.testing.assert_array_equal(crop, upright[3:9, 2:7].astype(np.float32))
    (tmp_path / "d.png").write_bytes(_png16(_samples(10, 14, 3), 1, orientation=orientation))
    np.testing.assert_array_equal(
        read_image(tmp_path / "d.png", box=box).pixels, read_image(tmp_path / "d.png").pixels[3:9, 2:7]
    )


def test_images_over_max_pixels_are_refused_before_decoding(tmp_path):
    from deblurgan.errors import DeblurGANError

    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    with pytest.raises(DeblurGANError, match=r"big\.png: 40x30 pixels, over max_image_pixels=1,000") as error:
        read_image(tmp_path / "big.png", max_pixels=1000)
    assert error.value.parameter == "max_image_pixels"
    assert read_image(tmp_path / "big.png", max_pixels=1200).pixels.shape == (30, 40, 3)


def test_a_float_image_is_read_only_in_0_to_1(tmp_path):
    """A 0-255 float TIFF was clipped to [0, 1]: an all-white photo, deblurred without a word."""
    values = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "unit.tif")
    np.testing.assert_allclose(read_image(tmp_path / "unit.tif").pixels[..., 0], values)
    Image.fromarray(values * 255, mode="F").save(tmp_path / "bytes.tif")
    expected = r"bytes.tif: not a readable image \(floating-point pixels from 0 to 255, where 0 to 1"
    with pytest.raises(DeblurGANError, match=expected):
        read_image(tmp_path / "bytes.tif")


def test_a_multi_page_image_says_that_only_its_first_page_is_read(tmp_path, caplog):
    pages = [Image.new("RGB", (8, 6), color) for color in ("red", "green", "blue")]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    with caplog.at_level("WARNING", logger="deblurgan.io"):
        pixels = read_image(tmp_path / "pages.tif").pixels
    assert np.array_equal(pixels[0, 0], [1.0, 0.0, 0.0])  # red, the first page
    assert [r.getMessage() for r in caplog.records if r.name == "deblurgan.io"] == [
        f"{tmp_path / 'pages.tif'}: 3 frames (pages); only the first is read"
    ]
