"""``precision="auto"``: bf16 only where it is faster: a CPU with AMX, or a GPU.

Where bf16 is emulated (CPUs with AVX2 but without AVX512_BF16/AMX), a bf16 forward pass runs
several times slower than fp32. AVX512_BF16 without AMX is not enough either: on such a CPU (2
cores, 2026-12-01, benchmarks/README.md) bf16 took 1.1 to 1.6 times fp32's time on every engine
(Keras, OpenVINO, the PyTorch reference). So ``auto`` picks fp32 there too.
"""

import functools
import logging

from deblurgan.errors import DeblurGANError

log = logging.getLogger(__name__)

PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16", "int8")  # int8: the onnxruntime engine
# /proc/cpuinfo flags meaning bf16 convolutions run faster than fp32 (AMX's tile multiply).
NATIVE_BF16_FLAGS = ("amx_bf16",)
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@functools.cache
def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags (a frozenset; empty where /proc/cpuinfo is missing, e.g. on macOS)."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_gpu():
    """Whether the Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def native_bf16():
    """Whether bf16 is native here: a GPU, or a CPU flag in :data:`NATIVE_BF16_FLAGS`."""
    return has_gpu() or any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def resolve_precision(precision):
    """``"auto"`` -> ``"bf16"`` where :func:`native_bf16`, else ``"fp32"``; other values unchanged."""
    if precision != "auto":
        return precision
    chosen = "bf16" if native_bf16() else "fp32"
    log.info("precision auto: %s", chosen)
    return chosen


def describe_cpu():
    """One line with the flags that decide speed, e.g. ``avx2 fma (no avx512f avx512_bf16 ...)``."""
    flags = cpu_flags()
    present = [flag for flag in REPORTED_FLAGS if flag in flags]
    absent = [flag for flag in REPORTED_FLAGS if flag not in flags]
    return " ".join(present) + (f" (no {' '.join(absent)})" if absent else "")


def resolve_engine_precision(engine, precision):
    """What ``engine`` (``keras``, ``onnxruntime`` or ``openvino``) runs for ``precision``:
    :func:`resolve_precision`, except that ``auto`` is fp32 on ONNX Runtime (fp32 or int8 there),
    and int8 (a quantised ONNX export, :mod:`deblurgan.quantize`) exists on ONNX Runtime only."""
    if engine == "onnxruntime" and precision == "auto":
        return "fp32"
    if precision == "int8" and engine != "onnxruntime":
        message = f"precision=int8: runs on the onnxruntime engine only, not {engine}"
        raise DeblurGANError(message, parameter="precision")
    if engine == "onnxruntime" and precision not in ("fp32", "int8"):
        raise DeblurGANError(
            f"precision={precision}: the onnxruntime engine runs fp32 or int8; use "
            "engine=openvino or engine=keras for bf16/fp16",
            parameter="precision",
            mentions=("engine",),
        )
    return resolve_precision(precision)
