"""Exporting a generator for serving stacks: Keras, TensorFlow SavedModel, ONNX and OpenVINO IR.

Every export takes and returns the generator's own tensors: float32 NHWC in [-1, 1], with a
dynamic batch, height and width (any multiple of 4; :func:`deblurgan.inference.deblur_array` pads
to that). Keras' own ``Model.export`` does the conversion (tf2onnx for ONNX, ``ov.convert_model``
for OpenVINO), traced through TensorFlow, so exports need the TensorFlow backend.

* ``keras``: a ``.keras`` file (needs deblurgan to load, like any file with custom layers).
* ``saved_model``: a folder with a ``serving_default`` signature; loads with
  ``tf.saved_model.load`` where deblurgan is not installed.
* ``onnx``: one ``.onnx`` file, checked with onnxruntime after writing.
* ``openvino``: an IR, ``name.xml`` with ``name.bin`` beside it, float32 weights.

Outputs appear complete or not at all: each is written under a temporary name beside the target
and renamed into place.
"""

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np

from deblurgan.checkpoints import check_not_an_input, load_generator, save_model
from deblurgan.errors import DeblurGANError

log = logging.getLogger(__name__)

FORMATS = ("keras", "saved_model", "onnx", "openvino")
SUFFIXES = {"keras": ".keras", "saved_model": "", "onnx": ".onnx", "openvino": ".xml"}
# What each format needs beyond the base install, and the extra that brings it.
REQUIREMENTS = {"onnx": ("tf2onnx", "onnxruntime"), "openvino": ("openvino",)}
INPUT_NAME = "blurred"
KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "openvino": "openvino"}


def input_spec():
    """Batch, height and width dynamic, three channels, float32."""
    return [keras.InputSpec(shape=(None, None, None, 3), dtype="float32", name=INPUT_NAME)]


def export_generator(generator, output, format="saved_model", overwrite=False):
    """Writes ``generator`` to ``output`` in ``format`` (one of :data:`FORMATS`); returns the path.

    Args:
        generator: a float32 DeblurGAN generator (a ``keras.Model``).
        output: the file written (``g.keras``, ``g.onnx``, ``g.xml`` with ``g.bin`` beside it) or,
            for ``saved_model``, the folder.
        format: ``"keras"``, ``"saved_model"``, ``"onnx"`` or ``"openvino"``.
        overwrite: replace an existing ``output`` that is an earlier export of ``format``; any
            other file or folder there is never replaced.

    Example:
        >>> export_generator(generator_model(n_filters=8, n_blocks=1), "g.onnx", format="onnx")
        PosixPath('g.onnx')
    """
    if format not in FORMATS:
        raise DeblurGANError(f"format={format!r} is not one of {', '.join(FORMATS)}", parameter="format")
    output = Path(output)
    if format == "openvino" and output.suffix != ".xml":
        raise DeblurGANError(
            f"output={output}: an OpenVINO IR is a .xml file (its .bin goes beside it); "
            f"pass e.g. {output.with_suffix('.xml')}",
            parameter="output",
        )
    for kind, suffix in (("keras", ".keras"), ("onnx", ".onnx")):
        if format == kind and output.suffix != suffix:
            raise DeblurGANError(
                f"output={output}: the {kind} format is a {suffix} file; "
                f"pass e.g. {output.with_suffix(suffix)}",
                parameter="output",
            )
    _check_replaceable(output, format, overwrite)
    if format == "keras":
        return save_model(generator, output)
    _check_requirements(format)
    if keras.backend.backend() != "tensorflow":
        raise DeblurGANError(
            f"exporting to {format} traces the model with TensorFlow; run with KERAS_BACKEND=tensorflow "
            f"(the current backend is {keras.backend.backend()})"
        )
    with _staging_folder(output) as staging:
        staged = staging / (output.name if format != "saved_model" else "model")
        with _quiet():
            generator.export(
                str(staged), format=KERAS_FORMATS[format], input_signature=input_spec(), verbose=False
            )
        if format == "onnx":
            _check_onnx(staged, generator)
        if format == "openvino":  # the weights first: an .xml found in place has its .bin
            _move_into_place(staged.with_suffix(".bin"), output.with_suffix(".bin"))
        _move_into_place(staged, output)
    log.info("exported %s to %s", format, output)
    return output


def export_file(weight_path, output, format="saved_model", overwrite=False):
    """Loads the generator at ``weight_path`` (.h5 or .keras) and exports it; returns the path.
    An ``output`` that would overwrite ``weight_path`` is refused before anything is written."""
    check_not_an_input(output, [weight_path], "exported")  # (an OpenVINO .bin is never a weights file)
    _check_replaceable(Path(output), format, overwrite)  # before the generator loads
    return export_generator(load_generator(weight_path), output, format=format, overwrite=overwrite)


def _check_replaceable(output, format, overwrite):
    """An existing ``output`` (and an OpenVINO ``.bin`` beside it) is replaced only with
    ``overwrite``, and only if it is an earlier export of this format, judged by its content: a
    user's file or folder given as the output was lost before, and so was any .keras model."""
    paths = [output] + ([output.with_suffix(".bin")] if format == "openvino" else [])
    existing = [path for path in paths if path.exists()]
    where = f" {existing[0].name} beside it" if existing and existing[0] != output else ""
    if existing and not overwrite:
        raise DeblurGANError(
            f"output={output}:{where} already exists; choose another path, or pass overwrite=True to "
            "replace an earlier export",
            parameter="output",
            mentions=("overwrite",),
        )
    if existing and not _is_export(output, format):  # a .bin belongs to its .xml
        what = "a folder" if existing[0].is_dir() else "a file"
        raise DeblurGANError(
            f"output={output}:{where}{' is' if where else ''} {what} that is not an earlier {format} export; "
            "choose a new path",
            parameter="output",
        )


def _is_export(path, format):
    """Whether ``path`` holds an export of ``format``."""
    if format == "saved_model":
        return path.is_dir() and (path / "saved_model.pb").is_file()
    if not path.is_file():
        return False
    if format == "keras":
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return {"config.json", "model.weights.h5"} <= set(archive.namelist())
    if format == "openvino":
        with path.open("rb") as file:
            return b"<net " in file.read(4096)  # the IR's root element
    try:  # onnx: the file parses as a model with a graph
        import onnx

        return len(onnx.load(str(path), load_external_data=False).graph.node) > 0
    except Exception:  # whatever fails to parse is not an export
        return False


def _check_requirements(format):
    missing = []
    for module in REQUIREMENTS.get(format, ()):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise DeblurGANError(
            f"exporting to {format} needs {', '.join(missing)}; install them with "
            "pip install 'deblurgan[export]'"
        )


def _check_onnx(path, generator):
    """Runs the ONNX file once on a small input with onnxruntime and compares with Keras."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probe = np.random.default_rng(0).uniform(-1, 1, (1, 16, 24, 3)).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: probe})[0]
    want = np.asarray(generator.predict_on_batch(probe))
    if got.shape != want.shape or np.abs(got - want).max() > 1e-3:
        raise DeblurGANError(
            f"{path}: the ONNX export does not reproduce the Keras generator "
            f"(max difference {np.abs(got - want).max():.2g}); please report this with your tf2onnx version"
        )


@contextlib.contextmanager
def _staging_folder(output):
    """A temporary folder beside ``output`` (same file system, so renames are atomic); removed after."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staged, output):
    """Renames ``staged`` onto ``output``; a folder already there is replaced only once the new one is."""
    if output.is_dir() and not output.is_symlink():
        old = output.with_name(f".{output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output, old)
        os.replace(staged, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, output)


@contextlib.contextmanager
def _quiet():
    """tf2onnx and OpenVINO log every conversion step at INFO; keep their warnings."""
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "openvino", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras' tf2onnx patch probes np.object
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
