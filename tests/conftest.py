"""Shared fixtures: tiny networks with non-trivial weights, fresh-process Python runs and
in-process script runs; the test run's XLA settings."""

import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

REPO_ROOT = Path(__file__).resolve().parents[1]
_JAX_CACHE = "JAX_COMPILATION_CACHE_DIR"


def pytest_configure(config):
    """XLA settings for the whole run, made before the xdist workers start so they and the
    processes the tests start inherit them. They change how long a compile takes, not what runs:
    tests spend most of their JAX time compiling tiny networks, not running them.

    * LLVM's optimisations off (``--xla_backend_optimization_level=0``): 40% less CPU time for
      the two-device test of every GAN mode; settings the caller gave in XLA_FLAGS stay.
    * One JAX compilation cache: the same tiny networks are built in many tests, and a hit skips
      the compile (a quarter of the JAX pass); a cache the caller set is used as is.
    """
    if hasattr(config, "workerinput"):
        _one_torch_thread_per_worker()
        return
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in xla_flags:
        os.environ["XLA_FLAGS"] = f"{xla_flags} --xla_backend_optimization_level=0".strip()
    if _JAX_CACHE in os.environ:
        return
    config.jax_cache = tempfile.mkdtemp(prefix="deblurgan-tests-jax-cache-")
    os.environ[_JAX_CACHE] = config.jax_cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # tiny networks compile fast
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"


@pytest.fixture(autouse=True)
def _flag_names_removed_after_each_test():
    """A script's ``main_guard`` run in-process (CliRunner) adds ``cli.FlagNames`` to the root
    logger's handlers, pytest's capture handlers among them, which live for the whole session: a
    later test's ``caplog`` would show flag names or not depending on the order the tests ran in."""
    yield
    remove_flag_names()


def remove_flag_names():
    """Takes the ``cli.FlagNames`` filters that an in-process script run added off the root
    logger's handlers (``caplog``'s among them)."""
    for handler in logging.getLogger().handlers:
        handler.filters[:] = [f for f in handler.filters if type(f).__name__ != "FlagNames"]


def _one_torch_thread_per_worker():
    """PyTorch's OpenMP threads spin while they wait: two xdist workers on two cores, each with a
    pool of two threads, made the tiled-inference test 6 times slower (29-38 s instead of 4.5-4.8)."""
    if os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(1)


def pytest_unconfigure(config):
    if getattr(config, "jax_cache", None):
        shutil.rmtree(config.jax_cache, ignore_errors=True)


def randomize_weights(model, seed=0):
    """Gives every weight of ``model`` a seeded random value, BN moving statistics included.

    Fresh Keras layers have zero biases, unit scales and identity moving statistics, so a test on
    them cannot tell an ignored or mis-loaded weight from a correct one; these values can.
    Kernels are scaled by their fan-in so activations stay in a useful range.
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        name = variable.name
        if name == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        elif name in ("gamma", "scale"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("moving_mean", "beta", "bias"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        variable.assign(value.astype("float32"))
    return model


@pytest.fixture(name="randomize_weights")
def randomize_weights_fixture():
    """The :func:`randomize_weights` function (``randomize_weights(model, seed=0)``)."""
    return randomize_weights


@pytest.fixture
def tiny_generator():
    """``generator_model(n_filters=8, n_blocks=1)`` with seeded random weights and BN statistics."""
    import deblurgan

    return randomize_weights(deblurgan.generator_model(n_filters=8, n_blocks=1), seed=0)


def run_python(code, backend="tensorflow", cwd=None, timeout=600):
    """Runs ``code`` in a fresh Python process with ``KERAS_BACKEND=backend``; returns its stdout.

    The environment, the interpreter and the working directory are inherited; the repository
    root is put first on PYTHONPATH so an uninstalled checkout imports this copy of deblurgan.
    A non-zero exit fails the calling test with the child's stderr.
    """
    env = dict(os.environ, KERAS_BACKEND=backend)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"subprocess (KERAS_BACKEND={backend}) exited {result.returncode}:\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result.stdout


_SCRIPTS = {}


def load_script(name, folder="scripts"):
    """``{folder}/{name}.py`` as a module (its ``main`` is the command), loaded once per process."""
    if (folder, name) not in _SCRIPTS:
        spec = importlib.util.spec_from_file_location(f"{name}_script", REPO_ROOT / folder / f"{name}.py")
        _SCRIPTS[folder, name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_SCRIPTS[folder, name])
    return _SCRIPTS[folder, name]


def invoke_script(name, *args):
    """Runs ``scripts/{name}.py`` with ``args`` in this process (click's CliRunner); returns a
    ``subprocess.CompletedProcess`` (returncode, stdout, stderr), as a fresh process would.

    For a user error's line and exit status without the seconds a fresh process spends importing
    TensorFlow; what only a real process shows (signals, start-up output) needs a subprocess. An
    exception other than ``SystemExit`` propagates: it would have been a traceback. What the
    script sets for the process (signal handlers, loggers' handlers and levels) is put back
    (``cli.FlagNames`` on pytest's handlers: :func:`_flag_names_removed_after_each_test`).
    """
    main = load_script(name).main
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in logging.Logger.manager.loggerDict)]
    saved = {logger: (logger.handlers[:], logger.level, logger.propagate) for logger in loggers}
    args = [str(a) for a in args]
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for logger, (logger_handlers, level, propagate) in saved.items():
            logger.handlers[:], logger.level, logger.propagate = logger_handlers, level, propagate
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.fixture(name="run_python")
def run_python_fixture():
    """The :func:`run_python` function (``run_python(code, backend="tensorflow", cwd=None)``)."""
    return run_python
