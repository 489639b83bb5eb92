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


def download_help(file_name, url, parameter, cache_dir="~/.keras/models"):
    """How a user without internet provides ``file_name``: its URL, then ``parameter=PATH`` (which a
    script shows as its flag: raise with ``mentions=(parameter,)``) or the Keras cache."""
    return (
        f"download {url} where there is internet, then pass its path as {parameter}=PATH "
        f"or put it in {cache_dir}/{file_name}"
    )


def cached_weights_path(file_name, url, md5, label, parameter):
    """The local path of ``file_name`` in ``$KERAS_HOME/models/``, downloaded from ``url`` when it
    is missing or fails its ``md5``.

    Args:
        label: what the file is, for messages (e.g. "VGG16 ImageNet weights").
        parameter: the option that takes a local copy instead (see :func:`download_help`).

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
            f"({reason}); {download_help(file_name, url, parameter, cached.parent)}",
            mentions=(parameter,),
        ) from None
