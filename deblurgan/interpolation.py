"""Network interpolation (Wang et al., ESRGAN 2018): blend two generators of one architecture.

Interpolating a content-only generator (high PSNR, smooth) with its adversarially fine-tuned version
(sharper, more artefacts) trades one for the other with a single number and no retraining.
"""

import logging
from pathlib import Path

import keras
import numpy as np

from deblurgan.checkpoints import load_generator, save_model
from deblurgan.errors import DeblurGANError

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
    if not isinstance(a, keras.Model):
        a_name = a_name or str(a)
        a = load_generator(a)
    if not isinstance(b, keras.Model):
        b_name = b_name or str(b)
        b = load_generator(b)
    if _structure(a) != _structure(b):
        raise DeblurGANError(
            f"{_describe(a, a_name)} and {_describe(b, b_name)}: the networks have different "
            f"architectures ({len(a.weights)} vs {len(b.weights)} weights, or different layers or "
            "shapes); interpolate two generators built with the same options"
        )
    blended = []
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        if alpha == 0.0:
            blended.append(np.array(wa, copy=True))
        elif alpha == 1.0:
            blended.append(np.array(wb, copy=True))
        else:
            mix = (1.0 - alpha) * wa.astype(np.float64) + alpha * wb.astype(np.float64)
            blended.append(mix.astype(wa.dtype))
    result = keras.models.clone_model(a)
    result.set_weights(blended)
    log.info("interpolated %s and %s with alpha=%s", _describe(a, a_name), _describe(b, b_name), alpha)
    return result


def interpolate_weight_files(from_weights, to_weights, alpha, output):
    """Writes ``interpolate_generators(from_weights, to_weights, alpha)`` to ``output`` atomically.

    Raises:
        DeblurGANError: ``output`` is one of the inputs (inputs are never overwritten), or any
            error of :func:`interpolate_generators`.
    """
    alpha = _check_alpha(alpha)
    output = Path(output)
    for source in (from_weights, to_weights):
        source = Path(source)
        same = output.exists() and source.exists() and output.samefile(source)
        if same or output.resolve() == source.resolve():
            raise DeblurGANError(
                f"{output}: is also an input file; write the interpolated generator to a new file"
            )
    generator = interpolate_generators(from_weights, to_weights, alpha)
    return save_model(generator, output)
