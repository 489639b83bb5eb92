"""Images per second of the streaming loaders, on generated 720p PNGs in a temporary folder.

Paired folders (``PairedImageDataset``): decoding a 1280x720 PNG dominates; the crop, flip and
scaling are cheap. Sharp photos blurred on the fly (``SharpPhotoDataset``): photos are decoded once
and cached, so the blur (FFT of the crop plus a kernel margin), noise and JPEG dominate. Compare the
figures with the training step's images per second: prefetching keeps up when they are higher.

Example:
    python benchmarks/bench_data.py --n_images 16 --workers 0 --workers 2 --workers 4
    python benchmarks/bench_data.py --on_the_fly_only

Other benchmarks can call :func:`measure_loader` (``from bench_data import measure_loader`` when
run from this folder).
"""

import tempfile
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageFilter

from deblurgan.datasets import PairedImageDataset, SharpPhotoDataset


def write_photo_like_pairs(folder, n_images=16, height=720, width=1280, seed=0):
    """Writes ``n_images`` PNG pairs whose compression resembles photos (smooth shapes + grain).

    Pure noise would not compress and would decode slower than real photos; a flat image faster.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    for side in ("A", "B"):
        (folder / side).mkdir(parents=True, exist_ok=True)
    for number in range(n_images):
        coarse = rng.integers(0, 256, (height // 40 + 1, width // 40 + 1, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.int16)
        grain = rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
        sharp = Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))
        sharp.save(folder / "B" / f"{number:04d}.png")
        sharp.filter(ImageFilter.BoxBlur(4)).save(folder / "A" / f"{number:04d}.png")
    return folder


def measure_loader(data_dir, batch_size=1, crop_size=256, resize=None, workers=2, epochs=1, prefetch=True):
    """Streams ``epochs`` epochs from ``data_dir`` and returns images (pairs) per second.

    Args:
        data_dir: folder with ``A/`` and ``B/``.
        workers: decoding threads for :meth:`PairedImageDataset.prefetch_iter`; 0 reads on demand.
        prefetch: False reads ``ds[i]`` in the calling thread (what a loop without prefetch sees).
    """
    ds = PairedImageDataset(
        data_dir, batch_size=batch_size, crop_size=crop_size, resize=resize, workers=workers,
        max_queue_size=max(8, 2 * workers),
    )
    n_pairs = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        if prefetch:
            batches = ds.prefetch_iter(epoch)
        else:
            ds.set_epoch(epoch)
            batches = (ds[i] for i in range(len(ds)))
        for blurred, _ in batches:
            n_pairs += len(blurred)
    return n_pairs / (time.perf_counter() - start)


def cpu_flags():
    """The CPU features that decide speed here (printed with every figure)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    flags = set(next((line for line in text.splitlines() if line.startswith("flags")), "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return ", ".join(f"{flag}={'yes' if flag in flags else 'no'}" for flag in wanted)


def measure_on_the_fly(sharp_dir, batch_size=8, crop_size=128, workers=2, samples_per_photo=4):
    """Images per second of ``SharpPhotoDataset.prefetch_iter`` over one epoch, photos already cached."""
    ds = SharpPhotoDataset(
        sharp_dir, batch_size=batch_size, crop_size=crop_size, samples_per_photo=samples_per_photo,
        workers=workers, max_queue_size=max(8, 2 * workers),
    )
    for source in range(len(ds.photos)):  # decoded once per run: leave it out of the steady rate
        ds.photo_pixels(source)
    start = time.perf_counter()
    n_images = sum(len(blurred) for blurred, _ in ds.prefetch_iter(0))
    return n_images / (time.perf_counter() - start)


def report_on_the_fly(sharp_dir, crop_sizes=(128, 256), workers_list=(1, 2), batch_size=8):
    for crop_size in crop_sizes:
        for workers in workers_list:
            rate = measure_on_the_fly(sharp_dir, batch_size, crop_size, workers)
            label = f"on the fly, crop {crop_size}, {workers} thread(s)"
            print(f"{label:>40}: {rate:6.1f} images/s")


@click.command()
@click.option("--n_images", default=16, show_default=True, type=click.IntRange(min=1),
              help="Generated pairs.")
@click.option("--height", default=720, show_default=True, type=click.IntRange(min=1))
@click.option("--width", default=1280, show_default=True, type=click.IntRange(min=1))
@click.option("--crop_size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Paired folders' crop.")
@click.option("--batch_size", default=1, show_default=True, type=click.IntRange(min=1),
              help="Paired folders' batch.")
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(min=1),
              help="Passes over the pairs per measurement.")
@click.option("--workers", "workers_list", multiple=True, type=click.IntRange(min=0), default=(0, 1, 2, 4),
              show_default=True, help="Paired folders' decoding threads (0: on demand); repeat.")
@click.option("--fly_crop_size", "fly_crop_sizes", multiple=True, type=click.IntRange(min=1),
              default=(128, 256), show_default=True, help="Sharp photos' crop (on the fly); repeat.")
@click.option("--fly_batch_size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Sharp photos' batch.")
@click.option("--fly_workers", "fly_workers_list", multiple=True, type=click.IntRange(min=0), default=(1, 2),
              show_default=True, help="Sharp photos' blurring threads; repeat.")
@click.option("--on_the_fly_only", is_flag=True, help="Only the SharpPhotoDataset figures.")
def main(n_images, height, width, crop_size, batch_size, epochs, workers_list, fly_crop_sizes, fly_batch_size,
         fly_workers_list, on_the_fly_only):
    """Prints the loaders' images/s for each number of decoding threads."""
    crops = [("--crop_size", crop_size)] + [("--fly_crop_size", crop) for crop in fly_crop_sizes]
    for flag, crop in crops:  # a smaller photo is read whole: not the rate asked for
        if crop > min(height, width):
            raise click.UsageError(f"{flag} {crop}: larger than the {width}x{height} photos")
    batches = {"--batch_size": (batch_size, n_images), "--fly_batch_size": (fly_batch_size, 4 * n_images)}
    for flag, (batch, samples) in batches.items():  # else an epoch has no batch and the rate reads 0
        if batch > samples:
            raise click.UsageError(f"{flag} {batch}: more than the {samples} samples of an epoch")
    print(f"CPU flags: {cpu_flags()}")
    with tempfile.TemporaryDirectory() as folder:
        write_photo_like_pairs(folder, n_images, height, width)
        print(f"SharpPhotoDataset: {n_images} sharp {width}x{height} photos, batch {fly_batch_size}, default "
              "blur (noise, JPEG 70-95), photos cached")
        report_on_the_fly(Path(folder) / "B", fly_crop_sizes, fly_workers_list, fly_batch_size)
        if on_the_fly_only:
            return
        size_mb = sum(p.stat().st_size for p in Path(folder).rglob("*.png")) / 2**20
        print(f"{n_images} PNG pairs {width}x{height} ({size_mb:.1f} MiB), crop {crop_size}, "
              f"batch {batch_size}")
        measure_loader(folder, batch_size, crop_size, workers=0, epochs=1, prefetch=False)  # warm the cache
        for workers in workers_list:
            rate = measure_loader(folder, batch_size, crop_size, workers=workers, epochs=epochs)
            label = "on demand (ds[i])" if workers == 0 else f"prefetch_iter, {workers} threads"
            print(f"{label:>32}: {rate:6.1f} images/s")


if __name__ == "__main__":
    main()
