"""Quiet start-up: TensorFlow's C++ chatter is silenced before TensorFlow is imported.

On a machine without a GPU, importing TensorFlow prints lines such as ``Could not find cuda
drivers on your machine`` and ``failed call to cuInit ... ERROR`` to the process's stderr, before
any Python logging is set up and whatever ``TF_CPP_MIN_LOG_LEVEL`` says (absl writes them before
it reads the setting). Newcomers read them as failures. :func:`import_tensorflow_quietly` (called
by ``deblurgan/__init__.py`` before Keras is imported) therefore

* sets ``TF_CPP_MIN_LOG_LEVEL=2`` (C++ info and warnings off, errors kept) unless the user set it,
* imports TensorFlow and lists its devices (which runs ``cuInit``) with file descriptor 2 sent to
  a temporary file, and replays that file if the import fails, so real errors still show.

This module imports only the standard library: it must run before anything imports TensorFlow.
What it cannot silence is documented in the README ("Quiet start-up").
"""

import os
import sys
import tempfile


def import_tensorflow_quietly():
    """Imports TensorFlow (when it is the Keras backend) with its start-up lines on stderr hidden."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    if os.environ.get("DEBLURGAN_VERBOSE_STARTUP"):
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable file descriptor 2 (some embedded interpreters)
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow

            tensorflow.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
