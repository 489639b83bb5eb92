"""Peak memory of ``scripts/deblur.py`` on one huge photo, in bytes per pixel.

    python benchmarks/bench_huge_photo.py                      # 48 Mpx, a small random generator
    python benchmarks/bench_huge_photo.py --megapixels 192 --weight_path weights/generator.h5

Writes a synthetic PNG of the given size, deblurs it with ``scripts/deblur.py`` in a subprocess
and prints that process's peak resident memory (``ru_maxrss``), the peak of the same command on a
photo of ``--max_pixels`` (one forward pass at the full budget: start-up, the framework and the
network's working memory), and the difference per extra pixel: what the photo itself costs. By
default the generator is a small random one (``n_filters=8, n_blocks=1``), so the run takes
seconds per megapixel and the figure isolates the photo's own memory; the full generator adds its
working memory (bounded by ``--max_pixels``, about 4 GiB at the default 1.6 Mpx) and takes
minutes per megapixel on a CPU.
There is no PyTorch figure beside it: the reference implementation has no tiled path and would
need the whole photo's activations at once.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deblurgan.precision import describe_cpu  # noqa: E402


def _synthetic_photo(path, height, width):
    """A smooth random photo, written in row bands so this process stays small."""
    rng = np.random.default_rng(0)
    image = Image.new("RGB", (width, height))
    for top in range(0, height, 1024):
        rows = min(1024, height - top)
        coarse = rng.integers(0, 256, (rows // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
        band = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:rows, :width]
        image.paste(Image.fromarray(np.ascontiguousarray(band)), (0, top))
    image.save(path, compress_level=1)


def _peak_of(command):
    """(seconds, peak resident bytes) of ``command`` run in a fresh process; deblur.py's own error
    line ends this script."""
    start = time.perf_counter()
    runner = "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    runner += "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
    out = subprocess.run([sys.executable, "-c", runner, *command], capture_output=True, text=True)
    if out.returncode:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        sys.exit(f"scripts/deblur.py failed: {lines[-1]}")
    return time.perf_counter() - start, int(out.stdout.split()[-1]) * 1024  # kB on Linux


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text}: must be above 0")
        return value

    return parse


def main():
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--megapixels", type=_positive(float), default=48.0, help="Size of the photo (4:3).")
    parser.add_argument("--weight_path", help="Generator to use (default: a small random one).")
    parser.add_argument(
        "--max_pixels", type=_positive(int), default=1_600_000, help="deblur.py's pixel budget."
    )
    args = parser.parse_args()
    if args.weight_path and not Path(args.weight_path).is_file():
        parser.error(f"--weight_path {args.weight_path}: no such file")
    width = int(round((args.megapixels * 1e6 * 4 / 3) ** 0.5 / 4) * 4)
    height = int(round(args.megapixels * 1e6 / max(width, 1) / 4) * 4)
    side = int(args.max_pixels**0.5) // 4 * 4
    if min(side, height, width) < 16:
        parser.error("--megapixels and --max_pixels: at least 16x16 pixels each (256 pixels)")
    print(describe_cpu())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = args.weight_path
        if weights is None:
            from deblurgan import generator_model, save_model

            weights = save_model(generator_model(n_filters=8, n_blocks=1), tmp / "small.h5")
        for name, (h, w) in {"small": (side, side), "huge": (height, width)}.items():
            (tmp / name).mkdir()
            _synthetic_photo(tmp / name / "photo.png", h, w)
        peaks = {}
        for name in ("small", "huge"):
            command = [sys.executable, str(REPO / "scripts" / "deblur.py"), "--weight_path", str(weights)]
            command += ["--input_dir", str(tmp / name), "--output_dir", str(tmp / f"{name}_out")]
            command += ["--max_pixels", str(args.max_pixels), "--precision", "fp32"]
            peaks[name] = _peak_of(command)
    pixels = height * width
    (_, small), (seconds, huge) = peaks["small"], peaks["huge"]
    generator = args.weight_path or "small random"
    print(f"photo {width}x{height} ({pixels / 1e6:.1f} Mpx), generator {generator}")
    print(f"peak resident memory: {huge / 2**30:.2f} GiB ({seconds:.0f} s)")
    print(f"on a {side}x{side} photo (one pass at the budget): {small / 2**30:.2f} GiB")
    print(f"the photo's own cost: {(huge - small) / (pixels - side * side):.1f} bytes per pixel")


if __name__ == "__main__":
    main()
