"""Engines that run the generator: Keras itself, ONNX Runtime or OpenVINO.

``load_engine(weight_path, engine)`` returns something :func:`deblurgan.inference.deblur_array`
accepts as its generator. For ``onnxruntime`` and ``openvino`` that is an :class:`ExportedGenerator`:
the weights are exported once (:mod:`deblurgan.export`) into a cache folder, under a name made
from the SHA-256 of the weight file, so a changed file is exported again and an unchanged one is
not. The Keras model stays loaded beside it because tiling reads its layers (receptive field).

Cache folder: ``$DEBLURGAN_CACHE`` or ``~/.cache/deblurgan``.

Precision: the ``keras`` engine runs bf16/fp16 through Keras' mixed precision. OpenVINO takes
``fp32``/``bf16``/``fp16`` as its inference-precision hint. ONNX Runtime runs fp32, so ``auto``
means fp32 there, or ``int8``: a quantisation of the export (:mod:`deblurgan.quantize`), cached
beside it.
"""

import contextlib
import ctypes
import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from deblurgan.errors import DeblurGANError
from deblurgan.export import export_generator
from deblurgan.inference import load_inference_generator
from deblurgan.multiscale_model import finest_output
from deblurgan.precision import resolve_engine_precision
from deblurgan.pretrained import first_line

log = logging.getLogger(__name__)

ENGINES = ("keras", "onnxruntime", "openvino")
EXPORT_FORMATS = {"onnxruntime": ("onnx", ".onnx"), "openvino": ("openvino", ".xml")}
_OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def cache_dir():
    """Where exports are cached: ``$DEBLURGAN_CACHE`` or ``~/.cache/deblurgan``."""
    return Path(os.environ.get("DEBLURGAN_CACHE") or Path.home() / ".cache" / "deblurgan")


def weights_hash(weight_path):
    """The first 16 hex digits of the SHA-256 of the weight file."""
    digest = hashlib.sha256()
    with open(weight_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def cached_export(weight_path, engine, generator=None):
    """The export of ``weight_path`` for ``engine``, written on first use; returns its path."""
    format, suffix = EXPORT_FORMATS[engine]
    path = cache_dir() / f"generator-{weights_hash(weight_path)}{suffix}"
    if not path.exists():
        log.warning("exporting %s for %s to %s (once per weight file)", weight_path, engine, path)
        generator = generator if generator is not None else load_inference_generator(weight_path)
        try:
            export_generator(generator, path, format=format)
        except OSError as error:
            raise DeblurGANError(
                f"cannot write the {engine} export to {path.parent} ({error.strerror}); "
                "set DEBLURGAN_CACHE to a writable folder"
            ) from None
    return path


def load_engine(weight_path, engine="keras", precision=None):
    """The generator at ``weight_path`` ready to run on ``engine`` (one of :data:`ENGINES`).

    ``precision``, when given, is only checked against the engine here, before any export, so that
    a script fails at once rather than on every photo.
    """
    if engine not in ENGINES:
        raise DeblurGANError(f"engine={engine!r} is not one of {', '.join(ENGINES)}", parameter="engine")
    if precision is not None:
        resolve_engine_precision(engine, precision)
    generator = finest_output(load_inference_generator(weight_path))  # exports hold one output
    if engine == "keras":
        return generator
    return ExportedGenerator(generator, cached_export(weight_path, engine, generator), engine)


class ExportedGenerator:
    """An exported generator run by ONNX Runtime or OpenVINO, shaped like a Keras model for
    :func:`deblurgan.inference.deblur_array`: ``predict_on_batch``, ``layers`` and ``with_precision``.

    Args:
        generator: the Keras generator the file was exported from (its layers describe the network).
        path: the ``.onnx`` or ``.xml`` file.
        engine: ``"onnxruntime"`` or ``"openvino"``.
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"``.
    """

    def __init__(self, generator, path, engine, precision="fp32"):
        self.generator = generator
        self.path = Path(path)
        self.engine = engine
        self.precision = resolve_engine_precision(engine, precision)
        self._variants = {self.precision: self}
        if engine == "onnxruntime" and self.precision == "int8":
            self.path = _int8_export(self.path)
        try:
            self._load()
        except ImportError:
            raise
        except Exception as error:  # a damaged cached export (an interrupted write, a full disk)
            raise DeblurGANError(
                f"{self.path}: {engine} cannot load this export ({first_line(error)}); delete it (an "
                "export in the cache is written again on the next run)"
            ) from None

    def _load(self):
        if self.engine == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3  # the CPU provider's "fallback" notes are not for users
            self._session = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
            self._input = self._session.get_inputs()[0].name
        else:
            import openvino

            config = {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISIONS[self.precision]}
            with _signal_stack_kept():
                self._compiled = openvino.Core().compile_model(str(self.path), "CPU", config)

    @property
    def layers(self):
        return self.generator.layers

    def with_precision(self, precision):
        """This engine in another precision (compiled once, then reused)."""
        precision = resolve_engine_precision(self.engine, precision)
        if precision not in self._variants:
            variant = ExportedGenerator(self.generator, self.path, self.engine, precision)
            variant._variants = self._variants
            self._variants[precision] = variant
        return self._variants[precision]

    def predict_on_batch(self, batch):
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.engine == "onnxruntime":
            return self._session.run(None, {self._input: batch})[0]
        return self._compiled(batch)[0]


class _SignalStack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@contextlib.contextmanager
def _signal_stack_kept():
    """Gives the thread back its alternate signal stack after OpenVINO's CPU plugin set its own.

    The plugin (2026.4) installs a stack of its own while compiling and puts the previous one back
    when the compiled model is freed; two models freed in creation order leave the thread on an
    unmapped stack, and the next signal (Ctrl-C, SIGTERM) kills the process with SIGSEGV.
    """
    if not sys.platform.startswith("linux"):  # stack_t's field order is glibc's
        yield
        return
    sigaltstack = ctypes.CDLL(None).sigaltstack
    saved = _SignalStack()
    sigaltstack(None, ctypes.byref(saved))
    try:
        yield
    finally:
        sigaltstack(ctypes.byref(saved), None)


def _int8_export(fp32_path):
    """The int8 quantisation of the ONNX export at ``fp32_path``, written beside it on first use."""
    from deblurgan.quantize import quantize_onnx

    path = fp32_path.with_suffix(".int8.onnx")
    if not path.exists():
        quantize_onnx(fp32_path, path)
    return path
