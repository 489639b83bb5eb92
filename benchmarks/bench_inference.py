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
    python benchmarks/bench_inference.py --cases "" --engines keras,onnxruntime,openvino,torch

The engine table (``--engines``) times one 1280x720 photo per engine and precision (``fp32`` and
``auto``, which resolves to bf16 only where the CPU has it natively): this package's Keras path,
ONNX Runtime and OpenVINO on an export of the same generator, and the same network written
directly in PyTorch (``torch_reference.py``), each in a fresh process, after the CPU flags.
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
# The engine table times the default generator with random weights (speed does not depend on them),
# against the same network written in PyTorch.
ENGINE_NAMES = ("keras", "onnxruntime", "openvino", "torch")


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
    print(
        json.dumps(
            {
                "case": args.case,
                "precision": args.precision,
                "seconds": min(times),
                "all_seconds": times,
                "warmup_seconds": warmup,
                "peak_bytes": peak,
                "compute_dtype": model.layers[1].compute_dtype,
            }
        )
    )


TFLOP_PER_FRAME = 1.6  # 2 x 0.8 T multiply-adds of the default generator on 1280x720


def engine_worker(args):
    """Times one engine on the 720p photo in this process: prints a JSON line."""
    import deblurgan
    from deblurgan.inference import deblur_array
    from deblurgan.precision import resolve_precision

    precision = resolve_precision(args.precision)
    sharp, blurred = synthetic_pair(*CASES["720p"])
    if args.engine == "torch":
        run = _torch_runner(precision)
    else:
        import keras

        keras.utils.set_random_seed(0)
        generator = deblurgan.generator_model()
        calibrate_batch_norm(generator, synthetic_pair(256, 256, seed=1)[1])
        if args.engine != "keras":
            from deblurgan.engines import EXPORT_FORMATS, ExportedGenerator
            from deblurgan.export import export_generator

            fmt, suffix = EXPORT_FORMATS[args.engine]
            path = export_generator(generator, Path(args.save).with_suffix(suffix), format=fmt)
            generator = ExportedGenerator(generator, path, args.engine, precision)

        def run():
            return deblur_array(generator, blurred, precision=precision)

    start = time.perf_counter()
    run()
    warmup = time.perf_counter() - start
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "engine": args.engine,
                "precision": precision,
                "seconds": min(times),
                "warmup_seconds": warmup,
                "all_seconds": times,
            }
        )
    )


def _torch_runner(precision):
    """The PyTorch reference generator (random weights, eval mode) on the 720p photo."""
    import torch
    from torch_reference import torch_generator

    torch.manual_seed(0)
    model = torch_generator().eval()
    x = torch.rand(1, 3, *CASES["720p"]) * 2 - 1
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            return model(x)

    return run


def engine_table(args):
    """Prints seconds per 1280x720 photo per engine and precision, with the CPU's flags and peak."""
    from deblurgan.engines import ENGINES
    from deblurgan.errors import DeblurGANError
    from deblurgan.precision import describe_cpu, resolve_engine_precision, resolve_precision

    cores = len(os.sched_getaffinity(0))
    print(f"CPU: {_cpu_model()}; {cores} cores available; flags: {describe_cpu()}")
    resolved = {name: resolve_precision(name) for name in args.engine_precisions.split(",")}
    print(f"precision auto -> {resolve_precision('auto')} on this machine")
    peak = _peak_gflops(cores)
    if peak:
        print(
            f"fp32 peak ~{peak:.0f} GFLOP/s ({cores} cores x {_cpu_mhz():.0f} MHz, two FMA pipes); "
            f"{TFLOP_PER_FRAME} TFLOP per frame -> {TFLOP_PER_FRAME * 1000 / peak:.1f} s/photo at peak"
        )
    print(f"{'engine':<13}{'precision':<16}{'s/photo':>9}{'warm-up s':>11}{'GFLOP/s':>9}")
    seen = {}
    for engine in args.engines.split(","):
        for name in resolved:
            try:  # what the engine runs for this name: auto is fp32 on ONNX Runtime, int8 is there only
                precision = resolve_engine_precision(engine, name) if engine in ENGINES else resolved[name]
            except DeblurGANError:
                continue
            if engine == "torch" and name == "int8":
                continue
            label = name if name == precision else f"{name} (={precision})"
            if (engine, precision) not in seen:
                with tempfile.TemporaryDirectory() as tmp:
                    command = [
                        sys.executable,
                        __file__,
                        "--engine_worker",
                        "--engine",
                        engine,
                        "--precision",
                        precision,
                        "--runs",
                        str(args.runs),
                        "--save",
                        f"{tmp}/g",
                    ]
                    result = subprocess.run(command, capture_output=True, text=True)
                if result.returncode != 0:
                    sys.exit(f"{engine} {precision} failed:\n{result.stderr[-3000:]}")
                seen[engine, precision] = json.loads(result.stdout.strip().splitlines()[-1])
            r = seen[engine, precision]
            print(
                f"{engine:<13}{label:<16}{r['seconds']:>9.2f}{r['warmup_seconds']:>11.2f}"
                f"{TFLOP_PER_FRAME * 1000 / r['seconds']:>9.0f}",
                flush=True,
            )


def _cpu_mhz():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(float(line.split(":", 1)[1]) for line in f if line.startswith("cpu MHz"))
    except (OSError, StopIteration, ValueError):
        return 0.0


def _peak_gflops(cores):
    """Two 256-bit FMA pipes per core: 2 x 8 fp32 lanes x 2 FLOP per cycle (AVX-512: twice that)."""
    from deblurgan.precision import cpu_flags

    per_cycle = 64 if "avx512f" in cpu_flags() else 32
    return cores * _cpu_mhz() * per_cycle / 1000


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def run_case(case, precision, args, save):
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--case",
        case,
        "--precision",
        precision,
        "--runs",
        str(args.runs),
        "--save",
        save,
    ]
    if args.weight_path:
        command += ["--weight_path", args.weight_path]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    if result.returncode != 0:
        sys.exit(f"{case} {precision} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check_requests(parser, args):
    """Unknown cases, engines or precisions, and a missing weight file, stop before any timing."""
    from deblurgan.precision import PRECISION_CHOICES

    names = {"cases": CASES, "engines": ENGINE_NAMES, "precisions": PRECISION_CHOICES,
             "engine_precisions": PRECISION_CHOICES}  # fmt: skip
    for option, known in names.items():
        unknown = [v for v in getattr(args, option).split(",") if v and v not in known]
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    if not (args.cases or args.engines):
        parser.error("nothing to time: give --cases and/or --engines")
    if "int8" in args.precisions.split(","):  # the cases run on the Keras engine
        parser.error("--precisions int8: runs on the onnxruntime engine only; use --engines onnxruntime "
                     "--engine_precisions int8")  # fmt: skip
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: at least 1")
    if args.weight_path and not Path(args.weight_path).is_file():
        parser.error(f"--weight_path {args.weight_path}: no such file")
    if args.weight_path:  # a critic or a damaged file is one line here, not a child's traceback
        from deblurgan.checkpoints import load_generator
        from deblurgan.errors import DeblurGANError

        try:
            load_generator(args.weight_path)
        except DeblurGANError as error:
            parser.error(f"--weight_path {error}")  # the message starts with the path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weight_path", default=None, help="trained generator (default: random weights)")
    parser.add_argument("--cases", default="720p,12mp", help="comma-separated: 720p, 12mp")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per case (the best is reported)")
    parser.add_argument(
        "--engines", default="", help="comma-separated: keras, onnxruntime, openvino, torch (random weights)"
    )
    parser.add_argument("--engine_precisions", default="fp32,auto", help="precisions of the engine table")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine_worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.engine_worker:
        return engine_worker(args)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    _check_requests(parser, args)
    if args.engines:
        engine_table(args)
    if not args.cases:
        return
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
                print(
                    f"{case:<8}{precision:<11}{r['compute_dtype']:<10}{r['seconds']:>9.2f}"
                    f"{r['warmup_seconds']:>11.2f}{r['peak_bytes'] / 2**30:>10.2f}",
                    flush=True,
                )
            if "fp32" in outputs and len(outputs) > 1:
                sharp, blurred = synthetic_pair(*CASES[case])
                full = np.load(outputs["fp32"]) * 255
                for precision, path in outputs.items():
                    if precision == "fp32":
                        continue
                    reduced = np.load(path) * 255
                    gap = psnr(sharp * 255, reduced) - psnr(sharp * 255, full)
                    print(
                        f"{case} {precision} vs fp32: PSNR between outputs {psnr(full, reduced):.2f} dB; "
                        f"PSNR against the sharp image changes by {gap:+.3f} dB; "
                        f"max abs difference {np.abs(full - reduced).max():.2f}/255"
                    )


if __name__ == "__main__":
    main()
