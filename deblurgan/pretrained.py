"""Pretrained ImageNet weight files (VGG for the perceptual loss, InceptionV3 for FID) through
Keras' download cache, with one clear line where they cannot be had (an offline machine)."""

import logging
import os
import urllib.error
from pathlib import Path

import keras

from deblurgan.errors import DeblurGANError

log = logging.getLogger(__name__)


def first_line(error):
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def keras_cache_dir():
    """``$KERAS_HOME`` read now (Keras reads it once, at import), else ``~/.keras``."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cached_weights_path(file_name, url, md5, label, download_help, parameter=None):
    """The local path of ``file_name`` in ``$KERAS_HOME/models/``, downloaded from ``url`` when it
    is missing or fails its ``md5``.

    Args:
        label: what the file is, for messages (e.g. "VGG16 ImageNet weights").
        download_help: ``cache_dir -> str``, how a user without internet provides the file.
        parameter: the option that takes a local copy, named in ``download_help`` as ``name=PATH``
            (a script shows it as its flag).

    Raises:
        DeblurGANError: not cached and not downloadable; names the file, the reason and the help.
    """
    cache_dir = keras_cache_dir()
    cached = Path(cache_dir, "models", file_name)
    if not cached.is_file():
        log.info("downloading %s from %s", label, url)
    try:
        return keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=md5, cache_dir=cache_dir)
    except Exception as error:  # get_file wraps URL errors in a bare Exception
        cause = error.__context__
        reason = cause.reason if isinstance(cause, urllib.error.URLError) else first_line(error)
        raise DeblurGANError(
            f"{file_name}: {label} are missing or damaged in {cached.parent} and the download failed "
            f"({reason}); {download_help(cached.parent)}",
            mentions=(parameter,) if parameter else (),
        ) from None
