"""Paired training data: listing and pairing ``A/`` (blurred) and ``B/`` (sharp) images, streaming
batches of identical crops and flips from both, the Sicara-compatible ``load_images``, and the
GOPRO_Large reorganisation.

Every random choice (shuffle order, crop window, flip) is drawn from a generator seeded by
``(seed, epoch, ...)``, so a batch is a pure function of ``(seed, epoch, index)``: a resumed run
reads exactly the batches an uninterrupted one would have. Images are decoded with
:func:`deblurgan.io.read_image` (grayscale, RGBA, 16-bit and EXIF orientation handled there) and
scaled to [-1, 1] with :func:`deblurgan.io.preprocess_image`.

Example:
    >>> ds = PairedImageDataset("images/train", batch_size=2, crop_size=256)   # doctest: +SKIP
    >>> for blurred, sharp in ds.prefetch_iter(epoch=0):                      # doctest: +SKIP
    ...     pass  # (2, 256, 256, 3) float32 arrays in [-1, 1]
"""

import concurrent.futures
import logging
import os
import shutil
import threading
from collections import deque
from pathlib import Path

import keras
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deblurgan import io as image_io
from deblurgan.errors import DeblurGANError
from deblurgan.io import IMAGE_EXTENSIONS, atomic_path, list_images, preprocess_image, read_image

logger = logging.getLogger(__name__)

_LAYOUT_HINT = "expected {root}/A (blurred) and {root}/B (sharp) holding images with the same relative names"
_MAX_LISTED = 5
# Seeds drawn per purpose so that the shuffle, the crops and the substitutes never share a stream.
_SHUFFLE_STREAM, _AUGMENT_STREAM, _SUBSTITUTE_STREAM = 0, 1, 2


# --------------------------------------------------------------------------------------------------
# Pairing


def pair_images(data_dir):
    """Pairs ``data_dir/A/<name>`` (blurred) with ``data_dir/B/<name>`` (sharp).

    Files are matched by their path relative to ``A/`` and ``B/`` (subfolders allowed, extension
    included) and returned sorted by that relative name.

    Args:
        data_dir: folder holding ``A/`` and ``B/``.

    Returns:
        list of ``(blurred_path, sharp_path)`` tuples of :class:`pathlib.Path`.

    Raises:
        DeblurGANError: a folder is missing, holds no images, or some names have no partner.

    Example:
        >>> pairs = pair_images("images/train")   # doctest: +SKIP
        >>> pairs[0]                              # doctest: +SKIP
        (PosixPath('images/train/A/0001.png'), PosixPath('images/train/B/0001.png'))
    """
    root = Path(data_dir)
    hint = _LAYOUT_HINT.format(root=root)
    if not root.is_dir():
        raise DeblurGANError(f"{root}: no such data folder; {hint}")
    for side in ("A", "B"):
        if not (root / side).is_dir():
            raise DeblurGANError(f"{root / side}: missing {side}/ folder; {hint}")
    names = {}
    for side in ("A", "B"):
        folder = root / side
        files = list_images(folder)
        if not files:
            extensions = ", ".join(IMAGE_EXTENSIONS)
            raise DeblurGANError(f"{folder}: no images ({extensions}); {hint}")
        names[side] = {path.relative_to(folder).as_posix(): path for path in files}
    only_a = sorted(set(names["A"]) - set(names["B"]))
    only_b = sorted(set(names["B"]) - set(names["A"]))
    if only_a or only_b:
        unmatched = [f"A/{name} (no B/{name})" for name in only_a]
        unmatched += [f"B/{name} (no A/{name})" for name in only_b]
        listed = ", ".join(unmatched[:_MAX_LISTED])
        more = f" and {len(unmatched) - _MAX_LISTED} more" if len(unmatched) > _MAX_LISTED else ""
        raise DeblurGANError(
            f"{root}: {len(unmatched)} images have no partner (names must match exactly, extension "
            f"included): {listed}{more}; {hint}"
        )
    return [(names["A"][name], names["B"][name]) for name in sorted(names["A"])]


# --------------------------------------------------------------------------------------------------
# Reading one pair


def _normalize_size(size, option):
    """``None``, an int or an ``(height, width)`` pair -> ``None`` or ``(height, width)``."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DeblurGANError(f"{option}={size!r}: give an int or (height, width)") from None
    if height < 1 or width < 1:
        raise DeblurGANError(f"{option}={size!r}: sizes must be positive")
    return height, width


def image_size(path):
    """``(height, width)`` of ``path`` after EXIF orientation, from the header only, or None.

    None means the header is unreadable (the file will then be treated as corrupt when loaded).
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            # Pillow decodes a whole PNG to look for an EXIF chunk after the pixels; such files
            # are rare, and the loader checks the decoded size again anyway.
            if image.format == "PNG" and "exif" not in image.info:
                orientation = 1
            else:
                orientation = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    # Orientations 5-8 rotate by 90 degrees, so the stored width is the displayed height.
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


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


def _check_same_size(blurred_path, sharp_path, blurred_size, sharp_size):
    if blurred_size != sharp_size:
        raise DeblurGANError(
            f"{blurred_path} is {blurred_size[1]}x{blurred_size[0]} but {sharp_path} is "
            f"{sharp_size[1]}x{sharp_size[0]} (width x height); a blurred/sharp pair must have the "
            "same size: re-export one of them"
        )


def _check_crop_fits(path, size, crop_size):
    height, width = size
    if height < crop_size or width < crop_size:
        raise DeblurGANError(
            f"{path} is {width}x{height}, smaller than the {crop_size}x{crop_size} crop; pass a "
            f"smaller --crop_size (at most {min(height, width)}), use --resize to scale whole images, "
            "or remove the image"
        )


class _CorruptPair(Exception):
    """One image of a pair could not be decoded (internal; becomes a warning and a substitute)."""

    def __init__(self, path, reason):
        super().__init__(reason)  # read_image's message, which starts with the path
        self.path = path


def _read_pixels(path):
    try:
        return read_image(path).pixels
    except DeblurGANError as error:
        raise _CorruptPair(path, str(error)) from None


def _open_upright(path):
    """Decodes ``path`` into a Pillow image turned upright, as :func:`read_image` does.

    Kept as a Pillow image so that a crop can be cut before the float conversion, which costs
    about as much as decoding a 720p PNG.
    """
    try:
        with Image.open(path) as image:
            file_format = image.format
            if image.getexif().get(0x0112, 1) != 1:
                image = ImageOps.exif_transpose(image)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise _CorruptPair(
            path, f"{path}: not a readable image ({error}); re-export it as PNG or JPEG or remove it"
        ) from None
    return image, file_format


def load_pair(blurred_path, sharp_path, rng, crop_size=256, resize=None, flip=True):
    """Decodes a pair and applies the same crop window and flip to both images.

    Pixels follow :func:`deblurgan.io.read_image` (RGB, grayscale repeated, alpha dropped, 16-bit
    scaled, EXIF orientation applied) and :func:`deblurgan.io.preprocess_image` ([-1, 1]).

    Args:
        blurred_path, sharp_path: the two files.
        rng: ``numpy.random.Generator`` drawing the crop offset and the flip.
        crop_size: side of the square random crop, or None (no crop).
        resize: ``(height, width)`` whole-image resize (Sicara) applied instead of cropping, or None.
        flip: mirror both images left-right with probability 1/2.

    Returns:
        ``(blurred, sharp)`` float32 arrays (height, width, 3) in [-1, 1].

    Raises:
        DeblurGANError: the images differ in size, or are smaller than the crop.
        _CorruptPair: a file cannot be decoded.
    """
    blurred, blurred_format = _open_upright(blurred_path)
    sharp, sharp_format = _open_upright(sharp_path)
    height, width = blurred.height, blurred.width
    _check_same_size(blurred_path, sharp_path, (height, width), (sharp.height, sharp.width))
    # Draw the crop and the flip whatever the options, so that the stream does not depend on them.
    offset_fraction = rng.random(2)
    mirror = bool(rng.random() < 0.5) and flip
    if resize is None and crop_size is not None:
        _check_crop_fits(blurred_path, (height, width), crop_size)
        top = int(offset_fraction[0] * (height - crop_size + 1))
        left = int(offset_fraction[1] * (width - crop_size + 1))
        box = (left, top, left + crop_size, top + crop_size)
        blurred, sharp = blurred.crop(box), sharp.crop(box)
    blurred = image_io._decode(blurred, blurred_format).pixels
    sharp = image_io._decode(sharp, sharp_format).pixels
    if resize is not None:
        blurred, sharp = resize_image(blurred, resize), resize_image(sharp, resize)
    if mirror:
        blurred, sharp = blurred[:, ::-1], sharp[:, ::-1]
    return preprocess_image(blurred), preprocess_image(sharp)


# --------------------------------------------------------------------------------------------------
# Streaming dataset


class PairedImageDataset(keras.utils.PyDataset):
    """Streams batches of ``(blurred, sharp)`` crops from ``data_dir/A`` and ``data_dir/B``.

    Only file names and (header) sizes are held in memory; each batch is decoded when asked for.
    Batch ``index`` of epoch ``epoch`` is a pure function of ``(seed, epoch, index)``: the shuffle
    order is drawn from ``(seed, epoch)`` and each image's crop and flip from
    ``(seed, epoch, index, slot)``. A file that cannot be decoded is logged once, counted in
    ``n_skipped`` and replaced by another pair chosen deterministically, so training goes on.

    Under ``model.fit`` Keras' own workers prefetch (``workers``, ``use_multiprocessing``,
    ``max_queue_size``); pass ``callbacks=[ds.epoch_callback()]`` so each epoch gets its own shuffle
    and crops (Keras' own epoch hooks run after its workers start and, on JAX, also around a
    warm-up batch, so they cannot number epochs reliably). With multiprocessing, ``n_skipped``
    counts only what the main process read; the warnings still name every file.
    In a hand-written loop use :meth:`prefetch_iter`, which decodes ahead in ``workers`` threads
    (Pillow releases the GIL).

    Args:
        data_dir: folder holding ``A/`` (blurred) and ``B/`` (sharp), paired by relative name.
        batch_size: images per batch; the last incomplete batch of an epoch is dropped.
        crop_size: side of the square random crop taken at the same place in both images, or None.
        resize: int or ``(height, width)``: resize whole images instead of cropping (Sicara).
        flip: mirror both images left-right with probability 1/2.
        shuffle: shuffle the pairs each epoch (otherwise sorted order).
        n_images: use only the first ``n_images`` pairs (sorted by name); None or negative = all.
        seed: base seed of every random choice.
        workers, use_multiprocessing, max_queue_size: prefetching (see above).
        check_sizes: read every header up front, so that size problems (smaller than the crop,
            A/B mismatch, unequal full sizes) fail now rather than mid-epoch.

    Example:
        >>> ds = PairedImageDataset("images/train", batch_size=2)       # doctest: +SKIP
        >>> ds.set_epoch(3)                                             # doctest: +SKIP
        >>> blurred, sharp = ds[0]     # (2, 256, 256, 3) each, in [-1, 1]  # doctest: +SKIP
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
        use_multiprocessing=False,
        max_queue_size=8,
        check_sizes=True,
    ):
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        if int(batch_size) < 1:
            raise DeblurGANError(f"batch_size={batch_size}: must be at least 1")
        if crop_size is not None and int(crop_size) < 1:
            raise DeblurGANError(f"crop_size={crop_size}: must be positive, or None for full images")
        self.data_dir = Path(data_dir)
        self.batch_size = int(batch_size)
        self.crop_size = None if crop_size is None else int(crop_size)
        self.resize = _normalize_size(resize, "resize")
        self.flip = bool(flip)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        pairs = pair_images(self.data_dir)
        if n_images is not None and n_images >= 0:
            pairs = pairs[: int(n_images)]
        self.pairs = pairs
        if len(self.pairs) < self.batch_size:
            raise DeblurGANError(
                f"{self.data_dir}: {len(self.pairs)} image pairs, fewer than batch_size={self.batch_size}; "
                "lower --batch_size or add images"
            )
        self._bad = set()  # indices of pairs known to be unreadable
        self._lock = threading.Lock()
        self.n_skipped = 0
        if check_sizes:
            self._check_sizes()

    def __getstate__(self):
        # Keras' multiprocessing workers may pickle the dataset; a lock cannot be pickled.
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- set-up checks ---------------------------------------------------------------------------

    @property
    def _full_images(self):
        return self.resize is None and self.crop_size is None

    def _check_sizes(self):
        """Reads every header once: size errors now, not after an hour of training."""
        sizes = set()
        for blurred_path, sharp_path in self.pairs:
            blurred_size, sharp_size = image_size(blurred_path), image_size(sharp_path)
            if blurred_size is None or sharp_size is None:
                continue  # left to the loader, which skips it with a warning
            _check_same_size(blurred_path, sharp_path, blurred_size, sharp_size)
            if self.resize is None and self.crop_size is not None:
                _check_crop_fits(blurred_path, blurred_size, self.crop_size)
            sizes.add(blurred_size)
            if self._full_images and self.batch_size > 1 and len(sizes) > 1:
                self._raise_unequal_sizes(blurred_path, blurred_size, sizes)

    def _raise_unequal_sizes(self, path, size, sizes):
        other = next(s for s in sizes if s != size)
        raise DeblurGANError(
            f"{path} is {size[1]}x{size[0]} but other images are {other[1]}x{other[0]}: full images "
            "(no crop, no resize) can only be batched when all have the same size; use --batch_size 1, "
            "--crop_size N or --resize H W"
        )

    # -- epochs and order ------------------------------------------------------------------------

    def __len__(self):
        return len(self.pairs) // self.batch_size

    def set_epoch(self, epoch):
        """Selects the epoch whose shuffle order, crops and flips the batches come from."""
        self.epoch = int(epoch)

    def epoch_callback(self):
        """A Keras callback that makes each ``model.fit`` epoch read its own epoch of batches.

        Keras calls callbacks' ``on_epoch_begin`` before it starts the dataset's workers, with the
        epoch number that honours ``initial_epoch``, so a resumed ``fit`` reads the same batches.

        Example:
            >>> model.fit(ds, epochs=50, initial_epoch=10, callbacks=[ds.epoch_callback()])  # doctest: +SKIP
        """
        return _SetEpoch(self)

    def _order(self, epoch):
        if not self.shuffle:
            return np.arange(len(self.pairs))
        return np.random.default_rng([self.seed, epoch, _SHUFFLE_STREAM]).permutation(len(self.pairs))

    # -- batches ---------------------------------------------------------------------------------

    def __getitem__(self, index):
        return self.get_batch(index, self.epoch)

    def get_batch(self, index, epoch):
        """Batch ``index`` of ``epoch``: ``(blurred, sharp)`` float32 (batch, height, width, 3)."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range: the epoch has {len(self)} batches")
        order = self._order(epoch)
        start = index * self.batch_size
        samples = [
            self._load_slot(int(order[start + slot]), epoch, index, slot) for slot in range(self.batch_size)
        ]
        blurred = [s[0] for s in samples]
        sharp = [s[1] for s in samples]
        if len({b.shape for b in blurred}) > 1:
            path = self.pairs[int(order[start])][0]
            sizes = {b.shape[:2] for b in blurred}
            self._raise_unequal_sizes(path, blurred[0].shape[:2], sizes)
        return np.stack(blurred), np.stack(sharp)

    def _load_slot(self, pair_index, epoch, index, slot):
        """One sample; a corrupt pair is replaced by the next readable one in a seeded order."""
        candidates = self._substitutes(pair_index, epoch, index, slot)
        for attempt, candidate in enumerate(candidates):
            with self._lock:
                known_bad = candidate in self._bad
            if known_bad:
                continue
            rng = np.random.default_rng([self.seed, epoch, index, slot, _AUGMENT_STREAM, attempt])
            blurred_path, sharp_path = self.pairs[candidate]
            try:
                return load_pair(blurred_path, sharp_path, rng, self.crop_size, self.resize, self.flip)
            except _CorruptPair as error:
                self._mark_bad(candidate, error)
        raise DeblurGANError(
            f"{self.data_dir}: no readable image pair left ({self.n_skipped} skipped as corrupt); "
            "check the files named in the warnings above"
        )

    def _substitutes(self, pair_index, epoch, index, slot):
        """``pair_index`` first, then every other pair in an order seeded by the batch position.

        The attempt number seeds the crop, and a pair's attempt number is its place in this
        order, so the result does not depend on which files were already known to be bad.
        """
        yield pair_index
        rng = np.random.default_rng([self.seed, epoch, index, slot, _SUBSTITUTE_STREAM])
        for candidate in rng.permutation(len(self.pairs)):
            if candidate != pair_index:
                yield int(candidate)

    def _mark_bad(self, pair_index, error):
        with self._lock:
            if pair_index in self._bad:
                return
            self._bad.add(pair_index)
            self.n_skipped += 1
        logger.warning("skipping corrupt image pair (substituting another): %s", error)

    # -- prefetching iterator for hand-written loops ---------------------------------------------

    def prefetch_iter(self, epoch=None, start=0):
        """Yields the batches ``start, start + 1, ...`` of ``epoch`` in order, decoded ahead.

        ``workers`` threads keep up to ``max_queue_size`` batches in flight; with ``workers=0``
        batches are decoded on demand. Yields exactly what ``ds.get_batch(i, epoch)`` returns.

        Args:
            epoch: the epoch to read (also made current, as :meth:`set_epoch`); None = current.
            start: first batch index, to resume in the middle of an epoch.
        """
        if epoch is not None:
            self.set_epoch(epoch)
        # A plain method returning a generator, so the epoch is fixed now, not at the first next().
        return self._prefetch(self.epoch, range(int(start), len(self)))

    def _prefetch(self, epoch, indices):
        if self.workers < 1:
            for index in indices:
                yield self.get_batch(index, epoch)
            return
        depth = max(1, self.max_queue_size, self.workers)
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="deblurgan-data")
        pending = deque()
        try:
            remaining = iter(indices)
            for index in remaining:
                pending.append(pool.submit(self.get_batch, index, epoch))
                if len(pending) >= depth:
                    break
            while pending:
                batch = pending.popleft().result()
                next_index = next(remaining, None)
                if next_index is not None:
                    pending.append(pool.submit(self.get_batch, next_index, epoch))
                yield batch
        finally:
            # A loop that stops early must not leave threads decoding in the background.
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)


class _SetEpoch(keras.callbacks.Callback):
    """Sets the dataset's epoch from Keras' epoch number (see ``PairedImageDataset.epoch_callback``)."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


# --------------------------------------------------------------------------------------------------
# Sicara-compatible in-memory loading


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
    pairs = pair_images(path)
    if n_images is not None and n_images >= 0:
        pairs = pairs[: int(n_images)]
    data = {"A": [], "A_paths": [], "B": [], "B_paths": []}
    skipped = 0
    for blurred_path, sharp_path in pairs:
        try:
            blurred, sharp = _read_pixels(blurred_path), _read_pixels(sharp_path)
        except _CorruptPair as error:
            logger.warning("skipping corrupt image pair: %s", error)
            skipped += 1
            continue
        _check_same_size(blurred_path, sharp_path, blurred.shape[:2], sharp.shape[:2])
        if size is not None:
            blurred, sharp = resize_image(blurred, size), resize_image(sharp, size)
        elif data["A"] and blurred.shape != data["A"][0].shape:
            first = data["A_paths"][0]
            raise DeblurGANError(
                f"{blurred_path} is {blurred.shape[1]}x{blurred.shape[0]} but {first} is "
                f"{data['A'][0].shape[1]}x{data['A'][0].shape[0]}: size=None needs equal sizes; "
                "pass size=(height, width)"
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


# --------------------------------------------------------------------------------------------------
# GOPRO_Large reorganisation


_GOPRO_LAYOUT = "expected {root}/{{train,test}}/<scene>/{{blur,blur_gamma,sharp}}/<frame>.png (GOPRO_Large)"


def _frames(folder):
    return {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}


def _gopro_jobs(dir_in, blur_key):
    """Lists ``(source, target_relative_path)`` for every frame, checking the layout first."""
    layout = _GOPRO_LAYOUT.format(root=dir_in)
    if not dir_in.is_dir():
        raise DeblurGANError(f"{dir_in}: no such folder; {layout}")
    splits = [split for split in ("train", "test") if (dir_in / split).is_dir()]
    if not splits:
        if (dir_in / "blur").is_dir() or any((p / blur_key).is_dir() for p in dir_in.iterdir() if p.is_dir()):
            raise DeblurGANError(
                f"{dir_in}: looks like a scene or split folder, not GOPRO_Large itself; pass its parent "
                f"folder as --dir_in ({layout})"
            )
        raise DeblurGANError(f"{dir_in}: no train/ or test/ folder; {layout}")
    jobs = {}
    for split in splits:
        scenes = sorted(p for p in (dir_in / split).iterdir() if p.is_dir())
        if not scenes:
            raise DeblurGANError(f"{dir_in / split}: no scene folders; {layout}")
        split_jobs = []
        for scene in scenes:
            blur_dir, sharp_dir = scene / blur_key, scene / "sharp"
            for folder in (blur_dir, sharp_dir):
                if not folder.is_dir():
                    raise DeblurGANError(f"{folder}: missing; {layout}")
            blurred, sharp = _frames(blur_dir), _frames(sharp_dir)
            unmatched = sorted(set(blurred) ^ set(sharp))
            if unmatched:
                listed = ", ".join(unmatched[:_MAX_LISTED])
                raise DeblurGANError(
                    f"{scene}: {len(unmatched)} frames are not in both {blur_key}/ and sharp/ ({listed}); "
                    "re-extract this scene from the GOPRO archive"
                )
            for frame in sorted(blurred):
                name = f"{scene.name}_{frame}"
                split_jobs.append((blurred[frame], Path(split, "A", name)))
                split_jobs.append((sharp[frame], Path(split, "B", name)))
        jobs[split] = split_jobs
    return jobs


def _place_file(source, target, link):
    """Copies (or hard-links) ``source`` to ``target`` atomically; never touches ``source``."""
    with atomic_path(target) as tmp:
        if link:
            try:
                os.link(source, tmp)
            except OSError as error:
                raise DeblurGANError(
                    f"cannot hard-link {source} into {target.parent} ({error.strerror}); --link needs "
                    "--dir_out on the same filesystem as --dir_in; drop --link to copy"
                ) from None
        else:
            shutil.copyfile(source, tmp)


def organize_gopro(dir_in, dir_out, blur_key="blur", link=False, progress=True):
    """Rearranges GOPRO_Large into ``dir_out/{train,test}/{A,B}/<scene>_<frame>.png``.

    ``A`` gets the frames of ``blur_key`` (``blur``, or ``blur_gamma`` for the gamma-corrected
    blur), ``B`` the sharp frames. Names are prefixed with the scene so they are unique across
    scenes. Inputs are never modified; existing outputs with the same names are replaced.

    Args:
        dir_in: the extracted GOPRO_Large folder.
        dir_out: destination folder (created).
        blur_key: ``"blur"`` or ``"blur_gamma"``.
        link: hard-link instead of copying (same filesystem only; saves the disk space).
        progress: show a tqdm bar.

    Returns:
        dict split -> number of pairs written.

    Example:
        >>> organize_gopro("GOPRO_Large", "images/gopro")   # doctest: +SKIP
        {'train': 2103, 'test': 1111}
    """
    from tqdm import tqdm

    if blur_key not in ("blur", "blur_gamma"):
        raise DeblurGANError(f"--blur_key {blur_key!r}: choose blur or blur_gamma")
    dir_in, dir_out = Path(dir_in), Path(dir_out)
    if dir_in.is_dir() and dir_out.resolve().is_relative_to(dir_in.resolve()):
        raise DeblurGANError(f"--dir_out {dir_out} is inside --dir_in {dir_in}; choose a folder outside it")
    jobs = _gopro_jobs(dir_in, blur_key)
    total = sum(len(split_jobs) for split_jobs in jobs.values())
    with tqdm(total=total, desc="organizing GOPRO", unit="file", disable=not progress) as bar:
        for split_jobs in jobs.values():
            for source, relative in split_jobs:
                _place_file(source, dir_out / relative, link)
                bar.update(1)
    return {split: len(split_jobs) // 2 for split, split_jobs in jobs.items()}
