"""What training over several processes adds per step, side by side with PyTorch (Gloo).

    python benchmarks/bench_processes.py                        # JAX, TensorFlow and PyTorch
    python benchmarks/bench_processes.py --backends jax --calls 500 --steps 3

Each engine runs as two processes on localhost, one CPU device each (as ``tests/test_multiprocess.py``
and ``scripts/train.py --num_processes 2``). They time:

- **the stop agreement** that ``scripts/train.py`` runs after every step of a multi-process run
  (``Replicas.agreed_stop``: one all-gather of one number, so that all processes stop after the
  same step); PyTorch's is ``torch.distributed.all_gather_into_tensor`` of one number over Gloo.
  The mean of ``--calls`` calls after ``--warmup`` untimed.
- **a content-only training step** of the full-size generator in the standing run's variant
  (``norm none, output_mode clip, dropout_rate 0``; L1 x 100, Adam) on a global batch of
  ``--batch_size`` ``--crop`` crops, half on each process, gradients averaged over both: this
  package's trainer (``build_trainer`` in ``Replicas.scope()``, as a run builds it) and PyTorch's
  ``DistributedDataParallel`` of ``torch_reference.py``'s network. The median of ``--steps`` steps
  after one untimed (tracing, compiling).

The agreement's share of a step is the figure that matters: on the CPU, a full-size step takes
seconds and the agreement milliseconds. Process 0's figures are printed, with the CPU flags and the
load average (other work on the machine moves every figure).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deblurgan.precision import describe_cpu  # noqa: E402

STANDING_VARIANT = dict(norm="none", output_mode="clip", dropout_rate=0.0)
ENGINES = ("jax", "tensorflow", "torch")


def keras_worker(args):
    """This process's figures for a Keras backend: the agreement's seconds per call, then a step's."""
    import numpy as np

    from deblurgan import distribution
    from deblurgan.config import TrainingConfig
    from deblurgan.training_loop import build_trainer, resolve

    replicas = distribution.start(
        coordinator_address=args.address, num_processes=2, process_id=args.process_id, timeout=120
    )
    agreement = _mean_seconds(lambda: replicas.agreed_stop(0), args.warmup, args.calls)
    config = TrainingConfig.from_flags(
        gan_mode="none", content_loss="l1", batch_size=args.batch_size, crop_size=args.crop,
        **STANDING_VARIANT,
    )  # fmt: skip
    with replicas.scope():
        trainer = build_trainer(resolve(config))
        blurred, sharp = _local_batch(np.random.default_rng(args.process_id), args, channels_last=True)
        steps = _step_seconds(lambda: trainer.train_on_batch(blurred, sharp), args.steps)
    return agreement, steps


def torch_worker(args):
    """The same figures in plain PyTorch: Gloo all-gather, DistributedDataParallel step."""
    import numpy as np
    import torch
    import torch.distributed as dist
    from torch_reference import torch_generator

    dist.init_process_group("gloo", init_method=f"tcp://{args.address}", rank=args.process_id, world_size=2)
    gathered, flag = torch.zeros(2, dtype=torch.int32), torch.zeros(1, dtype=torch.int32)

    def agree():
        dist.all_gather_into_tensor(gathered, flag)
        return int(gathered.max())

    agreement = _mean_seconds(agree, args.warmup, args.calls)
    torch.manual_seed(0)
    generator = torch.nn.parallel.DistributedDataParallel(torch_generator(norm=False, dropout_rate=0.0))
    optimizer = torch.optim.Adam(generator.parameters(), 1e-4, betas=(0.9, 0.999), eps=1e-8)
    blurred, sharp = (
        torch.from_numpy(a) for a in _local_batch(np.random.default_rng(args.process_id), args, False)
    )

    def step():
        optimizer.zero_grad()
        loss = 100 * (generator(blurred) - sharp).abs().mean()
        loss.backward()  # DDP averages the gradients over both processes here
        optimizer.step()
        return float(loss)

    steps = _step_seconds(step, args.steps)
    dist.destroy_process_group()
    return agreement, steps


def _local_batch(rng, args, channels_last):
    """This process's half of a global batch: (blurred, sharp) float32 in [-1, 1]."""
    shape = (args.batch_size // 2, args.crop, args.crop, 3)
    sharp = rng.uniform(-1, 1, shape).astype("float32")
    blurred = (sharp + rng.normal(0, 0.1, shape)).clip(-1, 1).astype("float32")
    if not channels_last:
        blurred, sharp = (a.transpose(0, 3, 1, 2).copy() for a in (blurred, sharp))
    return blurred, sharp


def _mean_seconds(call, warmup, calls):
    for _ in range(warmup):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def _step_seconds(step, steps):
    """(first step's seconds, median of ``steps`` more)."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def run_engine(engine, args):
    """Starts the engine's two processes; process 0's figures, or ``{"error": ...}``."""
    address = f"localhost:{_free_port()}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if engine != "torch":
        env["KERAS_BACKEND"] = engine
    options = [
        "--calls", str(args.calls), "--warmup", str(args.warmup), "--steps", str(args.steps),
        "--batch_size", str(args.batch_size), "--crop", str(args.crop),
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                engine,
                "--process_id",
                str(i),
                "--address",
                address,
                *options,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in (0, 1)
    ]
    outputs = [p.communicate(timeout=args.timeout) for p in processes]
    if any(p.returncode for p in processes):
        failed = next(out for p, out in zip(processes, outputs, strict=True) if p.returncode)
        return {"error": (failed[1].strip().splitlines() or ["no output"])[-1]}
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def _free_port():
    """A free port P with P + 1 free too (a TensorFlow worker i listens at P + i)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def _load():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main():
    parser = _parser()
    args = parser.parse_args()
    if args.worker:
        agreement, (first, step) = (torch_worker if args.worker == "torch" else keras_worker)(args)
        print(json.dumps({"agreement": agreement, "first_step": first, "step": step}))
        return
    engines = args.backends.split(",") + (["torch"] if args.torch_reference else [])
    _check_requests(parser, args)
    print(f"flags: {describe_cpu()}; {os.cpu_count()} logical CPUs; load average at start: {_load()}")
    print(
        f"two processes on localhost, one CPU device each; agreement: mean of {args.calls} calls after "
        f"{args.warmup}; step: full-size generator {STANDING_VARIANT}, L1, Adam, global batch "
        f"{args.batch_size} of {args.crop}x{args.crop}, median of {args.steps} after 1 untimed\n"
    )
    print("| engine | agreement ms/call | step s (first) | step s | agreement / step |")
    print("|---|---:|---:|---:|---:|")
    failed = False
    for engine in engines:
        result = run_engine(engine, args)
        if "error" in result:
            failed = True
            print(f"| {engine} | failed: {result['error'][:200]} | | | |", flush=True)
            continue
        share = result["agreement"] / result["step"]
        print(
            f"| {engine} | {1000 * result['agreement']:.2f} | {result['first_step']:.1f} | "
            f"{result['step']:.2f} | {100 * share:.2f}% |",
            flush=True,
        )
    print(f"\nload average at end: {_load()}")
    sys.exit(1 if failed else 0)


def _check_requests(parser, args):
    """Requests no engine could honour stop before the first one starts."""
    unknown = [b for b in args.backends.split(",") if b not in ("jax", "tensorflow")]
    if unknown:
        parser.error(f"--backends {args.backends}: unknown {', '.join(unknown)}; choose from jax, tensorflow")
    if args.batch_size < 2 or args.batch_size % 2:
        parser.error(f"--batch_size {args.batch_size}: give an even number (half on each process)")
    if args.crop < 8 or args.crop % 4:  # the generator halves it twice
        parser.error(f"--crop {args.crop}: give a multiple of 4, at least 8")
    if min(args.calls, args.steps) < 1 or args.warmup < 0:
        parser.error(f"--calls {args.calls} --steps {args.steps} --warmup {args.warmup}: 1, 1 and 0 at least")


def _parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="jax,tensorflow", help="Keras backends, comma-separated.")
    parser.add_argument("--no_torch_reference", dest="torch_reference", action="store_false")
    parser.add_argument("--calls", type=int, default=300, help="Timed agreement calls.")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed agreement calls first.")
    parser.add_argument("--steps", type=int, default=3, help="Timed training steps (median).")
    parser.add_argument("--batch_size", type=int, default=2, help="Global batch (half per process).")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds per engine.")
    # one process of an engine's pair (what the parent starts)
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--process_id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main()
