"""Streaming training batches of ``(blurred, sharp)`` crops in [-1, 1].

:class:`PairedImageDataset` reads ``A/`` (blurred) and ``B/`` (sharp) folders; :class:`SharpPhotoDataset`
blurs crops of sharp photos on the fly as ``make_blur_dataset`` does. Both share
:class:`StreamingDataset`: every random choice comes from a generator seeded by ``(seed, epoch,
index, slot)``, so a batch is a pure function of ``(seed, epoch, index)`` and a resumed run reads the
batches an uninterrupted one would; a file that cannot be decoded is logged once, counted in
``n_skipped`` and replaced by another chosen deterministically; :meth:`StreamingDataset.prefetch_iter`
decodes (and blurs) ahead in worker threads.

Example:
    >>> ds = PairedImageDataset("images/train", batch_size=2, crop_size=256)   # doctest: +SKIP
    >>> for blurred, sharp in ds.prefetch_iter(epoch=0):                      # doctest: +SKIP
    ...     pass  # (2, 256, 256, 3) float32 arrays in [-1, 1]
"""

import concurrent.futures
import functools
import itertools
import logging
import threading
from collections import deque
from pathlib import Path

import numpy as np

from deblurgan import blur_dataset
from deblurgan.errors import DeblurGANError, check_seed
from deblurgan.io import (
    DEFAULT_MAX_IMAGE_PIXELS,
    image_size,
    list_images,
    preprocess_image,
    read_image,
    resize_image,
)
from deblurgan.pairing import check_same_size, check_sharp_only, pair_images
from deblurgan.sample_data import SAMPLE_BLUR

logger = logging.getLogger(__name__)

# Seeds drawn per purpose so that the shuffle, the samples and the substitutes never share a stream.
_SHUFFLE_STREAM, _AUGMENT_STREAM, _SUBSTITUTE_STREAM = 0, 1, 2


class _Corrupt(Exception):
    """A source file could not be decoded (internal; becomes a warning and a substitute)."""


def _read(path, box=None, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    try:
        return read_image(path, box=box, max_pixels=max_pixels)
    except DeblurGANError as error:
        raise _Corrupt(error) from None  # read_image's message starts with the path


class StreamingDataset:
    """Batches as a pure function of ``(seed, epoch, index)``, decoded ahead in threads.

    Subclasses define ``_order(epoch)`` (the source of each sample of the epoch), ``_n_sources``,
    ``_load(source, rng)`` (one ``(blurred, sharp)`` sample in [-1, 1], or :class:`_Corrupt`) and
    ``_describe(source)``.

    Args:
        batch_size: samples per batch; the last incomplete batch of an epoch is dropped.
        seed: base seed of every random choice.
        workers: threads of :meth:`prefetch_iter`; 0 decodes on demand.
        max_queue_size: batches in flight in :meth:`prefetch_iter`.
    """

    def __init__(self, batch_size, seed, workers, max_queue_size):
        if int(batch_size) < 1:
            raise DeblurGANError(f"batch_size={batch_size}: must be at least 1", "batch_size")
        self.batch_size = int(batch_size)
        self.seed = check_seed(seed)
        self.workers = int(workers)
        self.max_queue_size = int(max_queue_size)
        self.epoch = 0
        self.n_skipped = 0
        self._bad = set()  # sources known to be unreadable
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._order(0)) // self.batch_size

    def set_epoch(self, epoch):
        """Selects the epoch that ``ds[index]`` reads."""
        self.epoch = int(epoch)

    def __getitem__(self, index):
        return self.get_batch(index, self.epoch)

    def sample_seed(self, epoch, index, slot, attempt=0):
        """The seed of the generator that draws sample ``slot`` of batch ``index`` of ``epoch``."""
        return [self.seed, int(epoch), int(index), int(slot), _AUGMENT_STREAM, int(attempt)]

    def get_batch(self, index, epoch, rows=None):
        """Batch ``index`` of ``epoch``: ``(blurred, sharp)`` float32 (batch, height, width, 3).

        ``rows``: only these samples of it (a range; one process's share of a batch trained on
        several machines); each is the sample of the same place in the whole batch."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range: the epoch has {len(self)} batches")
        order = self._order(epoch)
        start = index * self.batch_size
        rows = range(self.batch_size) if rows is None else rows
        samples = [self._load_slot(int(order[start + slot]), epoch, index, slot) for slot in rows]
        self._check_batch(samples, int(order[start + rows[0]]))
        return np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])

    def _check_batch(self, samples, first_source):
        """Hook: raise if the samples cannot be stacked."""

    def _load_slot(self, source, epoch, index, slot):
        """One sample; a corrupt source is replaced by the next readable one in a seeded order.

        The attempt number seeds the sample, and a source's attempt number is its place in this
        order, so the result does not depend on which files were already known to be bad.
        """
        for attempt, candidate in enumerate(self._substitutes(source, epoch, index, slot)):
            with self._lock:
                known_bad = candidate in self._bad
            if known_bad:
                continue
            rng = np.random.default_rng(self.sample_seed(epoch, index, slot, attempt))
            try:
                return self._load(candidate, rng)
            except _Corrupt as error:
                self._mark_bad(candidate, error.args[0])  # a DeblurGANError: scripts show its flags
        raise DeblurGANError(
            f"{self._describe(None)}: nothing readable left ({self.n_skipped} files skipped); "
            "check the files named in the warnings above"
        )

    def _substitutes(self, source, epoch, index, slot):
        yield source
        rng = np.random.default_rng([self.seed, epoch, index, slot, _SUBSTITUTE_STREAM])
        for candidate in rng.permutation(self._n_sources):
            if candidate != source:
                yield int(candidate)

    def _mark_bad(self, source, error):
        with self._lock:
            if source in self._bad:
                return
            self._bad.add(source)
            self.n_skipped += 1
        logger.warning("skipping %s (substituting another): %s", self._describe(source), error)

    def prefetch_iter(self, epoch=None, start=0, rows=None):
        """Yields the batches ``start, start + 1, ...`` of ``epoch`` in order, decoded ahead.

        ``workers`` threads keep up to ``max_queue_size`` batches in flight; with ``workers=0``
        batches are decoded on demand. Yields exactly what ``ds.get_batch(i, epoch)`` returns.

        Args:
            epoch: the epoch to read (also made current, as :meth:`set_epoch`); None = current.
            start: first batch index, to resume in the middle of an epoch.
            rows: only these samples of each batch (see :meth:`get_batch`).
        """
        if epoch is not None:
            self.set_epoch(epoch)
        # A plain method returning a generator, so the epoch is fixed now, not at the first next().
        get_batch = functools.partial(self.get_batch, epoch=self.epoch, rows=rows)
        return _prefetch(get_batch, range(int(start), len(self)), self.workers, self.max_queue_size)


def _prefetch(get_batch, indices, workers, max_queue_size):
    """``get_batch(i)`` for ``i`` in ``indices``, in order, computed ahead in ``workers`` threads."""
    if workers < 1:
        yield from map(get_batch, indices)
        return
    indices, pending = iter(indices), deque()
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="deblurgan-data")
    try:
        pending.extend(
            pool.submit(get_batch, i) for i in itertools.islice(indices, max(max_queue_size, workers))
        )
        while pending:
            batch = pending.popleft().result()
            pending.extend(pool.submit(get_batch, i) for i in itertools.islice(indices, 1))
            yield batch
    finally:  # a loop that stops early must not leave threads decoding in the background
        pool.shutdown(wait=True, cancel_futures=True)


def _normalize_size(size, parameter):
    """``None``, an int or an ``(height, width)`` pair -> ``None`` or ``(height, width)``."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DeblurGANError(f"{parameter}={size!r}: give an int or (height, width)", parameter) from None
    if height < 1 or width < 1:
        raise DeblurGANError(f"{parameter}={size!r}: sizes must be positive", parameter)
    return height, width


def _check_crop_fits(path, size, crop_size):
    height, width = size
    if height < crop_size or width < crop_size:
        raise DeblurGANError(
            f"{path} is {width}x{height}, smaller than crop_size={crop_size}; use "
            f"crop_size={min(height, width)} or less, resize=N to scale whole images, or remove the image",
            "crop_size",
            mentions=("crop_size", "resize"),
        )


def _raise_unequal_sizes(path, size, sizes):
    other = next(s for s in sizes if s != size)
    raise DeblurGANError(
        f"{path} is {size[1]}x{size[0]} but other images are {other[1]}x{other[0]}: full images "
        "(no crop, no resize) can only be batched when all have the same size; use batch_size=1, "
        "a crop_size or a resize",
        "batch_size",
    )


class PairedImageDataset(StreamingDataset):
    """Streams batches of ``(blurred, sharp)`` crops from ``data_dir/A`` and ``data_dir/B``.

    Only file names and (header) sizes are held in memory; each batch is decoded when asked for,
    only the crop window of each file (:func:`deblurgan.io.read_image`'s ``box``), 16 bits kept.
    The shuffle order is drawn from ``(seed, epoch)``, each pair's crop and flip from
    ``(seed, epoch, index, slot)``.

    Args:
        data_dir: folder holding ``A/`` (blurred) and ``B/`` (sharp), paired by
            :func:`deblurgan.pairing.pair_images`.
        batch_size: images per batch; the last incomplete batch of an epoch is dropped.
        crop_size: side of the square random crop taken at the same place in both images, or None.
        resize: int or ``(height, width)``: resize whole images instead of cropping (Sicara).
        flip: mirror both images left-right with probability 1/2.
        shuffle: shuffle the pairs each epoch (otherwise sorted order).
        n_images: use only the first ``n_images`` pairs (sorted by name); None or negative = all.
        seed: base seed of every random choice.
        workers, max_queue_size: prefetching threads and depth (:meth:`prefetch_iter`).
        check_sizes: read every header up front, so that size problems (smaller than the crop,
            A/B mismatch, unequal full sizes) fail now rather than mid-epoch.
        max_image_pixels: larger images are skipped with a warning, like corrupt ones.
    """

    def __init__(
        self,
        data_dir,
        batch_size=2,
        crop_size=256,
        resize=None,
        flip=True,
        shuffle=True,
        n_images=None,
        seed=0,
        workers=2,
        max_queue_size=8,
        check_sizes=True,
        max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    ):
        super().__init__(batch_size, seed, workers, max_queue_size)
        if crop_size is not None and int(crop_size) < 1:
            raise DeblurGANError(
                f"crop_size={crop_size}: must be positive, or None for full images", "crop_size"
            )
        self.data_dir = Path(data_dir)
        self.crop_size = None if crop_size is None else int(crop_size)
        self.resize = _normalize_size(resize, "resize")
        self.flip = bool(flip)
        self.shuffle = bool(shuffle)
        self.max_image_pixels = int(max_image_pixels)
        pairs = pair_images(self.data_dir)
        if n_images is not None and n_images >= 0:
            pairs = pairs[: int(n_images)]
        self.pairs = pairs
        self._n_sources = len(pairs)
        if len(self.pairs) < self.batch_size:
            raise DeblurGANError(
                f"{self.data_dir}: {len(self.pairs)} image pairs, fewer than batch_size={self.batch_size}; "
                "lower batch_size or add images",
                "batch_size",
            )
        if check_sizes:
            self._check_sizes()

    def _check_sizes(self):
        """Reads every header once: size errors now, not after an hour of training."""
        sizes = set()
        for blurred_path, sharp_path in self.pairs:
            blurred_size, sharp_size = image_size(blurred_path), image_size(sharp_path)
            if blurred_size is None or sharp_size is None:
                continue  # left to the loader, which skips it with a warning
            check_same_size(blurred_path, sharp_path, blurred_size, sharp_size)
            if self.resize is None and self.crop_size is not None:
                _check_crop_fits(blurred_path, blurred_size, self.crop_size)
            sizes.add(blurred_size)
            full_images = self.resize is None and self.crop_size is None
            if full_images and self.batch_size > 1 and len(sizes) > 1:
                _raise_unequal_sizes(blurred_path, blurred_size, sizes)

    def _check_batch(self, samples, first_source):
        sizes = {blurred.shape[:2] for blurred, _ in samples}
        if len(sizes) > 1:
            _raise_unequal_sizes(self.pairs[first_source][0], samples[0][0].shape[:2], sizes)

    def _order(self, epoch):
        if not self.shuffle:
            return np.arange(len(self.pairs))
        return np.random.default_rng([self.seed, epoch, _SHUFFLE_STREAM]).permutation(len(self.pairs))

    def _describe(self, source):
        return f"image pair {self.pairs[source][0]}" if source is not None else str(self.data_dir)

    def _load(self, source, rng):
        """Decodes a pair, applying the same crop window (or resize) and flip to both images."""
        blurred_path, sharp_path = self.pairs[source]
        size = image_size(blurred_path)
        sharp_size = image_size(sharp_path)
        for path, path_size in ((blurred_path, size), (sharp_path, sharp_size)):
            if path_size is None:
                _read(path)  # raises _Corrupt with read_image's message
        check_same_size(blurred_path, sharp_path, size, sharp_size)
        # Draw the crop and the flip whatever the options, so that the stream does not depend on them.
        offset_fraction = rng.random(2)
        mirror = bool(rng.random() < 0.5) and self.flip
        box = None
        if self.resize is None and self.crop_size is not None:
            _check_crop_fits(blurred_path, size, self.crop_size)
            top = int(offset_fraction[0] * (size[0] - self.crop_size + 1))
            left = int(offset_fraction[1] * (size[1] - self.crop_size + 1))
            box = (left, top, left + self.crop_size, top + self.crop_size)
        images = [_read(path, box, self.max_image_pixels).pixels for path in (blurred_path, sharp_path)]
        if self.resize is not None:
            images = [resize_image(image, self.resize) for image in images]
        if mirror:
            images = [image[:, ::-1] for image in images]
        return preprocess_image(images[0]), preprocess_image(images[1])


def _usable_photos(sharp_dir, crop_size, max_side, max_image_pixels):
    """The photos whose header says they fit the crop and the pixel limit; the rest counted."""
    if not sharp_dir.is_dir():
        what = "a file, not a folder" if sharp_dir.exists() else "no such folder"
        raise DeblurGANError(f"sharp_dir={sharp_dir}: {what} of sharp photos", "sharp_dir")
    photos = list_images(sharp_dir)
    if not photos:
        raise DeblurGANError(f"sharp_dir={sharp_dir}: no images (.png, .jpg, ...) in it", "sharp_dir")
    check_sharp_only(sharp_dir, photos, "sharp_dir")
    usable, small, large = [], [], []
    for path in photos:
        size = image_size(path)
        if size is None:
            usable.append(path)  # left to the loader, which skips it with a warning
        elif size[0] * size[1] > max_image_pixels:
            large.append(path)
        elif min(blur_dataset.scaled_size(size, max_side)) < crop_size:
            small.append(path)
        else:
            usable.append(path)
    too_large, too_small = (
        f"over max_image_pixels={max_image_pixels}",
        f"smaller than the {crop_size} px crop",
    )
    for skipped, why in ((large, too_large), (small, too_small)):
        if skipped:
            logger.warning("%s: skipped %d photos %s (e.g. %s)", sharp_dir, len(skipped), why, skipped[0])
    if not usable:
        after = " after max_side" if max_side else ""
        raise DeblurGANError(
            f"{sharp_dir}: none of the {len(photos)} photos is at least "
            f"crop_size={crop_size} px on its shorter side{after}; use a smaller crop_size",
            "crop_size",
        )
    return usable


# make_blur_dataset's kernel settings, with the noise and JPEG ranges of the README's recipe.
ON_THE_FLY_BLUR = {"noise_sigma": (0.0, 0.01), "jpeg_quality": (70, 95)}
# Named on-the-fly blurs: "sample" is the blur of images/test, images/holdout and the validation
# split of scripts/fetch_photos.py (no noise, no JPEG), for training towards those sets.
BLUR_PRESETS = {"default": ON_THE_FLY_BLUR, "sample": SAMPLE_BLUR}


class SharpPhotoDataset(StreamingDataset):
    """Streams ``(blurred, sharp)`` crops made on the fly from a folder of sharp photos.

    An epoch draws ``samples_per_photo`` samples from every photo, in an order shuffled by
    ``(seed, epoch)``. Each sample is :func:`deblurgan.blur_dataset.blur_crop` (a random crop, a
    fresh camera-shake or linear kernel, noise and JPEG, as ``make_blur_dataset``) followed by the
    same random flip and 90-degree turn of both crops, all drawn from ``sample_seed(epoch, index,
    slot)``. Decoded photos (downscaled to ``max_side``) are cached as 8- or 16-bit arrays, so each
    is decoded once per run while ``cache_mb`` holds them all (beyond it, once per sample).

    Photos smaller than the crop (after ``max_side``) or over ``max_image_pixels`` are skipped with
    a count; a photo that cannot be decoded is skipped with a warning and substituted.

    Args:
        sharp_dir: folder of sharp photos (searched recursively; read-only).
        batch_size: samples per batch.
        crop_size: side of the square crops.
        samples_per_photo: samples of each photo per epoch (the epoch length).
        max_side: downscale photos so their longer side is at most this first, or None.
        flip: random flips and 90-degree turns.
        seed, workers, max_queue_size: as :class:`StreamingDataset`.
        cache_mb: memory for decoded photos.
        max_image_pixels: larger photos are skipped.
        blur: a name of ``BLUR_PRESETS``: ``"default"`` (make_blur_dataset's kernels with
            ``ON_THE_FLY_BLUR``'s noise and JPEG) or ``"sample"`` (the sample set's blur).
        **blur_options: fields of :class:`deblurgan.blur_dataset.BlurOptions` (``exposures``,
            ``linear_probability``, ``linear_length``, ``noise_sigma``, ``jpeg_quality``) that
            override the preset's.

    Example:
        >>> ds = SharpPhotoDataset("photos", batch_size=8, crop_size=128)   # doctest: +SKIP
        >>> blurred, sharp = ds.get_batch(0, epoch=0)    # (8, 128, 128, 3) each, in [-1, 1]
    """

    def __init__(
        self,
        sharp_dir,
        batch_size=2,
        crop_size=256,
        samples_per_photo=8,
        max_side=None,
        flip=True,
        seed=0,
        workers=2,
        max_queue_size=8,
        cache_mb=4096,
        max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
        blur="default",
        **blur_options,
    ):
        super().__init__(batch_size, seed, workers, max_queue_size)
        if blur not in BLUR_PRESETS:
            raise DeblurGANError(f"blur={blur!r}: choose one of {', '.join(BLUR_PRESETS)}", "blur")
        if not isinstance(crop_size, (int, np.integer)) or crop_size < 8:  # (make_blur_dataset: None = whole)
            raise DeblurGANError(f"crop_size={crop_size}: use at least 8 px", "crop_size")
        if int(samples_per_photo) < 1:
            raise DeblurGANError(
                f"samples_per_photo={samples_per_photo}: must be at least 1", "samples_per_photo"
            )
        options = {**BLUR_PRESETS[blur], **blur_options, "crop_size": int(crop_size), "max_side": max_side}
        self.blur_options = blur_dataset.check_options(blur_dataset.BlurOptions(**options))
        self.sharp_dir = Path(sharp_dir)
        self.crop_size = int(crop_size)
        self.samples_per_photo = int(samples_per_photo)
        self.max_side = max_side
        self.flip = bool(flip)
        self.max_image_pixels = int(max_image_pixels)
        self.photos = _usable_photos(self.sharp_dir, self.crop_size, max_side, self.max_image_pixels)
        self._n_sources = len(self.photos)
        if len(self) < 1:
            raise DeblurGANError(
                f"{self.sharp_dir}: {len(self.photos)} photos x samples_per_photo={self.samples_per_photo} "
                f"make fewer samples than batch_size={self.batch_size}; raise samples_per_photo",
                "samples_per_photo",
            )
        self._photos = _PhotoCache(self, int(cache_mb) * 2**20)

    def _order(self, epoch):
        sources = np.repeat(np.arange(len(self.photos)), self.samples_per_photo)
        return np.random.default_rng([self.seed, epoch, _SHUFFLE_STREAM]).permutation(sources)

    def _describe(self, source):
        return f"photo {self.photos[source]}" if source is not None else str(self.sharp_dir)

    def photo_pixels(self, source):
        """Photo ``source`` as samples are cut from it: uint8 (uint16 for 16-bit files), downscaled."""
        return self._photos.pixels(source)

    def _load(self, source, rng):
        sharp, blurred, _ = blur_dataset.blur_crop(self.photo_pixels(source), rng, self.blur_options)
        turns, mirror = int(rng.integers(4)), bool(rng.random() < 0.5)
        if self.flip:
            sharp, blurred = (np.rot90(image, turns) for image in (sharp, blurred))
            if mirror:
                sharp, blurred = sharp[:, ::-1], blurred[:, ::-1]
        return preprocess_image(blurred), preprocess_image(sharp)


class _PhotoCache:
    """The photos of a :class:`SharpPhotoDataset`, decoded and downscaled, kept while ``limit``
    bytes hold them; one thread decodes a photo while the others wanting it wait for the result."""

    def __init__(self, dataset, limit):
        self.dataset, self.limit, self.used, self.warned = dataset, limit, 0, False
        self.arrays, self.lock = {}, threading.Lock()
        self.photo_locks = [threading.Lock() for _ in dataset.photos]

    def pixels(self, source):
        with self.lock:
            cached = self.arrays.get(source)
        if cached is not None:
            return cached
        ds = self.dataset
        with self.photo_locks[source]:
            with self.lock:
                if source in self.arrays:
                    return self.arrays[source]
            photo = _read(ds.photos[source], max_pixels=ds.max_image_pixels)
            pixels = blur_dataset.downscale(photo.pixels, ds.max_side)
            if min(pixels.shape[:2]) < ds.crop_size:
                raise _Corrupt(f"{ds.photos[source]}: decoded smaller than the crop")
            dtype = np.uint16 if photo.bit_depth == 16 else np.uint8
            pixels = np.round(pixels * np.iinfo(dtype).max).astype(dtype)
            with self.lock:
                if self.used + pixels.nbytes <= self.limit:
                    self.arrays[source] = pixels
                    self.used += pixels.nbytes
                elif not self.warned:
                    self.warned = True
                    logger.warning(
                        "%s: photos exceed cache_mb; they are decoded again for every sample "
                        "(pass a max_side or a larger cache_mb)",
                        ds.sharp_dir,
                    )
        return pixels
