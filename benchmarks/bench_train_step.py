"""Seconds per content-only training step, side by side: TensorFlow (XLA on and off) and JAX, fp32
and mixed bf16, per batch size, against the same step written in plain PyTorch.

    python benchmarks/bench_train_step.py                       # the full grid: batch 4, 8, 16 at 128
    python benchmarks/bench_train_step.py --batch_sizes 4 --runs 2

The step is what ``scripts/train.py --gan_mode none --content_loss l1`` runs per batch: the full-size
generator in the standing run's variant (``norm none, output_mode clip, dropout_rate 0,
zero_init_output``; 11,378,179 parameters), L1 content loss x 100, Adam, built by
``deblurgan.training_loop.build_trainer`` with ``--precision`` and ``--jit_compile``. The PyTorch
reference (``torch_reference.py``) is the same network, loss and optimizer, eager, in fp32 and with
``torch.autocast`` to bf16 (the speed ratio is against its fp32 row). Each
configuration runs in its own process (the Keras backend is fixed per process): the first step
(tracing and compiling) and ``--warmup`` more are untimed, then the median of ``--runs`` steps on
the same random batch. Image-steps/s = batch / seconds per step. The CPU flags that decide bf16
speed and the load average (other processes on the machine) are printed with the table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from deblurgan.precision import describe_cpu  # noqa: E402

STANDING_VARIANT = dict(norm="none", output_mode="clip", dropout_rate=0.0, zero_init_output=True)


def keras_step_times(batch_size, crop, precision, jit_compile, warmup, runs):
    """(first-step seconds, [seconds per timed step]) of this package's trainer, in this process."""
    from deblurgan.config import TrainingConfig
    from deblurgan.training_loop import build_trainer, resolve

    config = TrainingConfig.from_flags(
        gan_mode="none", content_loss="l1", batch_size=batch_size, crop_size=crop, precision=precision,
        jit_compile=jit_compile, **STANDING_VARIANT,
    )  # fmt: skip
    trainer = build_trainer(resolve(config))
    rng = np.random.default_rng(0)
    sharp = rng.uniform(-1, 1, (batch_size, crop, crop, 3)).astype("float32")
    blurred = np.clip(sharp + rng.normal(0, 0.1, sharp.shape), -1, 1).astype("float32")
    return _time_steps(lambda: trainer.train_on_batch(blurred, sharp), warmup, runs)


def torch_step_times(batch_size, crop, precision, warmup, runs):
    """The same step in plain PyTorch: the reference network, L1 x 100, Adam 1e-4, eager; mixed bf16
    is ``torch.autocast`` (weights and optimizer stay fp32, as in Keras' mixed policy)."""
    import torch
    from torch_reference import torch_generator

    torch.manual_seed(0)
    generator = torch_generator(norm=False, dropout_rate=0.0)
    torch.nn.init.zeros_(generator.tail[-2].weight)  # zero_init_output, as in the Keras variant
    torch.nn.init.zeros_(generator.tail[-2].bias)
    optimizer = torch.optim.Adam(generator.parameters(), 1e-4, betas=(0.9, 0.999), eps=1e-8)
    sharp = torch.rand(batch_size, 3, crop, crop) * 2 - 1
    blurred = (sharp + 0.1 * torch.randn_like(sharp)).clamp(-1, 1)

    def step():
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "mixed_bfloat16"):
            restored = generator(blurred)
        loss = 100 * (restored.float() - sharp).abs().mean()
        loss.backward()
        optimizer.step()
        return float(loss)

    return _time_steps(step, warmup, runs)


def _time_steps(step, warmup, runs):
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return first, times


def child(args):
    """One configuration, in this process; prints one JSON line."""
    if args.engine == "torch":
        first, times = torch_step_times(args.batch_size, args.crop, args.precision, args.warmup, args.runs)
    else:
        jit = {"on": True, "off": False, "auto": None}[args.jit]
        first, times = keras_step_times(
            args.batch_size, args.crop, args.precision, jit, args.warmup, args.runs
        )
    print(json.dumps({"first_seconds": first, "seconds": statistics.median(times), "all_seconds": times}))


def configurations(args):
    """(engine, jit, precision, batch size) of the grid, batch size outermost."""
    rows = []
    for batch_size in _ints(args.batch_sizes):
        for backend in args.backends.split(","):
            jits = ("off", "on") if backend == "tensorflow" else ("on",)
            for precision in args.precisions.split(","):
                rows += [(backend, jit, precision, batch_size) for jit in jits]
        if args.torch_reference:
            rows += [("torch", "off", precision, batch_size) for precision in args.precisions.split(",")]
    return rows


def run_configuration(engine, jit, precision, batch_size, args):
    """The child's result dict, or ``{"error": last line}`` when it failed."""
    command = [
        sys.executable, __file__, "--child", "--engine", engine, "--jit", jit, "--precision", precision,
        "--batch_size", str(batch_size), "--crop", str(args.crop), "--warmup", str(args.warmup),
        "--runs", str(args.runs),
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if engine != "torch":
        env["KERAS_BACKEND"] = engine
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = _parser()
    args = parser.parse_args()
    if args.child:
        return child(args)
    _check_requests(parser, args)
    print(f"CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs; flags: {describe_cpu()}")
    print(f"load average at start: {_load()}")
    print(
        f"content-only step (gan_mode none, L1, generator {STANDING_VARIANT}), crop {args.crop}, "
        f"median of {args.runs} after {1 + args.warmup} untimed"
    )
    print(f"{'engine':<11}{'XLA':<5}{'precision':<16}{'batch':>5}{'s/step':>9}", end="")
    print(f"{'img-steps/s':>13}{'1st step s':>12}")
    results = []
    for engine, jit, precision, batch_size in configurations(args):
        result = run_configuration(engine, jit, precision, batch_size, args)
        results.append(((engine, jit, precision, batch_size), result))
        figures = f"  failed: {result.get('error')}"
        if "seconds" in result:
            seconds, first = result["seconds"], result["first_seconds"]
            figures = f"{seconds:>9.2f}{batch_size / seconds:>13.2f}{first:>12.1f}"
        print(f"{engine:<11}{jit:<5}{precision:<16}{batch_size:>5}{figures}", flush=True)
    print(f"load average at end: {_load()}")
    print_markdown(results)
    if any("seconds" not in r for _, r in results):
        sys.exit(1)


def print_markdown(results):
    """The table for benchmarks/README.md, with each step's speed relative to PyTorch fp32's at its batch."""
    reference = [(key, r) for key, r in results if key[:3] == ("torch", "off", "float32")]
    torch_seconds = {key[3]: r["seconds"] for key, r in reference if "seconds" in r}
    print(f"\nflags: {describe_cpu()}\n")
    print("| engine | XLA | precision | batch | s/step | image-steps/s | PyTorch s/step / this |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (engine, jit, precision, batch_size), r in results:
        if "seconds" not in r:
            print(f"| {engine} | {jit} | {precision} | {batch_size} | failed | | |")
            continue
        ratio = torch_seconds.get(batch_size)
        ratio = f"{ratio / r['seconds']:.2f}" if ratio else ""
        print(
            f"| {engine} | {jit} | {precision} | {batch_size} | {r['seconds']:.2f} | "
            f"{batch_size / r['seconds']:.2f} | {ratio} |"
        )


def _parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="tensorflow,jax", help="Keras backends, comma-separated.")
    parser.add_argument("--batch_sizes", default="4,8,16")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5, help="Timed steps per configuration (median).")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed steps after the first.")
    parser.add_argument("--no_torch_reference", dest="torch_reference", action="store_false")
    # one configuration in this process (what the parent runs per row)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--jit", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--batch_size", type=int, default=4, help=argparse.SUPPRESS)
    return parser


def _check_requests(parser, args):
    """Values every configuration would fail on stop before the first one starts."""
    from deblurgan.training import PRECISIONS

    for option, known in (("backends", ("tensorflow", "jax")), ("precisions", PRECISIONS)):
        unknown = [v for v in getattr(args, option).split(",") if v not in known]
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    try:
        sizes = _ints(args.batch_sizes)
    except ValueError:
        sizes = [0]
    if not sizes or min(sizes) < 1:
        parser.error(f"--batch_sizes {args.batch_sizes}: give positive whole numbers, e.g. 4,8")
    if args.crop < 8 or args.crop % 4:  # the generator halves it twice
        parser.error(f"--crop {args.crop}: give a multiple of 4, at least 8")
    if args.runs < 1 or args.warmup < 0:
        parser.error(f"--runs {args.runs} --warmup {args.warmup}: at least 1 timed run and 0 warm-up runs")


def _ints(text):
    return [int(value) for value in text.split(",") if value]


def _load():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
