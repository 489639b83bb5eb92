import keras
import numpy as np
import pytest
from infer_helpers import random_photo, tiny_generator
from PIL import Image

from deblurgan.errors import DeblurGANError
from deblurgan.inference import (
    deblur_array,
    deblur_file,
    deblur_folder,
    default_overlap,
    plan_outputs,
    receptive_field_radius,
    with_precision,
)
from deblurgan.model import generator_model
from deblurgan.tiling import ramp_weights, reflect_indices, spans


@pytest.fixture(scope="module")
def generator():
    return tiny_generator()


def test_receptive_field_radius_bounds_the_measured_reach(generator):
    radius = receptive_field_radius(generator)
    assert radius == 26
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    poked = x.copy()
    poked[0, 64, 64] += 1.0
    changed = np.abs(generator.predict_on_batch(poked) - generator.predict_on_batch(x)).max(-1)[0] > 0
    rows, cols = np.nonzero(changed)
    reach = max(np.abs(rows - 64).max(), np.abs(cols - 64).max())
    assert 10 < reach <= radius  # a real bound, and not a wildly loose one


@pytest.mark.slow
def test_receptive_field_radius_full_generator():
    assert receptive_field_radius(generator_model()) == 90
    assert receptive_field_radius(generator_model(preset="paper")) >= 90


@pytest.mark.parametrize("shape", [(333, 517), (37, 21), (1, 1), (3, 5)])
def test_output_has_input_size(generator, shape):
    photo = random_photo(*shape)
    assert deblur_array(generator, photo).shape == shape + (3,)


def test_8_and_16_bit_pixels_are_scaled_like_floats_and_other_integers_refused(generator):
    """A notebook's np.asarray(PIL image) used to be taken as floats in [0, 1]: a white result."""
    photo8 = (random_photo(37, 21) * 255).round().astype(np.uint8)
    expected = deblur_array(generator, photo8 / np.float32(255))
    np.testing.assert_array_equal(deblur_array(generator, photo8), expected)
    photo16 = photo8.astype(np.uint16) * 257  # the same photo at 16 bits
    np.testing.assert_allclose(deblur_array(generator, photo16), expected, atol=1e-6)
    assert photo8.dtype == np.uint8 and photo16.dtype == np.uint16  # the inputs are left as they were
    with pytest.raises(DeblurGANError, match="image01 has dtype int64: give floats in"):
        deblur_array(generator, photo8.astype(np.int64))


@pytest.mark.parametrize(
    ("mistake", "shown"),
    [
        (lambda photo: photo * 255, "from 0 to 255"),
        (lambda photo: photo * 2 - 1, "from -1 to 1"),  # the generator's own range
        (lambda photo: np.where(photo == 1, np.nan, photo), "from nan to nan"),
        (lambda photo: np.where(photo == 1, np.inf, photo), "from 0 to inf"),
    ],
    ids=["0-255 floats", "[-1, 1]", "nan", "inf"],
)
def test_floats_outside_0_1_are_refused_not_turned_white(generator, mistake, shown):
    """deblur_array(g, np.asarray(photo).astype(float)) came out all white without a word."""
    photo = random_photo(9, 7)
    photo[0, 0] = 0.0, 1.0, 0.5
    with pytest.raises(
        DeblurGANError, match=rf"image01 holds values {shown}: give floats in \[0, 1\]"
    ) as error:
        deblur_array(generator, mistake(photo))
    assert error.value.parameter == "image01"
    if shown == "from -1 to 1":  # load_images' arrays: the way back is named
        assert "(x + 1) / 2 of an array in [-1, 1]" in str(error.value)
    else:
        assert "(x + 1) / 2" not in str(error.value)
    deblur_array(generator, photo * 1.004 - 0.002)  # round-off around [0, 1]: fine


def test_an_empty_image_is_refused_in_one_line(generator):
    with pytest.raises(DeblurGANError, match=r"image01 has shape \(0, 5, 3\): give an RGB image"):
        deblur_array(generator, np.zeros((0, 5, 3), np.float32))


@pytest.mark.backend
def test_tiles_that_do_not_divide_the_image_equal_a_single_pass(generator):
    photo = random_photo(333, 517)
    single = deblur_array(generator, photo)
    radius = receptive_field_radius(generator)
    tiled = deblur_array(generator, photo, tile_size=100, overlap=radius, batch_size=3)
    assert tiled.shape == single.shape
    assert np.abs(tiled - single).max() < 1 / 255
    # The default overlap (radius + a cross-fade band) and another tile size agree as well.
    tiled = deblur_array(generator, photo, tile_size=144, batch_size=1)
    assert np.abs(tiled - single).max() < 1 / 255
    # A pixel budget below the photo's size tiles it automatically, with the same result.
    budget = deblur_array(generator, photo, max_pixels=120 * 120)
    assert np.abs(budget - single).max() < 1 / 255


def test_too_small_overlap_is_not_exact(generator):
    # Confirms the equality above depends on the overlap (the test can fail).
    photo = random_photo(200, 200)
    single = deblur_array(generator, photo)
    tiled = deblur_array(generator, photo, tile_size=64, overlap=4)
    assert np.abs(tiled - single).max() > 1e-3


@pytest.mark.parametrize(
    "length,tile,overlap", [(336, 100, 28), (520, 100, 28), (64, 100, 28), (1000, 96, 36)]
)
def test_spans_are_aligned_and_weights_sum_to_one(length, tile, overlap):
    tiles = spans(length, tile, overlap)
    assert tiles[0].core_start == 0 and tiles[-1].core_end == length
    for left, right in zip(tiles[:-1], tiles[1:], strict=True):
        assert left.core_end == right.core_start  # cores partition the axis
    for span in tiles:
        assert span.start % 4 == 0 and span.end - span.start == min(tile, length)
        assert span.start <= max(span.core_start - overlap, 0)
        assert span.end >= min(span.core_end + overlap, length)
    total = np.zeros(length)
    for span in tiles:
        total[span.start : span.end] += ramp_weights(span, length, 6)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


@pytest.mark.parametrize("length,pad", [(1, 7), (2, 9), (5, 3), (5, 13), (37, 3)])
def test_reflect_indices_are_numpys_reflect_padding(length, pad):
    axis = np.arange(length)
    expected = np.pad(axis, (0, pad), mode="reflect")
    np.testing.assert_array_equal(reflect_indices(0, length + pad, length), expected)
    np.testing.assert_array_equal(reflect_indices(3, length + pad, length), expected[3:])


def test_tiling_in_place_equals_a_copy_and_keeps_the_working_memory_small(generator):
    import tracemalloc

    photo = random_photo(1203, 598, seed=3)  # pads to 1204 x 600 by reflection
    expected = deblur_array(generator, photo, tile_size=96, overlap=24)
    assert not np.shares_memory(expected, photo)
    np.testing.assert_array_equal(photo, random_photo(1203, 598, seed=3))  # read-only
    own = photo.copy()
    tracemalloc.start()
    restored = deblur_array(generator, own, tile_size=96, overlap=24, inplace=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert restored is own
    np.testing.assert_allclose(restored, expected, atol=1e-6)
    # two 96-row bands of the padded width and one batch of tiles, not another copy of the photo
    assert peak < 0.5 * photo.nbytes, (peak, photo.nbytes)


def test_tile_too_small_for_overlap_is_a_user_error(generator):
    with pytest.raises(DeblurGANError, match="tile_size=.*leave no room"):
        deblur_array(generator, random_photo(200, 200), tile_size=40, overlap=20)


def test_default_overlap_covers_the_radius(generator):
    assert default_overlap(generator) >= receptive_field_radius(generator)
    assert default_overlap(generator) % 4 == 0


@pytest.mark.backend
@pytest.mark.parametrize("precision,dtype", [("bf16", "bfloat16"), ("fp16", "float16")])
def test_reduced_precision_runs_in_16_bits(generator, precision, dtype):
    model = with_precision(generator, precision)
    assert with_precision(generator, precision) is model  # cached
    conv = model.get_layer("head_conv")
    assert conv.compute_dtype == dtype and conv.variable_dtype == "float32"
    assert model.get_layer("tail_tanh").compute_dtype == dtype
    # The output layer adds the blurred photo back in float32 (the photo is not rounded).
    assert model.get_layer("global_skip").compute_dtype == "float32"
    out = model(keras.ops.zeros((1, 32, 32, 3)))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    photo = random_photo(64, 96)
    full = deblur_array(generator, photo, precision="fp32")  # not "auto": bf16 on CPUs that have it
    reduced = deblur_array(generator, photo, precision=precision)
    assert reduced.dtype == np.float32
    assert 0 < np.abs(reduced - full).max() < 0.05
    with pytest.raises(DeblurGANError, match="precision"):
        deblur_array(generator, photo, precision="int8")


@pytest.mark.backend
def test_a_reduced_precision_copy_follows_the_generators_weights(generator):
    # Training validates with precision "auto", bf16 on CPUs that have it: the cached bf16 copy must
    # not keep the weights of the first validation.
    photo = random_photo(32, 48)
    before = deblur_array(generator, photo, precision="bf16")
    weights = generator.get_weights()
    try:
        generator.get_layer("tail_conv").kernel.assign(generator.get_layer("tail_conv").kernel * 0.5)
        after = deblur_array(generator, photo, precision="bf16")
        assert np.abs(after - before).max() > 1e-3
        np.testing.assert_allclose(after, deblur_array(generator, photo, precision="fp32"), atol=0.05)
    finally:
        generator.set_weights(weights)


# ----------------------------------------------------------------------------- files


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def test_alpha_is_kept(generator, tmp_path):
    rgba = (random_photo(30, 41) * 255).astype(np.uint8)
    alpha = np.tile(np.linspace(0, 255, 41).astype(np.uint8), (30, 1))
    source = _save(tmp_path / "a.png", np.dstack([rgba, alpha]))
    deblur_file(generator, source, tmp_path / "out" / "a.png")
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert out.mode == "RGBA" and out.size == (41, 30)
        np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


def test_grayscale_and_16_bit_grayscale_stay_so(generator, tmp_path):
    gray = (random_photo(30, 22)[..., 0] * 255).astype(np.uint8)
    _save(tmp_path / "g.png", gray)
    gray16 = (random_photo(30, 22, seed=3)[..., 0] * 65535).astype(np.uint16)
    _save(tmp_path / "g16.png", gray16)
    summary = deblur_folder(generator, tmp_path, tmp_path / "out", progress=False)
    assert summary.ok and len(summary.written) == 2
    with Image.open(tmp_path / "out" / "g.png") as out:
        assert out.mode == "L" and out.size == (22, 30)
    with Image.open(tmp_path / "out" / "g16.png") as out:
        assert out.mode.startswith("I") and out.size == (22, 30)
        values = np.asarray(out)
    # 16-bit precision survives: values are not all multiples of 257 (what an 8-bit detour gives).
    assert np.any(values % 257 != 0)


def test_exif_orientation_is_applied(generator, tmp_path):
    stored = (random_photo(24, 40) * 255).astype(np.uint8)  # 40 wide, 24 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the photo is 24 wide, 40 high upright
    _save(tmp_path / "r.jpg", stored, exif=exif.tobytes())
    deblur_file(generator, tmp_path / "r.jpg", tmp_path / "out" / "r.jpg")
    with Image.open(tmp_path / "out" / "r.jpg") as out:
        assert out.size == (24, 40)
        assert out.getexif().get(0x0112, 1) == 1  # written upright, no rotation left to apply


def test_side_by_side_is_blurred_then_restored(generator, tmp_path):
    photo = (random_photo(20, 28) * 255).astype(np.uint8)
    _save(tmp_path / "p.png", photo)
    deblur_file(generator, tmp_path / "p.png", tmp_path / "o.png", side_by_side=True)
    with Image.open(tmp_path / "o.png") as out:
        pair = np.asarray(out)
    assert pair.shape == (20, 56, 3)
    np.testing.assert_array_equal(pair[:, :28], photo)


def test_corrupt_file_is_skipped_and_reported(generator, tmp_path):
    for name in ("a.png", "c.png"):
        _save(tmp_path / "in" / name, (random_photo(16, 16) * 255).astype(np.uint8))
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    summary = deblur_folder(generator, tmp_path / "in", tmp_path / "out", progress=False)
    assert not summary.ok
    assert [p.name for p, _ in summary.failed] == ["b.png"]
    assert sorted(p.name for p in summary.written) == ["a.png", "c.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_outputs_never_overwrite_inputs(tmp_path):
    _save(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DeblurGANError, match="output_dir=.*the input folder"):
        plan_outputs(tmp_path, tmp_path)
    with pytest.raises(DeblurGANError, match="overwrite"):
        plan_outputs(tmp_path / "a.png", tmp_path)
    with pytest.raises(DeblurGANError, match="no such"):
        plan_outputs(tmp_path / "missing", tmp_path / "out")
    # An output folder inside the input folder: its files are not taken as inputs, nor overwritten
    # (they may be the user's photos: deblur.py --input_dir X --output_dir X/old once replaced them).
    assert plan_outputs(tmp_path, tmp_path / "out") == [(tmp_path / "a.png", tmp_path / "out" / "a.png")]
    _save(tmp_path / "out" / "a.png", np.zeros((8, 8, 3), np.uint8))
    _save(tmp_path / "out" / "b.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DeblurGANError) as refused:
        plan_outputs(tmp_path, tmp_path / "out")
    assert str(refused.value) == (
        f"output_dir={tmp_path / 'out'}: inside input_path={tmp_path}, and writing there would overwrite "
        f"{tmp_path / 'out' / 'a.png'}; choose an output folder outside the input folder"
    )


def test_16_bit_rgb_stays_16_bit(generator, tmp_path):
    from deblurgan.io import read_image, write_image

    write_image(tmp_path / "in" / "c.png", random_photo(26, 30), bit_depth=16)
    assert read_image(tmp_path / "in" / "c.png").bit_depth == 16
    deblur_file(generator, tmp_path / "in" / "c.png", tmp_path / "out" / "c.png")
    restored = read_image(tmp_path / "out" / "c.png")
    assert restored.bit_depth == 16 and restored.pixels.shape == (26, 30, 3)
    assert np.any(np.round(restored.pixels * 65535) % 257 != 0)  # not an 8-bit detour


def test_the_colour_profile_and_resolution_are_kept(generator, tmp_path):
    """A Display P3 or Adobe RGB photo written without its profile shows shifted colours."""
    from PIL import ImageCms

    from deblurgan.io import read_image, write_image

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # any RGB profile
    photo = (random_photo(24, 32) * 255).astype(np.uint8)
    _save(tmp_path / "in" / "a.jpg", photo, icc_profile=profile, dpi=(300, 300))
    _save(tmp_path / "in" / "b.png", photo, icc_profile=profile, dpi=(300, 300))
    write_image(
        tmp_path / "in" / "c.png", random_photo(24, 32), bit_depth=16, icc_profile=profile, dpi=(72, 72)
    )
    cmyk = profile[:16] + b"CMYK" + profile[20:]  # the profile of a CMYK photo: wrong for its RGB
    Image.fromarray(photo).convert("CMYK").save(tmp_path / "in" / "d.jpg", icc_profile=cmyk)
    deblur_folder(generator, tmp_path / "in", tmp_path / "out", progress=False)
    for name, dpi in (("a.jpg", (300, 300)), ("b.png", (300, 300)), ("c.png", (72, 72))):
        with Image.open(tmp_path / "out" / name) as written:
            assert written.info["icc_profile"] == profile, name
            assert tuple(round(d) for d in written.info["dpi"]) == dpi, name
    assert read_image(tmp_path / "out" / "c.png").bit_depth == 16
    with Image.open(tmp_path / "out" / "d.jpg") as written:
        assert written.mode == "RGB" and "icc_profile" not in written.info


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_lossy_outputs_are_written_at_quality_95(tmp_path, suffix):
    from scipy import ndimage

    from deblurgan.io import read_image, write_image

    # grey values, so that the 4:2:0 colour subsampling of both formats loses nothing at any quality
    gray = ndimage.gaussian_filter(np.random.default_rng(0).uniform(0, 1, (64, 64)), 1.5)
    photo = np.repeat((gray - gray.min())[..., None] / np.ptp(gray), 3, axis=-1).astype(np.float32)
    write_image(tmp_path / f"ours{suffix}", photo)
    Image.fromarray((photo * 255).round().astype(np.uint8)).save(tmp_path / f"pillow{suffix}", quality=95)
    Image.fromarray((photo * 255).round().astype(np.uint8)).save(tmp_path / f"default{suffix}")
    ours, at_95, default = (
        read_image(tmp_path / f"{n}{suffix}").pixels for n in ("ours", "pillow", "default")
    )
    np.testing.assert_array_equal(ours, at_95)
    assert np.abs(default - photo).mean() > 2 * np.abs(ours - photo).mean()  # Pillow's default loses more


def test_tiles_too_small_for_their_overlap_name_the_option_that_sized_them(generator, tmp_path):
    """An automatic tile named an unset --tile_size, and each photo of a folder failed alike."""
    photo = random_photo(64, 64)
    at_least = f"{(2 * 36 + 64) ** 2:,}"  # a 64-pixel core inside the tiny generator's overlap of 36
    with pytest.raises(DeblurGANError, match=f"max_pixels=1024: tiles of 32 pixels .* at least {at_least},"):
        deblur_array(generator, photo, max_pixels=1024)
    with pytest.raises(DeblurGANError, match="tile_size=10: tiles of 8 pixels .* tile_size of at least 136"):
        deblur_array(generator, photo, tile_size=10)
    small = random_photo(20, 20)  # within one tile on both axes: one pass, no overlap to fit
    one_pass = deblur_array(generator, small)
    np.testing.assert_array_equal(deblur_array(generator, small, tile_size=40), one_pass)
    for name in ("a.png", "b.png"):
        _save(tmp_path / "in" / name, (photo * 255).astype(np.uint8))
    with pytest.raises(DeblurGANError) as error:  # one error for the run, not a failed photo each
        deblur_folder(generator, tmp_path / "in", tmp_path / "out", progress=False, max_pixels=1024)
    assert error.value.parameter == "max_pixels"
