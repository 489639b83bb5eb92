"""Forward time of the full default generator (fp32, inference, batch 1) on a few input sizes.

Prints one row per size: backend, CPU threads, input shape, median seconds over ``--runs`` calls
after ``--warmup`` calls (the first call traces/compiles the graph and is never counted).

Example (the issue's 2-core CPU figure):
    taskset -c 0,1 python benchmarks/bench_generator.py --threads 2
    KERAS_BACKEND=jax taskset -c 0,1 python benchmarks/bench_generator.py --threads 2
"""

import os
import statistics
import time

import click


def _limit_threads(threads):
    """Caps the math libraries' thread pools; must run before TensorFlow, JAX or torch import.

    JAX (XLA) has no thread-count setting: pin the process instead (``taskset -c 0,1``).
    """
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _configure_backend(threads):
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
    return backend


def _time_forward(generator, height, width, warmup, runs):
    import numpy as np

    x = np.random.default_rng(0).uniform(-1, 1, (1, height, width, 3)).astype("float32")
    for _ in range(warmup):
        generator.predict_on_batch(x)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        generator.predict_on_batch(x)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), min(seconds)


def _sizes(context, parameter, values):
    """``WIDTHxHEIGHT`` strings -> ``(width, height)`` pairs, each side a positive multiple of 4."""
    sizes = []
    for value in values:
        try:
            width, height = (int(v) for v in value.lower().split("x"))
        except ValueError:
            raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT (e.g. 1280x720)") from None
        if width < 4 or height < 4 or width % 4 or height % 4:
            raise click.BadParameter(f"{value}: the generator needs both sides positive multiples of 4")
        sizes.append((width, height))
    return sizes


@click.command()
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="CPU threads for the math libraries.")
@click.option(
    "--size", "sizes", multiple=True, default=("256x256", "1280x720"), show_default=True, callback=_sizes,
    help="WIDTHxHEIGHT, repeatable; both divisible by 4.",
)
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=5, show_default=True)
def main(threads, sizes, warmup, runs):
    """Times the full generator's forward pass."""
    _limit_threads(threads)
    backend = _configure_backend(threads)
    import deblurgan

    generator = deblurgan.generator_model()
    print(f"generator: {generator.count_params():,} parameters, fp32, batch 1, "
          f"median of {runs} after {warmup} warm-up; cores visible: {len(os.sched_getaffinity(0))}")
    print(f"{'backend':<11} {'threads':>7} {'input (HxWxC)':>15} {'median s':>9} {'min s':>7}")
    for width, height in sizes:
        median, fastest = _time_forward(generator, height, width, warmup, runs)
        print(f"{backend:<11} {threads:>7} {f'{height}x{width}x3':>15} {median:>9.3f} {fastest:>7.3f}")


if __name__ == "__main__":
    main()
