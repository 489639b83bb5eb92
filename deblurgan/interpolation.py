"""Blending generators of one architecture weight by weight: network interpolation and averaging.

Network interpolation (Wang et al., ESRGAN 2018): blending a content-only generator (high PSNR,
smooth) with its adversarially fine-tuned version (sharper, more artefacts) trades one for the other
with a single number and no retraining. Checkpoint averaging (the uniform mean of the last epochs'
checkpoints, as in stochastic weight averaging, Izmailov et al. 2018) removes a run's epoch-to-epoch
wander without training.
"""

import logging
from pathlib import Path

import keras
import numpy as np

from deblurgan.checkpoints import (
    check_model_extension,
    check_not_an_input,
    layer_difference,
    load_generator,
    save_model,
)
from deblurgan.errors import DeblurGANError
from deblurgan.io import check_new_file

log = logging.getLogger(__name__)


def _check_alpha(alpha):
    if not 0.0 <= float(alpha) <= 1.0:
        raise DeblurGANError(
            f"alpha={alpha}: must lie in [0, 1] (0 gives the first network, 1 the second)",
            parameter="alpha",
        )
    return float(alpha)


def _structure(model):
    """What two interpolable networks share: each weight's path and shape, and the layer types."""
    weights = [(variable.path, tuple(variable.shape)) for variable in model.weights]
    layer_types = [type(layer).__name__ for layer in model.layers]
    return weights, layer_types


def _describe(model, source):
    return str(source) if source is not None else f"model {model.name!r}"


def interpolate_generators(a, b, alpha, a_name=None, b_name=None):
    """A new generator whose every weight is ``(1 - alpha) * a + alpha * b``.

    ``alpha=0`` returns an exact copy of ``a``'s weights and ``alpha=1`` of ``b``'s (bit for bit);
    in between the blend is computed in float64 and rounded once to each weight's dtype.
    Batch-normalization statistics are weights too and are blended the same way.

    Args:
        a: the first generator (``keras.Model``), or the path of a generator file.
        b: the second generator, or a path; it must have ``a``'s architecture.
        alpha: in [0, 1]; ESRGAN's alpha (0.8 in its paper).
        a_name, b_name: how error messages name ``a`` and ``b`` (default: the path, or the model name).

    Returns:
        A new ``keras.Model`` with ``a``'s architecture; ``a`` and ``b`` are left unchanged.

    Raises:
        DeblurGANError: ``alpha`` outside [0, 1], a file that is not a generator, or networks of
            different architectures (one line naming both).

    Example:
        >>> c = interpolate_generators("weights/psnr.h5", "weights/gan.h5", alpha=0.8)
    """
    alpha = _check_alpha(alpha)
    result, sources = _blend([a, b], [1.0 - alpha, alpha], [a_name, b_name])
    log.info("interpolated %s and %s with alpha=%s", *sources, alpha)
    return result


def average_generators(generators, names=None):
    """A new generator whose every weight is the mean of ``generators``' (checkpoint averaging).

    Averaging the checkpoints of the last epochs of one run (as stochastic weight averaging does)
    smooths out the epoch-to-epoch wander of a run at a non-vanishing learning rate. The mean is
    computed in float64 and rounded once. Batch-normalization statistics are averaged too, an
    approximation (SWA recomputes them): a warning says so for a network that has any.

    Args:
        generators: two or more generators (``keras.Model``) or generator file paths, all of one
            architecture (the checkpoints of one run).
        names: how error messages name them (default: the path, or the model name).

    Returns:
        A new ``keras.Model`` with the first generator's architecture; the inputs are left unchanged.

    Raises:
        DeblurGANError: fewer than two generators, a file that is not a generator, or networks of
            different architectures (one line naming the first and the odd one).

    Example:
        >>> g = average_generators(sorted(glob.glob("run/weights/generator_[5-9]_*.h5")))
    """
    generators = list(generators)
    if len(generators) < 2:
        raise DeblurGANError(
            f"generators: got {len(generators)}; averaging needs two or more checkpoints",
            parameter="generators",
        )
    keys = [id(g) if isinstance(g, keras.Model) else Path(g).resolve() for g in generators]
    for generator, key in zip(generators, keys, strict=True):
        if keys.count(key) > 1:  # a typo'd glob, or a wrong copy-paste: it would weigh double
            raise DeblurGANError(
                f"{_describe(generator, None if isinstance(generator, keras.Model) else generator)}: "
                "given twice; each checkpoint counts once in the mean",
                parameter="generators",
            )
    result, sources = _blend(generators, [1.0 / len(generators)] * len(generators), names)
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in result.layers):
        log.warning(
            "batch-normalization statistics were averaged too: an approximation of the averaged "
            "network's own (stochastic weight averaging recomputes them on training batches)"
        )
    log.info("averaged %d generators: %s", len(generators), ", ".join(sources))
    return result


def _blend(generators, coefficients, names=None):
    """``sum(c * g)`` weight by weight, in float64 rounded once; a coefficient of exactly 1 (the
    others 0) copies that generator bit for bit (``1 * w + 0 * v`` would turn -0.0 into +0.0)."""
    names = list(names or [None] * len(generators))
    models, sources = [], []
    for generator, name in zip(generators, names, strict=True):
        if not isinstance(generator, keras.Model):
            name = name or str(generator)
            generator = load_generator(generator)
        models.append(generator)
        sources.append(_describe(generator, name))
    for model, source in zip(models[1:], sources[1:], strict=True):
        if _structure(model) != _structure(models[0]):
            raise DeblurGANError(
                f"{sources[0]} and {source}: the networks have different architectures "
                f"({len(models[0].weights)} vs {len(model.weights)} weights, or different layers or "
                "shapes); blend generators built with the same options"
            )
        if difference := layer_difference(models[0], model):
            raise DeblurGANError(
                f"{sources[0]} and {source}: the networks differ ({difference}); blend generators "
                "built with the same options"
            )
    if 1.0 in coefficients:
        blended = [np.array(w, copy=True) for w in models[coefficients.index(1.0)].get_weights()]
    else:
        weights = [m.get_weights() for m in models]
        blended = [
            sum(c * w.astype(np.float64) for c, w in zip(coefficients, ws, strict=True)).astype(ws[0].dtype)
            for ws in zip(*weights, strict=True)
        ]
    result = keras.models.clone_model(models[0])
    result.set_weights(blended)
    return result, sources


def interpolate_weight_files(from_weights, to_weights, alpha, output, overwrite=False):
    """Writes ``interpolate_generators(from_weights, to_weights, alpha)`` to ``output`` atomically.

    Raises:
        DeblurGANError: ``output`` is one of the inputs (inputs are never overwritten), exists
            already and ``overwrite`` is False, or any error of :func:`interpolate_generators`.
    """
    alpha = _check_alpha(alpha)
    output = _new_output(output, (from_weights, to_weights), "interpolated", overwrite)
    return save_model(interpolate_generators(from_weights, to_weights, alpha), output)


def average_weight_files(paths, output, overwrite=False):
    """Writes ``average_generators(paths)`` to ``output`` atomically.

    Raises:
        DeblurGANError: ``output`` is one of the inputs (inputs are never overwritten), exists
            already and ``overwrite`` is False, or any error of :func:`average_generators`.
    """
    output = _new_output(output, paths, "averaged", overwrite)
    return save_model(average_generators(paths), output)


def _new_output(output, inputs, what, overwrite):
    """A generator file may replace another only when asked: it may be the only copy of a run."""
    output = check_not_an_input(check_model_extension(output, "output"), inputs, what)
    if output.is_dir():
        raise DeblurGANError(f"output={output}: a folder; name a new file", parameter="output")
    check_new_file(output, overwrite)
    return output
