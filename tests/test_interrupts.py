"""Ctrl-C held, not lost: deblurgan/interrupts.py, and the package loading under it."""

import importlib.util
import signal

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


def test_a_noted_stop_is_left_to_the_block_and_a_second_stops_it_at_once(ctrl_c_raises):
    """Several processes: the first Ctrl-C or SIGTERM waits for the step the processes agree on; a
    second must still stop a process whose peer never answers."""
    inherited_term = signal.getsignal(signal.SIGTERM)
    requests, reached = [], []
    with pytest.raises(KeyboardInterrupt):
        with stops_noted(requests):
            signal.raise_signal(signal.SIGTERM)
            reached.append("after the first")
            signal.raise_signal(signal.SIGINT)
            reached.append("after the second")
    assert reached == ["after the first"] and requests == [signal.SIGTERM, signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == inherited_term
