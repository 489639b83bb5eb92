"""Deblurring photos of any size: padding, overlapping tiles, batching, reduced precision.

The generator takes heights and widths divisible by 4. :func:`deblur_array` reflect-pads a photo to
that and crops the result back exactly. Above a pixel budget it cuts the padded photo into
overlapping tiles whose origins are multiples of 4 (so the stride-2 grid of every tile lines up
with the grid of the whole photo), runs them in batches, and blends them:

* each tile owns a *core* (the cores partition the photo) and sees ``overlap`` pixels of context
  around it;
* a generator output pixel depends only on input pixels within :func:`receptive_field_radius`
  ``R`` of it (batch norm at inference is per-pixel), so wherever a tile's window reaches at least
  ``R`` pixels past a pixel (or reaches the photo's border), the tile computes exactly what one
  pass over the whole photo would;
* neighbouring tiles are cross-faded with linear ramps of half-width ``overlap - R`` centred on
  the core borders, inside the band where both tiles are exact, so with ``overlap >= R`` the
  tiled result equals the single pass (up to float rounding) and no seam can exist. With a smaller
  overlap the ramps use half the overlap and hide what seam there is.

Generators with instance norm (``preset="paper"``) normalise with per-image statistics, so their
tiles only approximate a single pass; a warning says so.
"""

import dataclasses
import logging
import math
import weakref
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from deblurgan.checkpoints import load_generator
from deblurgan.errors import DeblurGANError, first_of
from deblurgan.io import (
    DEFAULT_MAX_IMAGE_PIXELS,
    IMAGE_EXTENSIONS,
    check_unit_floats,
    list_images,
    preprocess_image,
    read_image,
    to_unit_range,
    writable_folder,
    write_image,
)
from deblurgan.layer_utils import with_layer_dtypes
from deblurgan.multiscale_model import finest_output
from deblurgan.precision import resolve_engine_precision
from deblurgan.tiling import ALIGN, deblur_tiled, padded_length, smallest_tile

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# 1.6 megapixels per forward pass keeps the full generator under 4 GiB on CPU (TensorFlow, fp32);
# a 1280x720 photo still runs in one pass. See benchmarks/bench_inference.py.
DEFAULT_WEIGHTS = "weights/generator.h5"  # the shipped default generator, relative to the repository
DEFAULT_MAX_PIXELS = 1_600_000
FEATHER = 8  # extra overlap beyond the receptive-field radius, used to cross-fade tiles
# Layers whose output pixel depends on the whole image (per-image statistics).
_GLOBAL_LAYERS = ("GroupNormalization", "LayerNormalization", "UnitNormalization")

_precision_cache = weakref.WeakKeyDictionary()


def receptive_field_radius(generator):
    """How far (in input pixels) an output pixel can see: an upper bound computed from the layers.

    Walks the layers in graph order, accumulating for each convolution ``(kernel - 1) / 2``
    times its dilation times the current stride product ("jump"), plus one jump of slack for each
    strided convolution, transposed convolution or upsampling, whose sampling grid is not centred.
    Residual branches are shorter than the main chain, so the sum over the chain bounds them.
    Padding layers only keep sizes for "valid" convolutions and add nothing; per-pixel layers
    (activations, batch norm at inference, dropout, additions) add nothing.

    For the default generator (9 blocks) this gives 90; for ``generator_model(n_filters=8,
    n_blocks=1)`` 26. Instance norm makes the true receptive field the whole image; this function
    still returns the convolutional radius (see the module doc).

    Example:
        >>> from deblurgan.model import generator_model
        >>> receptive_field_radius(generator_model(n_filters=8, n_blocks=1))
        26
    """
    radius, jump = 0.0, 1.0
    for layer in generator.layers:
        kind = type(layer).__name__
        if kind in ("UpSampling2D", "DepthToSpace"):
            size = max(layer.size) if kind == "UpSampling2D" else layer.block_size
            jump /= size
            radius += (size - 1) * jump
        elif kind == "Conv2DTranspose":
            stride = max(layer.strides)
            half = (max(layer.kernel_size) - 1) / 2
            radius += math.ceil(half / stride) * jump + jump
            jump /= stride
        elif hasattr(layer, "kernel_size") or "Pooling2D" in kind and hasattr(layer, "pool_size"):
            kernel = max(getattr(layer, "kernel_size", None) or layer.pool_size)
            stride = max(layer.strides)
            dilation = max(getattr(layer, "dilation_rate", (1,)))
            radius += (kernel - 1) / 2 * dilation * jump
            if stride > 1:
                radius += (stride - 1) * jump
            jump *= stride
    return int(math.ceil(radius))


def default_overlap(generator):
    """The receptive-field radius rounded up to a multiple of 4, plus 8 pixels to cross-fade."""
    return _ceil_to(receptive_field_radius(generator), ALIGN) + FEATHER


def with_precision(generator, precision="fp32"):
    """The generator computing in ``precision`` (``fp32``, ``bf16``, ``fp16``, or ``auto``: see
    :func:`deblurgan.precision.resolve_precision`).

    For bf16/fp16 the model is rebuilt from its config with every layer under Keras' mixed dtype
    policy (float32 weights, 16-bit computation) and the weights copied. The output layer (the
    global skip, which adds the blurred input back) stays in float32, so the photo itself is not
    rounded to 8 significant bits, only the correction the network computes. The result is cached
    per generator, so calling this per photo is cheap.
    """
    if hasattr(generator, "with_precision"):  # an engine other than Keras (deblurgan.engines)
        return generator.with_precision(precision)  # resolves "auto" for its engine
    precision = resolve_engine_precision("keras", precision)
    if precision not in PRECISIONS:
        raise DeblurGANError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}", "precision")
    if precision == "fp32":
        return generator
    cache = _precision_cache.setdefault(generator, {})
    if precision not in cache:
        policy = PRECISIONS[precision]
        outputs = {id(node_layer) for node_layer in output_layers(generator)}
        cache[precision] = with_layer_dtypes(
            generator, lambda layer: "float32" if id(layer) in outputs else policy
        )
    else:  # the generator may have trained since (validation during training): copy its weights again
        cache[precision].set_weights(generator.get_weights())
    return cache[precision]


def output_layers(model):
    """The layers that produce ``model``'s outputs."""
    names = {tensor._keras_history.operation.name for tensor in model.outputs}
    return [layer for layer in model.layers if layer.name in names]


def _as_unit_floats(image01):
    """``image01`` as float32 (the same array if it is one); uint8 and uint16 scaled to [0, 1]."""
    image01 = np.asarray(image01)
    if image01.dtype in (np.uint8, np.uint16):
        return image01.astype(np.float32) / np.iinfo(image01.dtype).max
    if not np.issubdtype(image01.dtype, np.floating):
        raise DeblurGANError(
            f"image01 has dtype {image01.dtype}: give floats in [0, 1], or 8- or 16-bit pixels",
            "image01",
        )
    # 0-255 floats (np.asarray(photo).astype(float)) came out all white, and NaN as noise
    check_unit_floats(image01, "image01")
    return image01.astype(np.float32, copy=False)


def deblur_array(
    generator,
    image01,
    tile_size=None,
    overlap=None,
    batch_size=1,
    precision="auto",
    max_pixels=DEFAULT_MAX_PIXELS,
    inplace=False,
):
    """Deblurs one photo of any size.

    Args:
        generator: a DeblurGAN generator (inputs and outputs in [-1, 1]).
        image01: float array ``(height, width, 3)`` in [0, 1]; 8- and 16-bit pixels (a photo as
            ``np.asarray(PIL.Image.open(path))`` gives it) are scaled to it.
        tile_size: side of the square tiles fed to the generator (rounded down to a multiple of 4).
            ``None``: one pass when the padded photo has at most ``max_pixels`` pixels, else tiles
            of side ``sqrt(max_pixels / batch_size)``, so one forward pass stays within the budget.
        overlap: context in pixels around each tile's core (rounded up to a multiple of 4);
            ``None``: :func:`default_overlap`. At least :func:`receptive_field_radius` makes the
            tiled result equal to a single pass.
        batch_size: tiles per forward pass. Under a pixel budget, 1 gives the largest tiles and so the
            least recomputed overlap; larger batches help GPUs with small explicit tiles.
        precision: ``"auto"`` (bf16 where native, else fp32), ``"fp32"``, ``"bf16"`` or ``"fp16"``
            (see :func:`with_precision` and :mod:`deblurgan.precision`).
        max_pixels: the pixel budget of one forward pass when ``tile_size`` is ``None``.
        inplace: when tiling, write the result over ``image01`` (a float32 array) instead of a new
            array: a huge photo then needs memory for one copy of itself, not two.

    Returns:
        float32 array with the shape of ``image01``, in [0, 1].

    Example:
        >>> g = generator_model(n_filters=8, n_blocks=1)
        >>> deblur_array(g, np.zeros((333, 517, 3)), tile_size=128).shape
        (333, 517, 3)
    """
    image01 = _as_unit_floats(image01)
    if image01.ndim != 3 or image01.shape[-1] != 3 or not image01.size:
        raise DeblurGANError(
            f"image01 has shape {image01.shape}: give an RGB image (height, width, 3); "
            "deblurgan.read_image(path).pixels is one for any photo",
            "image01",
        )
    if batch_size < 1:
        raise DeblurGANError(f"batch_size={batch_size}: must be at least 1", "batch_size")
    generator = finest_output(generator)  # a multi-scale generator deblurs with its finest output
    model = with_precision(generator, precision)
    height, width = image01.shape[:2]
    if tile_size is None and padded_length(height) * padded_length(width) <= max_pixels:
        padded = preprocess_image(_pad_to_multiple(image01), inplace=True)
        return to_unit_range(_predict(model, padded[None])[0, :height, :width], inplace=True)
    parameter, given = ("max_pixels", max_pixels) if tile_size is None else ("tile_size", tile_size)
    if tile_size is None:
        tile_size = int(math.sqrt(max_pixels / batch_size))
    tile_size = (int(tile_size) // ALIGN) * ALIGN
    overlap = default_overlap(generator) if overlap is None else _ceil_to(int(overlap), ALIGN)
    if tile_size < max(padded_length(height), padded_length(width)):  # else one tile: no overlap
        _check_room(parameter, given, tile_size, overlap, batch_size)
    radius = receptive_field_radius(generator)
    _warn_if_global(generator)
    if overlap < radius:
        log.warning(
            "overlap %d is below the receptive-field radius %d; tile borders may show", overlap, radius
        )
    # Cross-fade inside the band where both neighbours are exact; without one, over half the overlap.
    half_width = overlap - radius if overlap > radius else overlap // 2
    out = image01 if inplace else np.empty_like(image01)
    return deblur_tiled(
        lambda batch: _predict(model, batch), image01, out, tile_size, overlap, half_width, batch_size
    )


def _check_room(parameter, given, tile_size, overlap, batch_size):
    """Tiles must hold more than their overlap on both sides: one line naming the option that set
    their size (``max_pixels`` when tiles are automatic, which named an unset tile_size before)."""
    if tile_size - 2 * overlap >= ALIGN:
        return
    side = smallest_tile(overlap)
    if parameter == "tile_size":
        fix = f"a tile_size of at least {side}"
    else:
        per_pass = f" ({batch_size} tiles per pass)" if batch_size > 1 else ""
        fix = f"a max_pixels of at least {side * side * batch_size:,}{per_pass}"
    raise DeblurGANError(
        f"{parameter}={given}: tiles of {tile_size} pixels leave no room inside an overlap of {overlap} "
        f"pixels on each side; use {fix}, or a smaller overlap",
        parameter,
        mentions=("overlap",),
    )


def _ceil_to(value, multiple):
    return -(-value // multiple) * multiple


def _pad_to_multiple(image):
    """Reflect-pads the bottom and right edges to ``tiling.padded_length`` (a multiple of 4)."""
    pads = [(0, padded_length(size) - size) for size in image.shape[:2]] + [(0, 0)]
    return np.pad(image, pads, mode="reflect")  # NumPy reflects repeatedly when the pad is wider


def _predict(model, batch):
    out = model.predict_on_batch(batch)
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")))


def _warn_if_global(generator):
    if any(type(layer).__name__ in _GLOBAL_LAYERS for layer in generator.layers):
        log.warning(
            "this generator normalises with per-image statistics (instance norm); tiled output only "
            "approximates a single pass. Raise tile_size (or max_pixels) to avoid tiling"
        )


# ----------------------------------------------------------------------------- files and folders


@dataclasses.dataclass
class DeblurSummary:
    """What :func:`deblur_folder` did: files written and ``(input, reason)`` for files skipped."""

    written: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    kept: list = dataclasses.field(default_factory=list)  # earlier outputs left as they were

    @property
    def ok(self):
        return not self.failed


def load_inference_generator(weight_path):
    """Loads the generator to deblur with; a missing file says how to get one."""
    weight_path = Path(weight_path)
    if not weight_path.exists():
        where = "" if weight_path.is_absolute() else f" in {Path.cwd()}"  # the default is relative
        raise DeblurGANError(
            f"weight_path={weight_path}: no such generator file{where}; train one with scripts/train.py "
            "or pass the path of a generator .h5 or .keras file",
            "weight_path",
        )
    return load_generator(weight_path)


def format_summary(summary, output_dir, describe=str):
    """The lines a script prints after :func:`deblur_folder`; ``describe`` turns an error into text."""
    lines = [f"deblurred {len(summary.written)} photo(s) into {output_dir}"]
    if summary.kept:
        lines.append(f"kept the {len(summary.kept)} output(s) already there")
    if summary.failed:
        lines.append(f"skipped {len(summary.failed)} unreadable or unwritable file(s):")
        lines += [f"  {describe(error)}" for _, error in summary.failed]
    return "\n".join(lines)


def plan_outputs(input_path, output_dir, overwrite=False, skip_existing=False):
    """``(input file, output file)`` pairs: the same relative names under ``output_dir``.

    ``input_path`` is a photo or a folder (searched recursively; files already under
    ``output_dir`` are left out so a rerun does not deblur its own outputs). Files already at the
    output names are allowed only with ``overwrite`` (never the input's own files) or
    ``skip_existing`` (:func:`deblur_folder` keeps them).

    Raises:
        DeblurGANError: the input is missing or holds no photos, or the output would overwrite it
        or, without ``overwrite`` or ``skip_existing``, other files.
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    if overwrite and skip_existing:
        raise DeblurGANError(
            "overwrite=True and skip_existing=True: pick one", "skip_existing", mentions=("overwrite",)
        )
    if not input_path.exists():
        raise DeblurGANError(f"input_path={input_path}: no such file or folder", "input_path")
    plan = _photo_pair if input_path.is_file() else _folder_pairs
    pairs = plan(input_path, output_dir)
    existing = [target for _, target in pairs if target.exists()]
    if existing and not (overwrite or skip_existing):  # the sharp originals were replaced before
        raise DeblurGANError(
            f"output_dir={output_dir}: already holds {first_of(existing)}; choose another folder, "
            "pass overwrite=True to replace them, or skip_existing=True to keep them",
            "output_dir",
            mentions=("overwrite", "skip_existing"),
        )
    return pairs


def _photo_pair(input_path, output_dir):
    if input_path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DeblurGANError(f"input_path={input_path}: not a photo (.png, .jpg, .tif, ...)", "input_path")
    if output_dir.suffix.lower() in IMAGE_EXTENSIONS and not output_dir.is_dir():
        raise DeblurGANError(  # it would become a folder holding the photo
            f"output_dir={output_dir}: the folder the result goes into, under the input's name; name "
            "a folder",
            "output_dir",
        )
    target = output_dir / input_path.name
    if target.resolve() == input_path.resolve():
        raise DeblurGANError(
            f"output_dir={output_dir}: writing there would overwrite the input {input_path}; "
            "choose another folder",
            "output_dir",
        )
    return [(input_path, target)]


def _folder_pairs(input_path, output_dir):
    if output_dir.resolve() == input_path.resolve():
        raise DeblurGANError(
            f"output_dir={output_dir}: the input folder; outputs would overwrite the photos, "
            "choose another folder",
            "output_dir",
        )
    out_resolved = output_dir.resolve()
    sources = [p for p in list_images(input_path) if out_resolved not in p.resolve().parents]
    if not sources:
        raise DeblurGANError(
            f"input_path={input_path}: no images found (.png, .jpg, .tif, ...)", "input_path"
        )
    pairs = [(p, output_dir / p.relative_to(input_path)) for p in sources]
    # Files already under an output folder inside the input folder were left out above, but they
    # are the user's files as much as outputs of an earlier run: never overwritten.
    if out_resolved.is_relative_to(input_path.resolve()):
        existing = [target for _, target in pairs if target.exists()]
        if existing:
            raise DeblurGANError(
                f"output_dir={output_dir}: inside input_path={input_path}, and writing there would "
                f"overwrite {first_of(existing)}; choose an output folder outside the input folder",
                "output_dir",
                mentions=("input_path",),
            )
    return pairs


def deblur_file(
    generator,
    input_path,
    output_path,
    side_by_side=False,
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    **options,
):
    """Reads a photo, deblurs it and writes it with the same size, mode (alpha, gray, 16-bit).

    Args:
        side_by_side: write ``blurred | restored`` next to each other (the Sicara demo output).
        max_image_pixels: larger photos (or decompression bombs) are refused before decoding.
        **options: passed to :func:`deblur_array` (tile_size, overlap, batch_size, precision, ...).
    """
    photo = read_image(input_path, max_pixels=max_image_pixels)
    restored = deblur_array(generator, photo.pixels, inplace=not side_by_side, **options)
    alpha = photo.alpha
    if side_by_side:
        restored = np.concatenate([photo.pixels, restored], axis=1)
        alpha = None if alpha is None else np.concatenate([alpha, alpha], axis=1)
    write_image(
        output_path, restored, alpha=alpha, grayscale=photo.grayscale, bit_depth=photo.bit_depth,
        icc_profile=photo.icc_profile, dpi=photo.dpi,
    )  # fmt: skip
    return output_path


# Errors about these parameters are errors of the run's settings, not of the photo being deblurred.
_SETTINGS = ("tile_size", "max_pixels", "calibration_dir")


def deblur_folder(
    generator,
    input_path,
    output_dir,
    side_by_side=False,
    progress=True,
    overwrite=False,
    skip_existing=False,
    **options,
):
    """Deblurs every photo of a folder (or one file) into ``output_dir``, skipping unreadable ones;
    files already there are replaced only with ``overwrite``, or kept with ``skip_existing`` (an
    interrupted run goes on: outputs are written whole or not at all) (:func:`plan_outputs`).

    Returns:
        :class:`DeblurSummary`; its ``failed`` list names each skipped file and why.
    """
    pairs = plan_outputs(input_path, output_dir, overwrite, skip_existing)
    writable_folder(output_dir, "output_dir")
    summary = DeblurSummary(kept=[target for _, target in pairs if skip_existing and target.exists()])
    kept = set(summary.kept)
    pairs = [(source, target) for source, target in pairs if target not in kept]
    try:
        for source, target in tqdm(pairs, desc="deblurring", unit="photo", disable=not progress):
            _deblur_into(summary, generator, source, target, side_by_side, options)
    except KeyboardInterrupt:
        written = set(summary.written)  # the rest may still hold an earlier run's outputs (overwrite)
        earlier = sum(1 for _, target in pairs if target not in written and target.exists())
        how = "skip_existing=True goes on with the rest"
        if earlier:
            how = f"{earlier} other outputs there are from before this run; overwrite=True replaces them all"
        log.warning(
            "%d of %d photos written to %s before the interruption; %s",
            len(summary.written), len(pairs), output_dir, how,
            extra={"parameters": ["skip_existing", "overwrite"]},
        )  # fmt: skip
        raise
    return summary


def _deblur_into(summary, generator, source, target, side_by_side, options):
    try:
        deblur_file(generator, source, target, side_by_side=side_by_side, **options)
    except DeblurGANError as error:
        if error.parameter in _SETTINGS:  # no other photo would fare better: one line, not N
            raise
        summary.failed.append((source, error))
        log.info("skipped %s", error)  # summary.failed has it; scripts print it once, at the end
    except OSError as error:  # e.g. disk full, unwritable output
        summary.failed.append((source, DeblurGANError(f"{target}: cannot write ({error})")))
    else:
        summary.written.append(target)
