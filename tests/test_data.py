"""Pairing, streaming crops and flips, odd image files, corrupt files and bad folders."""

import logging

import numpy as np
import pytest
from PIL import Image

from deblurgan.cli import flag_message
from deblurgan.datasets import PairedImageDataset
from deblurgan.errors import DeblurGANError
from deblurgan.io import image_size, list_images, preprocess_image, read_image
from deblurgan.pairing import pair_images
from deblurgan.utils import load_images

HEIGHT, WIDTH = 40, 48
OFFSET = 10  # A = B + OFFSET (uint8), so blurred - sharp is OFFSET / 127.5 wherever they line up


def sharp_pixels(number, height=HEIGHT, width=WIDTH):
    """Sharp image whose pixel says where it is: R = 4 * row, G = 4 * column, B = 100 + number."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([4 * rows, 4 * cols, np.full_like(rows, 100 + number)], axis=-1).astype(np.uint8)


def write_pairs(root, n_pairs=6, height=HEIGHT, width=WIDTH):
    for side in ("A", "B"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for number in range(n_pairs):
        sharp = sharp_pixels(number, height, width)
        Image.fromarray(sharp).save(root / "B" / f"{number:03d}.png")
        Image.fromarray(sharp + OFFSET).save(root / "A" / f"{number:03d}.png")
    return root


def to_uint8(batch):
    return np.round((batch + 1.0) * 127.5).astype(int)


def check_aligned_window(blurred, sharp, crop):
    """The two crops come from the same window and the same flip; returns whether it was flipped."""
    np.testing.assert_array_equal(to_uint8(blurred) - to_uint8(sharp), OFFSET)
    sharp = to_uint8(sharp)
    rows, cols = sharp[..., 0] // 4, sharp[..., 1] // 4
    assert np.all(np.diff(rows, axis=0) == 1) and np.all(np.diff(rows, axis=1) == 0)
    steps = np.unique(np.diff(cols, axis=1))
    assert steps.tolist() in ([1], [-1]), "columns must be contiguous, mirrored or not"
    assert rows.shape == (crop, crop)
    return steps[0] == -1


# -- pairing and bad folders ---------------------------------------------------------------------


def test_pair_images_matches_relative_names_sorted(tmp_path):
    write_pairs(tmp_path, n_pairs=3)
    (tmp_path / "A" / "sub").mkdir()
    (tmp_path / "B" / "sub").mkdir()
    Image.fromarray(sharp_pixels(9)).save(tmp_path / "A" / "sub" / "000.png")
    Image.fromarray(sharp_pixels(9)).save(tmp_path / "B" / "sub" / "000.png")
    pairs = pair_images(tmp_path)
    names = [(a.relative_to(tmp_path).as_posix(), b.relative_to(tmp_path).as_posix()) for a, b in pairs]
    assert names == [
        ("A/000.png", "B/000.png"),
        ("A/001.png", "B/001.png"),
        ("A/002.png", "B/002.png"),
        ("A/sub/000.png", "B/sub/000.png"),
    ]


def test_hidden_files_are_not_photos(tmp_path):
    """The temporary file a killed write leaves (``.name.abcd1234.tmp.png``), macOS's ``._`` files and
    hidden folders: they used to stop training with "no partner" and make deblur.py exit 1."""
    write_pairs(tmp_path, n_pairs=2)
    for stray in (".000.abcd1234.tmp.png", "._001.png", ".thumbs/000.png"):
        (tmp_path / "A" / stray).parent.mkdir(exist_ok=True)
        (tmp_path / "A" / stray).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path / "A")] == ["000.png", "001.png"]
    assert [a.name for a, _ in pair_images(tmp_path)] == ["000.png", "001.png"]


def test_pairing_ignores_extensions_and_refuses_ambiguous_names(tmp_path):
    write_pairs(tmp_path, n_pairs=2)
    (tmp_path / "A" / "001.png").rename(tmp_path / "A" / "001.PNG")
    Image.fromarray(sharp_pixels(1)).save(tmp_path / "B" / "001.png")
    Image.fromarray(sharp_pixels(5)).save(tmp_path / "B" / "005.jpg")
    with pytest.raises(DeblurGANError, match=r"1 images have no partner.*B/005\.jpg \(no A/ partner\)"):
        pair_images(tmp_path)
    pairs = pair_images(tmp_path, unmatched="warn")  # the lonely file is logged and left out
    assert [(a.name, b.name) for a, b in pairs] == [("000.png", "000.png"), ("001.PNG", "001.png")]
    Image.fromarray(sharp_pixels(0)).save(tmp_path / "A" / "000.jpg")
    with pytest.raises(DeblurGANError, match=r"A/000\.jpg and .*A/000\.png: two images with the same name"):
        pair_images(tmp_path)


def test_missing_folder_names_the_expected_layout(tmp_path):
    (tmp_path / "A").mkdir()
    with pytest.raises(DeblurGANError, match=r"missing B/ folder.*A \(blurred\).*B \(sharp\)"):
        pair_images(tmp_path)
    with pytest.raises(DeblurGANError, match="no such data folder"):
        pair_images(tmp_path / "nope")
    (tmp_path / "photo.png").write_bytes(b"")
    with pytest.raises(DeblurGANError, match="photo.png: a file, not a data folder; expected"):
        pair_images(tmp_path / "photo.png")


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    (tmp_path / "A" / "notes.txt").write_text("not an image")
    with pytest.raises(DeblurGANError, match=r"A: no images \(.png") as error:
        PairedImageDataset(tmp_path)
    assert "\n" not in str(error.value)


def test_unmatched_names_are_listed_with_count(tmp_path):
    write_pairs(tmp_path, n_pairs=8)
    for number in range(7):
        (tmp_path / "B" / f"{number:03d}.png").rename(tmp_path / "B" / f"x{number:03d}.png")
    with pytest.raises(DeblurGANError) as error:
        pair_images(tmp_path)
    message = str(error.value)
    assert "14 images have no partner (names must match, extension aside)" in message
    assert "A/000.png (no B/ partner)" in message and "and 9 more" in message
    assert "A (blurred)" in message and "\n" not in message


def test_fewer_pairs_than_batch_size(tmp_path):
    write_pairs(tmp_path, n_pairs=2)
    with pytest.raises(DeblurGANError, match="fewer than batch_size=3"):
        PairedImageDataset(tmp_path, batch_size=3, crop_size=16)
    with pytest.raises(DeblurGANError, match="seed=-1: use a whole number from 0 to 4294967295"):
        PairedImageDataset(tmp_path, batch_size=1, crop_size=16, seed=-1)


def test_image_smaller_than_crop_names_file_and_fixes(tmp_path):
    write_pairs(tmp_path, n_pairs=2)
    too_small = r"000\.png is 48x40, smaller than crop_size=64; use crop_size=40 or less, resize=N"
    with pytest.raises(DeblurGANError, match=too_small) as error:
        PairedImageDataset(tmp_path, crop_size=64)
    assert flag_message(error.value).endswith(
        "smaller than --crop_size 64; use --crop_size 40 or less, --resize N to scale whole images, or "
        "remove the image"
    )
    # Without the up-front header scan the same error comes when the batch is read.
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=64, check_sizes=False)
    with pytest.raises(DeblurGANError, match="smaller than crop_size=64"):
        ds[0]
    with pytest.raises(DeblurGANError, match="smaller than crop_size=64"):
        next(ds.prefetch_iter(epoch=0))  # raised in a worker thread, re-raised here


def test_blurred_and_sharp_of_different_sizes(tmp_path):
    write_pairs(tmp_path, n_pairs=2)
    Image.fromarray(sharp_pixels(1, 40, 40)).save(tmp_path / "B" / "001.png")
    with pytest.raises(DeblurGANError, match=r"A/001\.png is 48x40 but .*B/001\.png is 40x40"):
        PairedImageDataset(tmp_path, crop_size=16)
    with pytest.raises(DeblurGANError, match=r"A/001\.png is 48x40 but .*B/001\.png is 40x40"):
        load_images(tmp_path, size=None)
    with pytest.raises(DeblurGANError, match=r"A/001\.png is 48x40 but .*B/001\.png is 40x40"):
        load_images(tmp_path)  # resizing both to 256x256 must not hide the mismatch


def test_full_images_need_equal_sizes_to_batch(tmp_path):
    write_pairs(tmp_path, n_pairs=2)
    Image.fromarray(sharp_pixels(1, 32, 32)).save(tmp_path / "B" / "001.png")
    Image.fromarray(sharp_pixels(1, 32, 32) + OFFSET).save(tmp_path / "A" / "001.png")
    with pytest.raises(DeblurGANError, match="batch_size=1"):
        PairedImageDataset(tmp_path, batch_size=2, crop_size=None, shuffle=False)
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=None, flip=False, shuffle=False)
    assert ds[0][0].shape == (1, HEIGHT, WIDTH, 3) and ds[1][0].shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(to_uint8(ds[1][1][0]), sharp_pixels(1, 32, 32))


# -- crops, flips, determinism -------------------------------------------------------------------


def test_batches_have_shape_range_and_drop_remainder(tmp_path):
    write_pairs(tmp_path, n_pairs=7)
    ds = PairedImageDataset(tmp_path, batch_size=3, crop_size=16)
    assert len(ds) == 2
    blurred, sharp = ds[1]
    assert blurred.shape == sharp.shape == (3, 16, 16, 3)
    assert blurred.dtype == sharp.dtype == np.float32
    assert -1.0 <= sharp.min() and blurred.max() <= 1.0
    with pytest.raises(IndexError):
        ds[2]


def test_same_crop_and_flip_on_both_images(tmp_path):
    write_pairs(tmp_path, n_pairs=8)
    ds = PairedImageDataset(tmp_path, batch_size=4, crop_size=16, seed=5)
    flips, tops = [], set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            blurred, sharp = ds[index]
            for b, s in zip(blurred, sharp, strict=True):
                flips.append(check_aligned_window(b, s, 16))
                tops.add(int(to_uint8(s)[0, 0, 0]) // 4)
    assert any(flips) and not all(flips), "flips must happen about half the time"
    assert len(tops) > 3, "crop windows must vary"


def test_no_flip_keeps_orientation_and_shuffle_covers_every_pair(tmp_path):
    write_pairs(tmp_path, n_pairs=6)
    ds = PairedImageDataset(tmp_path, batch_size=2, crop_size=16, flip=False)
    seen = []
    for index in range(len(ds)):
        blurred, sharp = ds[index]
        for b, s in zip(blurred, sharp, strict=True):
            assert not check_aligned_window(b, s, 16)
            seen.append(int(to_uint8(s)[0, 0, 2]) - 100)
    assert sorted(seen) == list(range(6)) and seen != list(range(6))
    ordered = PairedImageDataset(tmp_path, batch_size=2, crop_size=16, shuffle=False)
    numbers = [int(to_uint8(ordered[i][1])[j, 0, 0, 2]) - 100 for i in range(3) for j in range(2)]
    assert numbers == list(range(6))


def test_batches_are_a_function_of_seed_epoch_and_index(tmp_path):
    write_pairs(tmp_path, n_pairs=6)
    first = PairedImageDataset(tmp_path, batch_size=2, crop_size=16, seed=3)
    second = PairedImageDataset(tmp_path, batch_size=2, crop_size=16, seed=3)
    other_seed = PairedImageDataset(tmp_path, batch_size=2, crop_size=16, seed=4)
    first.set_epoch(2)
    second.set_epoch(0)
    second[1]  # reading other batches first changes nothing
    second.set_epoch(2)
    for index in reversed(range(len(first))):
        np.testing.assert_array_equal(first[index][0], second[index][0])
        np.testing.assert_array_equal(first[index][1], second[index][1])
    epoch_2 = np.concatenate([first.get_batch(i, 2)[1] for i in range(3)])
    epoch_3 = np.concatenate([first.get_batch(i, 3)[1] for i in range(3)])
    other = np.concatenate([other_seed.get_batch(i, 2)[1] for i in range(3)])
    assert not np.array_equal(epoch_2, epoch_3)
    assert not np.array_equal(epoch_2, other)


def test_resize_scales_both_images_whole(tmp_path):
    write_pairs(tmp_path, n_pairs=2)
    ds = PairedImageDataset(tmp_path, batch_size=2, crop_size=16, resize=(20, 24), flip=False, shuffle=False)
    blurred, sharp = ds[0]
    assert blurred.shape == (2, 20, 24, 3)
    # Bicubic resizing is linear, so the constant offset survives; the corners keep the ramps' ends.
    np.testing.assert_allclose(blurred - sharp, OFFSET / 127.5, atol=2e-3)
    assert to_uint8(sharp)[0, 0, 0, 0] < 8 and to_uint8(sharp)[0, -1, -1, 1] > 4 * (WIDTH - 4)
    square = PairedImageDataset(tmp_path, batch_size=1, crop_size=None, resize=12)
    assert square[0][0].shape == (1, 12, 12, 3)


def test_n_images_keeps_the_first_pairs(tmp_path):
    write_pairs(tmp_path, n_pairs=6)
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=16, n_images=2, shuffle=False)
    assert len(ds) == 2 and [p[0].name for p in ds.pairs] == ["000.png", "001.png"]


# -- odd files ------------------------------------------------------------------------------------


def full_image_dataset(root, write):
    for side in ("A", "B"):
        (root / side).mkdir()
        write(root / side)
    return PairedImageDataset(root, batch_size=1, crop_size=None, flip=False, shuffle=False)


def test_grayscale_rgba_and_16_bit_decode_to_rgb(tmp_path):
    gray = np.arange(HEIGHT * WIDTH, dtype=np.uint8).reshape(HEIGHT, WIDTH)
    rgba = np.dstack([sharp_pixels(0), np.full((HEIGHT, WIDTH), 7, np.uint8)])
    deep = np.arange(HEIGHT * WIDTH, dtype=np.uint16).reshape(HEIGHT, WIDTH) * 31

    def write(folder):
        Image.fromarray(gray, mode="L").save(folder / "gray.png")
        Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
        image = Image.fromarray(deep)
        assert image.mode == "I;16"
        image.save(folder / "deep.png")

    ds = full_image_dataset(tmp_path, write)  # sorted: deep, gray, rgba
    deep_batch, gray_batch, rgba_batch = (ds[i][0][0] for i in range(3))
    np.testing.assert_allclose(deep_batch, np.repeat(deep[..., None] / 65535.0 * 2 - 1, 3, -1), atol=1e-6)
    np.testing.assert_allclose(gray_batch, np.repeat(gray[..., None] / 127.5 - 1, 3, -1), atol=1e-6)
    np.testing.assert_allclose(rgba_batch, sharp_pixels(0) / 127.5 - 1, atol=1e-6)


def test_exif_rotated_jpeg_is_shown_upright(tmp_path):
    stored = np.zeros((32, 48, 3), np.uint8)
    stored[:16] = (250, 10, 10)  # top half red, bottom half blue, as stored in the file
    stored[16:] = (10, 10, 250)

    def write(folder):
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
        Image.fromarray(stored).save(folder / "rotated.jpg", exif=exif, quality=95)

    ds = full_image_dataset(tmp_path, write)
    assert image_size(ds.pairs[0][0]) == (48, 32)
    shown = to_uint8(ds[0][1][0])
    expected = np.rot90(stored, k=-1)  # clockwise: the stored top ends up on the right
    assert shown.shape == expected.shape == (48, 32, 3)
    away_from_edge = np.r_[0:12, 20:32]  # JPEG rings at the red/blue boundary (display columns 16)
    assert np.abs(shown - expected.astype(int))[:, away_from_edge].max() < 12
    assert shown[:, 20:, 0].min() > 200 and shown[:, :12, 2].min() > 200


# -- corrupt files --------------------------------------------------------------------------------


def corrupt_dataset(root, **kwargs):
    write_pairs(root, n_pairs=5)
    truncated = root / "A" / "002.png"
    content = truncated.read_bytes()
    truncated.write_bytes(content[: len(content) // 2])  # header intact, pixels missing
    (root / "B" / "004.png").write_bytes(b"this is not a png")
    options = dict(batch_size=1, crop_size=16, shuffle=False, seed=1)
    options.update(kwargs)
    return PairedImageDataset(root, **options)


def test_corrupt_files_are_skipped_counted_and_substituted(tmp_path, caplog):
    ds = corrupt_dataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="deblurgan.datasets"):
        batches = [ds[i] for i in range(len(ds))]
    assert ds.n_skipped == 2
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "A/002.png" in warned and "B/004.png" in warned
    numbers = [int(to_uint8(sharp)[0, 0, 0, 2]) - 100 for _, sharp in batches]
    assert numbers[:2] == [0, 1] and numbers[3] == 3
    assert numbers[2] in (0, 1, 3) and numbers[4] in (0, 1, 3)
    for blurred, sharp in batches:
        check_aligned_window(blurred[0], sharp[0], 16)
    # Once known, bad files are not retried (no second warning) and the result does not change.
    caplog.clear()
    again = ds[2]
    assert ds.n_skipped == 2 and not caplog.records
    np.testing.assert_array_equal(again[1], batches[2][1])
    # A fresh dataset that meets the corrupt file first substitutes exactly the same pair and crop.
    fresh = corrupt_dataset(tmp_path / "fresh")
    np.testing.assert_array_equal(fresh[4][1], batches[4][1])


def test_all_files_corrupt_is_a_clear_error(tmp_path):
    for side in ("A", "B"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "x.png").write_bytes(b"garbage")
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=16)
    with pytest.raises(DeblurGANError, match="nothing readable left"):
        ds[0]


# -- prefetching ---------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_prefetch_iter_yields_the_same_batches_in_order(tmp_path, workers):
    ds = corrupt_dataset(tmp_path, batch_size=2, shuffle=True, workers=workers, max_queue_size=2)
    expected = [ds.get_batch(i, 7) for i in range(len(ds))]
    got = list(ds.prefetch_iter(epoch=7))
    assert ds.epoch == 7 and len(got) == len(expected) == 2
    for (blurred, sharp), (want_blurred, want_sharp) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(blurred, want_blurred)
        np.testing.assert_array_equal(sharp, want_sharp)
    resumed = list(ds.prefetch_iter(epoch=7, start=1))
    assert len(resumed) == 1
    np.testing.assert_array_equal(resumed[0][1], expected[1][1])


def test_prefetch_iter_can_stop_early(tmp_path):
    write_pairs(tmp_path, n_pairs=8)
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=16, workers=2, max_queue_size=4)
    iterator = ds.prefetch_iter(epoch=0)
    first = next(iterator)
    iterator.close()  # shuts the thread pool down instead of leaving it decoding
    np.testing.assert_array_equal(first[0], ds[0][0])


# -- Sicara-compatible load_images ---------------------------------------------------------------


def test_load_images_returns_sicara_dict(tmp_path):
    write_pairs(tmp_path, n_pairs=4)
    data = load_images(tmp_path, n_images=3)
    assert set(data) == {"A", "A_paths", "B", "B_paths"}
    assert data["A"].shape == data["B"].shape == (3, 256, 256, 3)
    assert data["A"].dtype == np.float32 and -1 <= data["B"].min() and data["A"].max() <= 1
    assert [p.split("/")[-2:] for p in data["B_paths"]] == [["B", f"00{i}.png"] for i in range(3)]
    # The Sicara port resized the 8-bit image with Pillow's default (bicubic) filter.
    with Image.open(data["B_paths"][1]) as image:
        sicara = np.asarray(image.resize((256, 256), Image.Resampling.BICUBIC)) / 127.5 - 1
    np.testing.assert_allclose(data["B"][1], sicara, atol=1.01 / 127.5)
    native = load_images(tmp_path, n_images=-1, size=None)
    assert native["A"].shape == (4, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(to_uint8(native["B"][2]), sharp_pixels(2))
    np.testing.assert_array_equal(to_uint8(native["A"][2]), sharp_pixels(2) + OFFSET)
    assert load_images(tmp_path, size=16)["A"].shape == (4, 16, 16, 3)


def test_load_images_native_size_needs_equal_sizes(tmp_path):
    write_pairs(tmp_path, n_pairs=2)
    write_pairs(tmp_path / "small", n_pairs=1, height=24, width=24)
    for side in ("A", "B"):
        (tmp_path / "small" / side / "000.png").rename(tmp_path / side / "009.png")
    with pytest.raises(DeblurGANError, match="size=None needs equal sizes"):
        load_images(tmp_path, size=None)


def test_the_sicara_scripts_imports_from_deblurgan_utils_work(tmp_path):
    """Sicara's deblur_image.py and test.py import these names; some were missing (ImportError)."""
    from deblurgan.utils import deprocess_image, list_image_files, load_image, save_image

    pixels = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "b.png")
    Image.fromarray(pixels).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "sub").mkdir()
    Image.fromarray(pixels).save(tmp_path / "sub" / "c.png")  # Sicara listed the folder itself only
    assert list_image_files(tmp_path) == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    x = preprocess_image(load_image(tmp_path / "b.png"))
    np.testing.assert_allclose(x, pixels / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(deprocess_image(x), pixels)
    save_image(x, tmp_path / "out.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)


def test_preprocess_image_refuses_floats_outside_0_1_and_load_images_no_pairs(tmp_path):
    """np.asarray(photo, float) (0-255) became [-1, 509] in silence; load_images(path, 0) said
    "check the warnings above" with no warning above."""
    photo = np.random.default_rng(0).uniform(0, 1, (4, 4, 3))
    with pytest.raises(DeblurGANError, match=r"image holds values from .* to .*: give floats in \[0, 1\]"):
        preprocess_image(photo * 255)
    np.testing.assert_allclose(
        preprocess_image(photo * 1.004 - 0.002), (photo * 1.004 - 0.002) * 2 - 1, atol=1e-6
    )
    write_pairs(tmp_path, n_pairs=2)
    with pytest.raises(DeblurGANError, match="n_images=0: load at least 1 pair") as error:
        load_images(tmp_path, n_images=0)
    assert error.value.parameter == "n_images"


def find_windows(full, crop):
    """Every (top, left) where ``crop`` equals a window of ``full`` (brute force, tiny images)."""
    size = crop.shape[0]
    return [
        (top, left)
        for top in range(full.shape[0] - size + 1)
        for left in range(full.shape[1] - size + 1)
        if np.allclose(full[top : top + size, left : left + size], crop, atol=1e-6)
    ]


def test_crops_of_odd_files_match_read_image(tmp_path):
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    deep = (rows * 1000 + cols * 10).astype(np.uint16)
    rgba = np.dstack([sharp_pixels(0), (rows * 5).astype(np.uint8)])
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 degrees counter-clockwise to display"

    def write(folder):
        Image.fromarray(deep).save(folder / "deep.png")
        Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
        Image.fromarray(sharp_pixels(1)).convert("P", palette=Image.ADAPTIVE).save(folder / "palette.png")
        Image.fromarray(sharp_pixels(2)).save(folder / "rotated.png", exif=exif)

    for side in ("A", "B"):
        (tmp_path / side).mkdir()
        write(tmp_path / side)
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=16, flip=False, shuffle=False)
    assert [p[1].name for p in ds.pairs] == ["deep.png", "palette.png", "rgba.png", "rotated.png"]
    for epoch in range(2):
        for index, (_, sharp_path) in enumerate(ds.pairs):
            full = preprocess_image(read_image(sharp_path).pixels)
            crop = ds.get_batch(index, epoch)[1][0]
            assert len(find_windows(full, crop)) == 1, sharp_path.name
    assert read_image(ds.pairs[3][1]).pixels.shape == (WIDTH, HEIGHT, 3)
    assert image_size(ds.pairs[3][1]) == (WIDTH, HEIGHT) and image_size(ds.pairs[0][1]) == (HEIGHT, WIDTH)


@pytest.mark.slow
def test_bench_data_measures_a_rate(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_data.py"
    spec = importlib.util.spec_from_file_location("bench_data", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.write_photo_like_pairs(tmp_path, n_images=3, height=48, width=64)
    assert len(pair_images(tmp_path)) == 3
    for prefetch in (True, False):
        assert bench.measure_loader(tmp_path, crop_size=32, workers=2, prefetch=prefetch) > 0


def test_16bit_rgb_training_pairs_keep_their_16_bits(tmp_path):
    from deblurgan.io import write_image

    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    samples = np.stack([rows * 1000 + cols, cols * 1000 + rows, rows * cols + 7], axis=-1).astype(np.uint16)
    for side in ("A", "B"):
        write_image(tmp_path / side / "deep.png", samples / 65535.0, bit_depth=16)
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=16, flip=False)
    sharp = ds.get_batch(0, 0)[1][0]
    values = np.round((sharp.astype(np.float64) + 1.0) / 2.0 * 65535.0)
    top, left = int(values[0, 0, 0]) // 1000, int(values[0, 0, 1]) // 1000  # the values say where
    np.testing.assert_array_equal(values, samples[top : top + 16, left : left + 16])
    assert np.any(values % 257 != 0), "8-bit decoding would give only multiples of 257"


def test_pairs_over_max_image_pixels_are_skipped_with_a_warning(tmp_path, caplog):
    write_pairs(tmp_path, n_pairs=2)
    write_pairs(tmp_path / "big", n_pairs=1, height=64, width=64)
    for side in ("A", "B"):
        (tmp_path / "big" / side / "000.png").rename(tmp_path / side / "big.png")
    limit = HEIGHT * WIDTH
    ds = PairedImageDataset(tmp_path, batch_size=1, crop_size=16, shuffle=False, max_image_pixels=limit)
    with caplog.at_level(logging.WARNING, logger="deblurgan.datasets"):
        batches = [ds.get_batch(i, 0) for i in range(len(ds))]
    assert ds.n_skipped == 1 and "big.png: 64x64 pixels, over max_image_pixels=1,920" in caplog.text
    assert "skipping " in caplog.text and "corrupt" not in caplog.text  # it may be a fine, large photo
    for blurred, sharp in batches:
        check_aligned_window(blurred[0], sharp[0], 16)


def test_pillows_own_warning_does_not_repeat_the_one_line(tmp_path, monkeypatch):
    """Between Pillow's limit and twice it, Pillow warns (two lines on stderr) before the check."""
    import warnings

    write_pairs(tmp_path, n_pairs=1)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", HEIGHT * WIDTH - 1)  # as a lower limit leaves it
    with warnings.catch_warnings(record=True) as shown:
        with pytest.raises(DeblurGANError, match="over max_image_pixels"):
            read_image(tmp_path / "A" / "000.png", max_pixels=HEIGHT * WIDTH - 1)
    assert [w for w in shown if issubclass(w.category, Image.DecompressionBombWarning)] == []
