"""Inference speed, peak memory and bf16 accuracy of the full generator.

Prints, for fp32 and bf16: seconds per 1280x720 photo (one forward pass) and per 4000x3000 photo
(tiled under the default pixel budget), the peak resident memory of the process doing it, and how
far the bf16 output is from the fp32 output (PSNR between them, and the change in PSNR against the
sharp reference).

Each case runs in a fresh subprocess, so its peak memory (``ru_maxrss``, TensorFlow's runtime
included) is its own. Without ``--weight_path`` the generator has random weights with batch-norm
statistics calibrated on a synthetic photo (see ``calibrate_batch_norm``): speed and memory do not
depend on the weights; accuracy figures do, so prefer trained weights for those.

    python benchmarks/bench_inference.py                        # all cases
    python benchmarks/bench_inference.py --cases 720p --runs 3
    taskset -c 0,1 python benchmarks/bench_inference.py         # a 2-core CPU
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = {"720p": (720, 1280), "12mp": (3000, 4000)}


def synthetic_pair(height, width, seed=0):
    """A sharp textured photo in [0, 1] and a horizontally motion-blurred copy (15-pixel box)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    sharp = ndimage.zoom(coarse, (16, 16, 1), order=1)[:height, :width]
    sharp += rng.normal(0, 0.04, sharp.shape).astype(np.float32)
    sharp = np.clip(sharp, 0, 1)
    blurred = ndimage.uniform_filter1d(sharp, 15, axis=1, mode="reflect")
    return sharp, blurred


def calibrate_batch_norm(generator, image01):
    """Sets every batch-norm layer's moving statistics to those of its input on ``image01``.

    A freshly initialised generator has mean 0 / variance 1 statistics, so at inference its
    activations grow block after block and the tanh saturates: nothing like a trained network.
    Calibrating layer by layer (each on the already calibrated layers before it) gives the
    normalised activations a trained generator has, so precision comparisons are meaningful.
    """
    import keras

    batch = image01[None] * 2.0 - 1.0
    for layer in generator.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            probe = keras.Model(generator.inputs, layer.input)
            features = np.asarray(probe.predict_on_batch(batch), dtype=np.float64)
            layer.moving_mean.assign(features.mean(axis=(0, 1, 2)))
            layer.moving_variance.assign(features.var(axis=(0, 1, 2)))


def worker(args):
    """One case in this process: prints a JSON line with timings and peak memory."""
    import deblurgan
    from deblurgan.inference import deblur_array, with_precision

    if args.weight_path:
        generator = deblurgan.load_generator(args.weight_path)
    height, width = CASES[args.case]
    sharp, blurred = synthetic_pair(height, width)
    if not args.weight_path:
        import keras

        keras.utils.set_random_seed(0)
        generator = deblurgan.generator_model()
        calibrate_batch_norm(generator, synthetic_pair(256, 256, seed=1)[1])
    options = dict(precision=args.precision)
    # Warm-up traces the graph for the shape the timed runs use.
    start = time.perf_counter()
    model = with_precision(generator, args.precision)
    if args.case == "720p":
        deblur_array(generator, blurred, **options)
    else:
        from deblurgan.inference import DEFAULT_MAX_PIXELS

        side = int(DEFAULT_MAX_PIXELS**0.5) // 4 * 4
        deblur_array(generator, blurred[:side, :side], tile_size=side, **options)
    warmup = time.perf_counter() - start
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        restored = deblur_array(generator, blurred, **options)
        times.append(time.perf_counter() - start)
    if args.save:
        np.save(args.save, restored)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(json.dumps({
        "case": args.case, "precision": args.precision, "seconds": min(times), "all_seconds": times,
        "warmup_seconds": warmup, "peak_bytes": peak, "compute_dtype": model.layers[1].compute_dtype,
    }))


def run_case(case, precision, args, save):
    command = [sys.executable, __file__, "--worker", "--case", case, "--precision", precision,
               "--runs", str(args.runs), "--save", save]
    if args.weight_path:
        command += ["--weight_path", args.weight_path]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    if result.returncode != 0:
        sys.exit(f"{case} {precision} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weight_path", default=None, help="trained generator (default: random weights)")
    parser.add_argument("--cases", default="720p,12mp", help="comma-separated: 720p, 12mp")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per case (the best is reported)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from deblurgan.metrics import psnr

    print(f"CPU cores available: {len(os.sched_getaffinity(0))}; weights: {args.weight_path or 'random'}")
    print(f"{'case':<8}{'precision':<11}{'compute':<10}{'s/photo':>9}{'warm-up s':>11}{'peak GiB':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            outputs = {}
            for precision in args.precisions.split(","):
                save = str(Path(tmp) / f"{case}_{precision}.npy")
                r = run_case(case, precision, args, save)
                outputs[precision] = save
                print(f"{case:<8}{precision:<11}{r['compute_dtype']:<10}{r['seconds']:>9.2f}"
                      f"{r['warmup_seconds']:>11.2f}{r['peak_bytes'] / 2**30:>10.2f}", flush=True)
            if "fp32" in outputs and len(outputs) > 1:
                sharp, blurred = synthetic_pair(*CASES[case])
                full = np.load(outputs["fp32"]) * 255
                for precision, path in outputs.items():
                    if precision == "fp32":
                        continue
                    reduced = np.load(path) * 255
                    gap = psnr(sharp * 255, reduced) - psnr(sharp * 255, full)
                    print(f"{case} {precision} vs fp32: PSNR between outputs {psnr(full, reduced):.2f} dB; "
                          f"PSNR against the sharp image changes by {gap:+.3f} dB; "
                          f"max abs difference {np.abs(full - reduced).max():.2f}/255")


if __name__ == "__main__":
    main()
