"""Saving and loading generator and critic files (``.h5``, Sicara's format, and native ``.keras``).

Files are written atomically. Loading checks the file before Keras sees it, so a missing,
truncated or foreign file, or a critic where a generator is expected, gives one
:class:`DeblurGANError` line that names the file and the fix.
"""

import json
import logging
import zipfile
from pathlib import Path

import h5py
import keras

from deblurgan.errors import DeblurGANError
from deblurgan.io import atomic_path, writable_folder
from deblurgan.layer_utils import with_layer_dtypes
from deblurgan.pretrained import first_line
from deblurgan.quiet import log_lines_hidden

log = logging.getLogger(__name__)
MODEL_EXTENSIONS = (".h5", ".keras")


def save_model(model, path):
    """Saves ``model`` (architecture and weights) to ``path`` (``.h5`` or ``.keras``) atomically.

    A network trained in mixed precision is saved as its float32 twin (same weights), so the file is
    the same as after float32 training.
    """
    path = check_model_extension(path)
    # Keras' notice that .h5 is legacy: .h5 is Sicara's format
    with log_lines_hidden(logging.getLogger("absl"), "This file format is considered legacy"):
        with atomic_path(path) as tmp:
            float32_model(model).save(tmp)
    log.info("saved %s", path)
    return path


def check_model_extension(path, parameter=None):
    """``path`` as a Path; raises unless it ends in .h5 or .keras (before any work is done)."""
    path = Path(path)
    if path.suffix not in MODEL_EXTENSIONS:
        shown = f"{parameter}={path}" if parameter else str(path)
        raise DeblurGANError(f"{shown}: model files must end in .h5 or .keras", parameter)
    return path


def float32_model(model):
    """``model`` itself, or where a layer computes in another dtype (a mixed precision policy), a
    float32 copy holding the same (float32) weights."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    return with_layer_dtypes(model, lambda layer: "float32")


def export_keras(path, output_path=None):
    """Converts a generator ``.h5`` file to the native ``.keras`` format; returns the new path."""
    output_path = Path(output_path) if output_path else Path(path).with_suffix(".keras")
    return save_model(load_generator(path), output_path)


def _model_config(path):
    """The model's saved config dict, or None for a weights-only file; errors for broken files."""
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise DeblurGANError(
            f"{path}: {what}; pass the path of a generator .h5 or .keras file (e.g. weights/generator.h5)"
        )
    if path.suffix.lower() in (".h5", ".hdf5", ".keras") and path.suffix != path.suffix.lower():
        raise DeblurGANError(  # Keras picks the format by the exact extension
            f"{path}: Keras reads model files by a lower-case extension only; rename it to "
            f"{path.with_suffix(path.suffix.lower()).name}"
        )
    if path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
            raise DeblurGANError(
                f"{path}: not a valid .keras file ({error}); the file is truncated or of another "
                "format; save it again with deblurgan.save_model"
            ) from None
    if not h5py.is_hdf5(path) and path.suffix.lower() not in (".h5", ".hdf5"):
        raise DeblurGANError(  # a run's training_state.npz or options.json, say
            f"{path}: not a model file; pass a generator .h5 or .keras file (a training run writes "
            "generator_{epoch}_{loss}.h5 files)"
        )
    if not h5py.is_hdf5(path):
        raise DeblurGANError(
            f"{path}: not an HDF5 model file (wrong format or truncated download); "
            "download it again or save it with deblurgan.save_model"
        )
    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
            if config is None:
                return None
            return json.loads(config.decode() if isinstance(config, bytes) else config)
    except (OSError, ValueError) as error:
        raise DeblurGANError(
            f"{path}: cannot read this HDF5 file ({error}); it is probably truncated: "
            "download or copy it again"
        ) from None


def _load(path, expect):
    path = Path(path)
    config = _model_config(path)
    if config is None:
        return _weights_only(path, expect)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged or foreign file
        raise DeblurGANError(
            f"{path}: Keras cannot load this model ({first_line(error)}); check that it was saved by "
            "deblurgan and is complete"
        ) from None
    # A generator's (first, i.e. finest for multi-scale) output has its input's shape; a critic's has not.
    is_generator = tuple(model.outputs[0].shape[1:]) == tuple(model.input_shape[1:])
    if expect == "generator" and not is_generator:
        critic = any(word in model.name for word in ("critic", "discriminator"))  # deblurgan's names
        what = "a critic (discriminator) file" if critic else f"the network {model.name!r}"
        raise DeblurGANError(
            f"{path}: this is {what}, not a generator (output shape {model.output_shape}, input "
            f"{model.input_shape}); pass a generator_*.h5 file"
        )
    if expect == "critic" and is_generator:
        raise DeblurGANError(
            f"{path}: this is a generator file, not a critic; pass a discriminator_*.h5 file"
        )
    return model


def _weights_only(path, expect):
    """The Sicara network of ``expect`` holding the weights of ``path``, a file of weights without
    an architecture. A Keras 2 ``save_weights`` file (the Sicara port's checkpoints) is loaded by
    layer order, which checks the count and every shape; another one gets one line saying how."""
    from deblurgan.model import discriminator_model, generator_model  # (model imports this module)

    builder = "generator_model" if expect == "generator" else "discriminator_model"
    how = (
        f"build the network it was trained as with deblurgan.{builder}(...), call its load_weights "
        "on this file, then save it whole with deblurgan.save_model(network, 'NEW.h5') for the scripts"
    )
    with h5py.File(path, "r") as f:
        keras_2 = "layer_names" in f.attrs  # Keras 3 writes .weights.h5 files by layer path instead
    if not keras_2 or path.suffix != ".h5":
        raise DeblurGANError(f"{path}: holds weights only, no architecture; {how}")
    network = generator_model() if expect == "generator" else discriminator_model()
    try:
        network.load_weights(path)
    except Exception as error:  # Keras raises ValueError, KeyError, ... for another network's file
        raise DeblurGANError(
            f"{path}: holds weights only (Keras 2 save_weights), and not those of the Sicara {expect} "
            f"({first_line(error)}); {how}"
        ) from None
    log.warning(
        "%s holds weights only (Keras 2 save_weights, as the Sicara port wrote): loaded into "
        "deblurgan.%s(), the Sicara %s",
        path,
        builder,
        expect,
    )
    return network


def load_generator(path):
    """Loads a generator saved by deblurgan (``.h5`` or ``.keras``) or the Sicara port (weights
    only), with clear errors."""
    return _load(path, "generator")


def load_critic(path):
    """Loads a critic (discriminator) saved by deblurgan or the Sicara port, with clear errors."""
    return _load(path, "critic")


# Layer settings that do not change what a network computes from its weights.
_INCIDENTAL = ("name", "trainable", "dtype", "seed")
_INCIDENTAL_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


def layer_difference(a, b):
    """The first layer setting in which network ``b`` computes something else than ``a`` from the
    same weights, e.g. ``"GlobalSkip mode 'clip' vs 'average'"``, or None. Weight shapes cannot
    tell generators apart that differ in a layer without weights (the output mode, dropout);
    names, initialisers and input sizes do not count."""
    layers_a, layers_b = _layer_settings(a), _layer_settings(b)
    for (kind_a, config_a), (kind_b, config_b) in zip(layers_a, layers_b, strict=False):  # lengths: below
        if kind_a != kind_b:
            return f"a {kind_a} layer vs a {kind_b} layer"
        for key in sorted(config_a.keys() | config_b.keys()):
            if config_a.get(key) != config_b.get(key):
                return f"{kind_a} {key} {config_a.get(key)!r} vs {config_b.get(key)!r}"
    if len(layers_a) != len(layers_b):
        return f"{len(layers_a)} vs {len(layers_b)} layers"
    return None


def _layer_settings(model):
    return [
        (type(layer).__name__, {
            key: value for key, value in layer.get_config().items()
            if key not in _INCIDENTAL and not key.endswith(_INCIDENTAL_SUFFIXES)
        })
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]  # fmt: skip


def check_not_an_input(output, inputs, what):
    """``output`` as a Path; raises if writing it (a file, or a folder replaced whole) would
    overwrite one of the files ``inputs``: inputs are read-only. ``what``: the generator written."""
    output = Path(output)
    for source in map(Path, inputs):
        if (output.exists() and source.exists() and output.samefile(source)) or (
            output.resolve() == source.resolve()
        ):
            message = f"{output}: is also an input file; write the {what} generator to a new file"
            raise DeblurGANError(message, parameter="output")
        if output.is_dir() and source.resolve().is_relative_to(output.resolve()):
            message = f"{output}: holds the input {source}; write the {what} generator to a new folder"
            raise DeblurGANError(message, parameter="output")
    writable_folder(output.parent, "output", create=False)  # before the work, not after it
    return output
