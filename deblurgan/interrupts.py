"""Ctrl-C and SIGTERM held through a block that must not be cut, or in which they would be lost.

Standard library only: ``deblurgan/__init__.py`` loads the package (seconds of TensorFlow) inside
:func:`interrupts_deferred`. JAX's and TensorFlow's garbage-collection callbacks and finalizers
run all through that import, and Python swallows the KeyboardInterrupt (or a script's SystemExit)
that a signal handler raises inside one of them: the stop was lost, and the script went on.
"""

import contextlib
import signal
import threading


def in_main_thread():
    """Whether signal handlers can be set here (Python allows it in the main thread only)."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def interrupts_deferred(signals=(signal.SIGINT, signal.SIGTERM)):
    """Holds Ctrl-C and SIGTERM until the block ends, then delivers the first to the handler found.

    A signal whose handler was set outside Python, and any signal outside the main thread (where
    handlers cannot be set), are left as they are. Ignored signals stay ignored.
    """
    if not in_main_thread():
        yield
        return
    received = []

    def hold(signum, frame):
        received.append(signum)

    with _handled_by(hold, [s for s in signals if signal.getsignal(s) is not None]) as previous:
        yield
    for signum in received[:1]:
        handler = previous[signum]
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)


@contextlib.contextmanager
def stops_noted(requests, signals=(signal.SIGINT, signal.SIGTERM)):
    """Ctrl-C and SIGTERM appended to ``requests`` (a list) for the block to act on when it can; a
    second ends the process at once, by the signal's default action: what the block waits for may
    never come, and a Python handler would wait for it too (it runs only once a C++ call returns).
    Left as they are outside the main thread, and where ignored or handled outside Python."""
    if not in_main_thread():
        yield
        return

    def note(signum, frame):
        requests.append(signum)
        for noted_signal in noted:
            signal.signal(noted_signal, signal.SIG_DFL)

    noted = [s for s in signals if signal.getsignal(s) not in (None, signal.SIG_IGN)]
    with _handled_by(note, noted):
        yield


@contextlib.contextmanager
def _handled_by(handler, signals):
    """``handler`` set for ``signals`` in the block, which gets the previous handlers ({signal:
    handler}); they are put back after it."""
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield previous
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)
