"""Quiet start-up: TensorFlow's C++ chatter is silenced before TensorFlow is imported.

On a machine without a GPU, importing TensorFlow prints lines such as ``Could not find cuda
drivers on your machine`` and ``failed call to cuInit ... ERROR`` to the process's stderr, before
any Python logging is set up and whatever ``TF_CPP_MIN_LOG_LEVEL`` says (absl writes them before
it reads the setting). Newcomers read them as failures. :func:`import_tensorflow_quietly` (called
by ``deblurgan/__init__.py`` before Keras is imported) therefore

* sets ``TF_CPP_MIN_LOG_LEVEL=2`` (C++ info and warnings off, errors kept) unless the user set it,
* imports TensorFlow and lists its devices (which runs ``cuInit``) with file descriptor 2 sent to
  a temporary file, and replays that file if the import fails, so real errors still show;
* on the JAX and PyTorch backends, where Keras imports TensorFlow itself when it is installed (to
  read or write an .h5 file), makes that later import as quiet, through a one-time import hook.

This module imports only the standard library: it must run before anything imports TensorFlow.
What it cannot silence is documented in the README ("Quiet start-up").
"""

import contextlib
import importlib.util
import os
import sys
import tempfile


def import_tensorflow_quietly():
    """Imports TensorFlow (when it is the Keras backend) with its start-up lines on stderr hidden;
    on another backend, hides them whenever TensorFlow is first imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("DEBLURGAN_VERBOSE_STARTUP"):
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
        return
    with _stderr_held():
        import tensorflow

        tensorflow.config.list_physical_devices()


@contextlib.contextmanager
def _stderr_held():
    """File descriptor 2 goes to a temporary file in the block, which is replayed if it raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable file descriptor 2 (some embedded interpreters)
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietTensorFlowFinder:
    """An import hook until TensorFlow is imported: its module then runs with stderr held. (Other
    packages ask for its spec only to see whether it is installed: PyTorch's dynamo does.)"""

    searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self.searching:
            return None
        self.searching = True  # the search below must not find this hook again
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader:
    """TensorFlow's own loader, its ``exec_module`` run with stderr held."""

    def __init__(self, loader, finder):
        self.loader, self.finder = loader, finder

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if self.finder in sys.meta_path:  # once is enough
            sys.meta_path.remove(self.finder)
        with _stderr_held():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # cuInit, which logs at ERROR without a GPU


@contextlib.contextmanager
def log_lines_hidden(logger, text):
    """Within the block, drops ``logger``'s records whose message contains ``text``: a library's
    notice meant for this package (Keras calling .h5 legacy, ONNX Runtime advising pre-processing
    before quantisation), which its users can do nothing about."""

    def keep(record):
        return text not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
