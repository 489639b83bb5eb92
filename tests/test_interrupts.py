"""Ctrl-C held, not lost: deblurgan/interrupts.py, and the package loading under it."""

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import deblurgan
from deblurgan import quiet
from deblurgan.interrupts import interrupts_deferred, stops_noted


class _CtrlCWhenFreed:
    """Its finalizer takes a Ctrl-C, as JAX's garbage-collection callback does while TensorFlow
    loads; Python swallows a KeyboardInterrupt raised there ("Exception ignored in ...")."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt, as in any interactive Python; pytest started as a background
    job (`nohup .ci/run &`) inherits SIGINT ignored."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one
def test_without_the_hold_a_ctrl_c_in_a_finalizer_is_lost(ctrl_c_raises):
    """What the hold is for: this Ctrl-C never reaches the program."""
    _CtrlCWhenFreed()


def test_a_held_ctrl_c_that_landed_in_a_finalizer_is_delivered_when_the_block_ends(ctrl_c_raises):
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            _CtrlCWhenFreed()
            reached.append("the rest of the block")
    assert reached == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored():
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_a_ctrl_c_while_the_package_loads_stops_the_program_after_it_has_loaded(ctrl_c_raises, monkeypatch):
    """``deblurgan/__init__.py`` run again, with a Ctrl-C landing in a finalizer during its import of
    TensorFlow: the Ctrl-C used to be lost, and deblur.py or train.py ran on to the end."""
    monkeypatch.setattr(quiet, "import_tensorflow_quietly", _CtrlCWhenFreed)
    spec = importlib.util.spec_from_file_location("deblurgan_loaded_again", deblurgan.__file__)
    with pytest.raises(KeyboardInterrupt):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_a_noted_stop_is_left_to_the_block_which_puts_the_handlers_back(ctrl_c_raises):
    inherited_term = signal.getsignal(signal.SIGTERM)
    requests, reached = [], []
    with stops_noted(requests):
        signal.raise_signal(signal.SIGTERM)
        reached.append("after the first")
    assert reached == ["after the first"] and requests == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == inherited_term


_SECOND_STOP = """
import importlib.util, signal, sys, time
spec = importlib.util.spec_from_file_location("interrupts", sys.argv[1])
interrupts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(interrupts)
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit("the Python handler ran"))  # as train.py's
requests = []
with interrupts.stops_noted(requests):
    print("ready", flush=True)
    while not requests:
        time.sleep(0.01)
    print("noted", requests, flush=True)
    time.sleep(60)  # where a process waits for a peer that never answers
print("not reached")
"""


def test_a_second_stop_ends_the_process_at_once_by_the_signals_default_action():
    """Several processes: the first Ctrl-C waits for the step they agree on; a second must end a
    process whose peer never answers, even inside the C++ call that waits for it (where a Python
    handler would not run until the call returns)."""
    path = Path(deblurgan.__file__).with_name("interrupts.py")
    process = subprocess.Popen(
        [sys.executable, "-c", _SECOND_STOP, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    assert process.stdout.readline() == "noted [15]\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM and process.stdout.read() == ""
