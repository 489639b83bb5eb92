"""SharpPhotoDataset: pairs blurred on the fly from sharp photos, a pure function of (seed, epoch, index)."""

import logging

import numpy as np
import pytest
from PIL import Image

from deblurgan import blur, blur_dataset, datasets, sample_data
from deblurgan.datasets import SharpPhotoDataset
from deblurgan.errors import DeblurGANError
from deblurgan.io import preprocess_image, read_image

CROP = 24


def write_photos(folder, n_photos=3, height=56, width=72):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for number in range(n_photos):
        coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        photo = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        photo.save(folder / f"photo{number}.png")
    return folder


def batch_pair(ds, index, epoch):
    return np.concatenate(ds.get_batch(index, epoch))


def test_batches_are_a_pure_function_of_seed_epoch_and_index(tmp_path):
    write_photos(tmp_path)
    first = SharpPhotoDataset(tmp_path, batch_size=2, crop_size=CROP, samples_per_photo=2, seed=3)
    second = SharpPhotoDataset(tmp_path, batch_size=2, crop_size=CROP, samples_per_photo=2, seed=3, workers=2)
    assert len(first) == 3  # 3 photos x 2 samples / batch of 2
    second.get_batch(2, 0)  # reading (and caching) other batches first changes nothing
    streamed = list(second.prefetch_iter(epoch=1))
    for index in reversed(range(len(first))):
        np.testing.assert_array_equal(batch_pair(first, index, 1), np.concatenate(streamed[index]))
    resumed = list(second.prefetch_iter(epoch=1, start=2))
    np.testing.assert_array_equal(np.concatenate(resumed[0]), np.concatenate(streamed[2]))
    other_seed = SharpPhotoDataset(tmp_path, batch_size=2, crop_size=CROP, samples_per_photo=2, seed=4)
    assert not np.array_equal(batch_pair(first, 0, 1), batch_pair(first, 1, 1))
    assert not np.array_equal(batch_pair(first, 0, 1), batch_pair(first, 0, 2))
    assert not np.array_equal(batch_pair(first, 0, 1), batch_pair(other_seed, 0, 1))
    blurred, sharp = first.get_batch(0, 1)
    assert blurred.shape == sharp.shape == (2, CROP, CROP, 3) and blurred.dtype == np.float32
    assert -1 <= blurred.min() and blurred.max() <= 1


def find_window(full, crop):
    size = crop.shape[0]
    hits = [
        (top, left)
        for top in range(full.shape[0] - size + 1)
        for left in range(full.shape[1] - size + 1)
        if np.array_equal(full[top : top + size, left : left + size], crop)
    ]
    assert len(hits) == 1
    return hits[0]


def test_blurred_is_the_blur_of_the_sharp_crop(tmp_path):
    write_photos(tmp_path, n_photos=1)
    ds = SharpPhotoDataset(
        tmp_path, batch_size=1, crop_size=CROP, flip=False, noise_sigma=(0, 0), jpeg_quality=None
    )
    photo = read_image(tmp_path / "photo0.png").pixels
    for index in range(len(ds)):
        blurred, sharp = ds.get_batch(index, 5)
        # The kernel is the first draw of the sample's generator; blur the whole photo with it.
        kernel, _ = blur.random_kernel(np.random.default_rng(ds.sample_seed(5, index, 0)))
        top, left = find_window(preprocess_image(photo), sharp[0])
        expected = blur.blur_image(photo, kernel)[top : top + CROP, left : left + CROP]
        np.testing.assert_allclose(blurred[0], preprocess_image(expected), atol=1e-5)


def test_samples_match_blur_crop_with_flips_and_turns(tmp_path):
    write_photos(tmp_path, n_photos=2)
    ds = SharpPhotoDataset(tmp_path, batch_size=2, crop_size=CROP, samples_per_photo=4, seed=9)
    order = ds._order(2)
    seen_turns = set()
    for index in range(len(ds)):
        blurred, sharp = ds.get_batch(index, 2)
        for slot in range(2):
            photo = read_image(ds.photos[order[index * 2 + slot]]).pixels
            rng = np.random.default_rng(ds.sample_seed(2, index, slot))
            want_sharp, want_blurred, _ = blur_dataset.blur_crop(photo, rng, ds.blur_options)
            turns, mirror = int(rng.integers(4)), rng.random() < 0.5
            seen_turns.add(turns)
            for got, want in ((sharp[slot], want_sharp), (blurred[slot], want_blurred)):
                want = np.rot90(want, turns)
                np.testing.assert_array_equal(got, preprocess_image(want[:, ::-1] if mirror else want))
    assert len(seen_turns) > 1


def test_each_photo_is_decoded_once(tmp_path, monkeypatch):
    write_photos(tmp_path, n_photos=3)
    calls = []
    real_read = datasets.read_image

    def counting_read(path, **kwargs):
        calls.append(path)
        return real_read(path, **kwargs)

    monkeypatch.setattr(datasets, "read_image", counting_read)
    ds = SharpPhotoDataset(tmp_path, batch_size=2, crop_size=CROP, samples_per_photo=4, workers=2)
    for epoch in range(2):
        list(ds.prefetch_iter(epoch))
    assert sorted(p.name for p in calls) == ["photo0.png", "photo1.png", "photo2.png"]


def test_no_photo_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    with pytest.raises(DeblurGANError, match="no images") as error:
        SharpPhotoDataset(tmp_path)
    assert "\n" not in str(error.value) and error.value.parameter == "sharp_dir"
    with pytest.raises(DeblurGANError, match="no such folder"):
        SharpPhotoDataset(tmp_path / "missing")


def test_a_folder_holding_a_paired_dataset_is_refused_as_sharp_photos(tmp_path):
    """fetch_photos.py's output holds train/ (sharp) beside val/A (blurred) and val/B: the whole
    folder would train on blurred images as if sharp, and on the validation split."""
    write_photos(tmp_path / "photos" / "train")
    for side in ("A", "B"):
        write_photos(tmp_path / "photos" / "val" / side, n_photos=1)
    expected = r"sharp_dir=.*photos: holds or lies in the paired dataset .*val \(A/ blurred, B/ sharp\)"
    with pytest.raises(DeblurGANError, match=expected):
        SharpPhotoDataset(tmp_path / "photos", crop_size=CROP)
    with pytest.raises(DeblurGANError, match="input_dir=.*photos: holds or lies in the paired dataset"):
        blur_dataset.make_blur_dataset(tmp_path / "photos", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    # the A/ folder itself, or a folder inside it (accepted before)
    write_photos(tmp_path / "photos" / "val" / "A" / "sub", n_photos=1)
    for folder in ("val/A", "val/A/sub"):
        with pytest.raises(DeblurGANError, match=f"sharp_dir=.*{folder}: holds or lies in the paired"):
            SharpPhotoDataset(tmp_path / "photos" / folder, crop_size=CROP, batch_size=1)
    assert len(SharpPhotoDataset(tmp_path / "photos" / "train", crop_size=CROP, batch_size=1).photos) == 3
    # a folder named A without a B beside it is just a folder of photos
    write_photos(tmp_path / "mine" / "A")
    assert len(SharpPhotoDataset(tmp_path / "mine", crop_size=CROP, batch_size=1).photos) == 3


def test_small_and_huge_photos_are_skipped_with_a_count(tmp_path, caplog):
    write_photos(tmp_path, n_photos=2)
    write_photos(tmp_path / "small", n_photos=2, height=16, width=40)
    Image.new("RGB", (200, 100)).save(tmp_path / "huge.png")
    with caplog.at_level(logging.WARNING, logger="deblurgan.datasets"):
        ds = SharpPhotoDataset(tmp_path, crop_size=CROP, max_image_pixels=10_000)
    assert [p.name for p in ds.photos] == ["photo0.png", "photo1.png"]
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "skipped 2 photos smaller than the 24 px crop" in warned
    assert "skipped 1 photos over max_image_pixels=10000" in warned
    with pytest.raises(DeblurGANError, match="none of the 2 photos is at least crop_size=24") as error:
        SharpPhotoDataset(tmp_path / "small", crop_size=CROP)
    assert error.value.parameter == "crop_size"
    # max_side shrinks photos before cropping, so it can make them too small.
    with pytest.raises(DeblurGANError, match="after max_side"):
        SharpPhotoDataset(tmp_path, crop_size=CROP, max_side=30)  # 72x56 -> 30x23


def test_corrupt_photo_is_skipped_with_a_warning_and_substituted(tmp_path, caplog):
    write_photos(tmp_path, n_photos=3)
    content = (tmp_path / "photo1.png").read_bytes()
    (tmp_path / "photo1.png").write_bytes(content[: len(content) // 2])
    ds = SharpPhotoDataset(tmp_path, batch_size=3, crop_size=CROP, samples_per_photo=2)
    with caplog.at_level(logging.WARNING, logger="deblurgan.datasets"):
        batches = [ds.get_batch(i, 0) for i in range(len(ds))]
    assert ds.n_skipped == 1 and "photo1.png" in caplog.text
    assert all(np.isfinite(b).all() for batch in batches for b in batch)
    fresh = SharpPhotoDataset(tmp_path, batch_size=3, crop_size=CROP, samples_per_photo=2)
    np.testing.assert_array_equal(batch_pair(fresh, 1, 0), np.concatenate(batches[1]))


def test_the_sample_preset_blurs_as_the_sample_set_without_noise(tmp_path):
    write_photos(tmp_path, n_photos=1)
    ds = SharpPhotoDataset(
        tmp_path, batch_size=1, crop_size=CROP, samples_per_photo=6, flip=False, blur="sample"
    )
    photo = read_image(tmp_path / "photo0.png").pixels
    for index in range(len(ds)):
        blurred, sharp = ds.get_batch(index, 1)
        rng = np.random.default_rng(ds.sample_seed(1, index, 0))
        kernel, _ = blur.random_kernel(rng, **sample_data.SAMPLE_BLUR)
        top, left = find_window(preprocess_image(photo), sharp[0])
        expected = blur.blur_image(photo, kernel)[top : top + CROP, left : left + CROP]
        np.testing.assert_allclose(blurred[0], preprocess_image(expected), atol=1e-5)
    default = SharpPhotoDataset(tmp_path, batch_size=1, crop_size=CROP, samples_per_photo=6, flip=False)
    assert not np.array_equal(default.get_batch(0, 1)[0], ds.get_batch(0, 1)[0])
    with pytest.raises(DeblurGANError, match="blur='gopro': choose one of default, sample"):
        SharpPhotoDataset(tmp_path, crop_size=CROP, blur="gopro")


def test_a_file_or_a_missing_crop_is_one_line(tmp_path):
    write_photos(tmp_path / "photos")
    (tmp_path / "afile").write_text("")
    with pytest.raises(DeblurGANError, match="sharp_dir=.*afile: a file, not a folder of sharp photos"):
        SharpPhotoDataset(tmp_path / "afile", crop_size=CROP)
    with pytest.raises(DeblurGANError, match="input_dir=.*afile: a file, not a folder of sharp photos"):
        blur_dataset.make_blur_dataset(tmp_path / "afile", tmp_path / "out", progress=False)
    for crop_size in (None, 4):  # None: a TypeError before
        with pytest.raises(DeblurGANError, match=f"crop_size={crop_size}: use at least 8 px$"):
            SharpPhotoDataset(tmp_path / "photos", crop_size=crop_size)
