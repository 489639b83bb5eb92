"""What every script shares: user errors become one line on stderr and exit code 2."""

import atexit
import functools
import logging
import os
import signal
import sys

import click

from deblurgan.config import FLAT_NAMES
from deblurgan.engines import ENGINES
from deblurgan.errors import DeblurGANError
from deblurgan.inference import DEFAULT_MAX_PIXELS, DEFAULT_WEIGHTS
from deblurgan.interrupts import in_main_thread
from deblurgan.io import DEFAULT_MAX_IMAGE_PIXELS
from deblurgan.precision import PRECISION_CHOICES

# Flags whose name differs from the library parameter they set; every other flag is --<parameter>,
# and a training-config parameter "section.field" is --<field> (deblurgan.config.FLAT_NAMES).
FLAG_NAMES = {
    "gradient_penalty_weight": "gp_weight",
    "input_path": "input_dir",
    "loss.gradient_penalty_weight": "gp_weight",
    "timeout": "coordinator_timeout",  # distribution.start's
    **{f"{section}.{field}": flag for flag, (section, field) in FLAT_NAMES.items()},
}


def flag_message(error):
    """The message of a DeblurGANError as a command-line user reads it: ``--name value`` for
    the ``name=value`` of the parameter it is about (its first mention) and of those it mentions;
    an on/off flag's ``name=True`` is ``--name`` and ``name=False`` is ``no --name``."""
    message = str(error)
    if error.parameter:
        message = _as_flag(message, error.parameter, count=1)
    for name in error.mentions:
        message = _as_flag(message, name)
    return message


def _as_flag(message, parameter, count=-1):
    flag = "--" + FLAG_NAMES.get(parameter, parameter.rsplit(".", 1)[-1])
    for written, shown in ((f"{parameter}=True", flag), (f"{parameter}=False", f"no {flag}")):
        message = message.replace(written, shown, count)  # on/off flags
    return message.replace(f"{parameter}=", f"{flag} ", count)


class FlagNames(logging.Filter):
    """A library message that quotes a DeblurGANError (``log.warning("...: %s", error)``) shows
    it as an error of the script does: with flag names (:func:`flag_message`); so does one that
    names its parameters (``log.info("run.n_epochs=%d", n, extra={"parameters": ["run.n_epochs"]})``)."""

    def filter(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        for name in getattr(record, "parameters", ()):
            record.msg = _as_flag(record.msg, name)
            args = tuple(_as_flag(a, name) if isinstance(a, str) else a for a in args)
        if isinstance(record.args, tuple):
            record.args = tuple(flag_message(a) if isinstance(a, DeblurGANError) else a for a in args)
        return True


def main_guard(command):
    """Wraps a click command's callback: DeblurGANError -> ``error: ...`` on stderr, exit 2;
    Ctrl-C -> ``interrupted`` and exit 130, as a shell reports SIGINT (click would print "Aborted!"
    and exit 1); SIGTERM the same, with exit 143, where nothing else handles it. The library's
    warnings name flags too (:class:`FlagNames`)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        _quiet_at_exit()
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, FlagNames) for f in handler.filters):
                handler.addFilter(FlagNames())
        # A scheduler's or kill's SIGTERM ended the process at once: no "N of M photos written"
        # note, and the temporary file of the photo being written was left behind.
        terminate = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL and in_main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if terminate else None
        try:
            return command(*args, **kwargs)
        except DeblurGANError as error:
            print(f"error: {flag_message(error)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as interrupt:
            print("\ninterrupted", file=sys.stderr)  # after the ^C the terminal echoed, or a progress bar
            signum = (
                interrupt.args[0] if interrupt.args and isinstance(interrupt.args[0], int) else signal.SIGINT
            )
            sys.exit(128 + signum)
        finally:
            if terminate:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signum)


@functools.cache  # once per process
def _quiet_at_exit():
    """Ctrl-C or SIGTERM once the script's work is done, while Python runs the exit hooks of
    TensorFlow and JAX (registered before this one, so run after it): an exit with the signal's
    status, where the KeyboardInterrupt had landed in a hook ("Exception ignored in atexit
    callback", exit status 0)."""
    atexit.register(lambda: in_main_thread() and _on_signals(_leave_quietly))


def _on_signals(handler):
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _leave_quietly(signum, frame):
    exit_now(128 + signum)


def exit_now(code):
    """Ends the process at once with ``code``, its output flushed, without the exit hooks, which
    may wait (JAX's shutdown barrier, for processes that are gone) or be interrupted."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


weight_path_option = click.option(
    "--weight_path", default=DEFAULT_WEIGHTS, show_default=True, help="Generator file (.h5 or .keras)."
)

engine_option = click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="keras",
    show_default=True,
    help="What runs the generator; onnxruntime/openvino export it once (cached by the weights' hash).",
)


def inference_options(command, precision="auto", photos=True):
    """The tiling, batching and precision options shared by deblur.py and test.py.

    They reach the command as keyword arguments named as ``deblurgan.inference.deblur_array``'s,
    and ``max_image_pixels`` as ``deblur_file``'s and ``evaluate_folder``'s. ``precision``: the
    default of ``--precision`` (test.py's is fp32, so that its scores do not depend on the machine).
    ``photos``: offer ``--max_image_pixels`` (a video's frames are not files that could be bombs).
    """
    options = [
        click.option(
            "--tile_size",
            type=click.IntRange(min=8),
            default=None,
            help="Tile side in pixels; default: tile only photos above --max_pixels.",
        ),
        click.option(
            "--overlap",
            type=click.IntRange(min=0),
            default=None,
            help="Context pixels around each tile; default: the receptive-field radius + 8.",
        ),
        click.option(
            "--max_pixels",
            type=click.IntRange(min=64),
            default=DEFAULT_MAX_PIXELS,
            show_default=True,
            help="Pixel budget of one forward pass (bounds memory).",
        ),
        max_image_pixels := click.option(
            "--max_image_pixels",
            type=click.IntRange(min=1),
            default=DEFAULT_MAX_IMAGE_PIXELS,
            show_default=True,
            help="Larger photos (or decompression bombs) are skipped with an error line.",
        ),
        click.option(
            "--batch_size",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Tiles per forward pass.",
        ),
        click.option(
            "--precision",
            type=click.Choice(PRECISION_CHOICES),
            default=precision,
            show_default=True,
            help="auto: bf16 on CPUs with AMX and on GPUs (where it is faster), else fp32. "
            "int8: --engine onnxruntime only, calibrated once on images/train/A.",
        ),
    ]
    if not photos:
        options = [option for option in options if option is not max_image_pixels]
    for option in reversed(options):
        command = option(command)
    return command


class OneLineUsageErrors(click.Command):
    """A click command whose usage errors (an unknown choice, a value of the wrong type, an unknown
    flag) are one ``error: ...`` line on stderr with exit code 2, like ``main_guard``'s, instead
    of click's usage block."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            print(f"error: {error.format_message()}", file=sys.stderr)
            ctx.exit(2)


def exit_if_left_out(report):
    """Prints the pairs an evaluation (:class:`~deblurgan.evaluate.EvaluationReport`) left out, one
    line each, and exits 1 if there are any: its means cover the other pairs only."""
    for name in report.unmatched:
        print(f"unmatched: {name}")
    for name, error in report.failed:
        print(f"skipped {name}: {flag_message(error)}")
    if not report.ok:
        sys.exit(1)
