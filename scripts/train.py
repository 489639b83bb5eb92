"""Trains a DeblurGAN generator on paired blurred/sharp images.

    python scripts/train.py --n_epochs 50 --batch_size 2 --critic_updates 5

Reads DATA_DIR/train/{A,B} (and DATA_DIR/test/{A,B} for validation), writes per-epoch checkpoints
to --weights_dir and logs (tqdm, TensorBoard, losses.csv) to --log_dir. Ctrl-C or SIGTERM saves the
state; the same command with --resume continues. Each option is a field of deblurgan.config.
"""

import dataclasses
import logging
import os
import signal
import sys
import typing


def _virtual_cpu_devices(argv):
    """``--devices N``: N virtual CPU devices for JAX, which reads XLA_FLAGS once, when imported
    (below); on a GPU host the flag changes nothing."""
    values = [b for a, b in zip(argv, argv[1:], strict=False) if a == "--devices"]
    values += [a.split("=", 1)[1] for a in argv if a.startswith("--devices=")]
    if values and values[-1].isdigit() and int(values[-1]) > 1:
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
        os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={values[-1]}"])


_STOPS_WHILE_LOADING = []


def _exit_on_signals():
    """Ctrl-C or SIGTERM while the modules below load (seconds of TensorFlow) ends the process,
    quietly: there is nothing to save yet. Set first thing, as a shell starts background jobs with
    SIGINT ignored, and a stop sent then (run-keeper's) must not be lost. It is also noted, for
    :func:`_install_signal_handlers`: Python swallows the SystemExit if it lands in a library's
    garbage-collection callback (``deblurgan`` holds signals while it loads, but not after)."""

    def leave(signum, frame):
        _STOPS_WHILE_LOADING.append(signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, leave)
    signal.signal(signal.SIGTERM, leave)


if __name__ == "__main__":
    _exit_on_signals()
_virtual_cpu_devices(sys.argv)

import click  # noqa: E402

from deblurgan import distribution  # noqa: E402
from deblurgan.cli import FlagNames, OneLineUsageErrors, exit_now, flag_message, main_guard  # noqa: E402
from deblurgan.config import FLAT_NAMES, GENERATOR_VARIANT, SECTIONS, TrainingConfig  # noqa: E402
from deblurgan.model import GENERATOR_PRESETS  # noqa: E402
from deblurgan.training_loop import request_stop, resume_training, train  # noqa: E402


def config_options(command):
    """One option per config field with a help text, named by its flat name (``--critic_filters``)."""
    flat_names = {place: flat for flat, place in FLAT_NAMES.items()}
    for section, config_class in reversed(SECTIONS.items()):
        for field in reversed(dataclasses.fields(config_class)):
            if "help" not in field.metadata:
                continue
            name = flat_names.get((section, field.name), field.name)
            flags = field.metadata["flags"] or (f"--{name}",)
            kwargs = dict(
                default=None if name in GENERATOR_VARIANT else field.default, help=field.metadata["help"]
            )
            choices = field.metadata["choices"]
            kind = next(t for t in (*typing.get_args(field.type), field.type) if t is not type(None))
            if kind is bool:
                flags = (f"--{name}/--no_{name}",)
            elif choices:
                kwargs["type"] = click.Choice(choices)
            elif kind in (int, float):
                kwargs["type"] = kind
            command = click.option(*flags, name, **kwargs)(command)
    return command


def distribution_options(command):
    """--devices and the multi-process options (deblurgan.distribution.start's arguments)."""
    options = [
        click.option("--devices", type=int, default=None, show_default="every GPU, or 1 on a CPU",
                     help="Devices per process; --batch_size is the global batch, split over all of "
                     "them. On a CPU: N virtual devices. PyTorch trains on one."),
        click.option("--coordinator_address", default=None,
                     help="HOST:PORT of process 0 (TensorFlow: or every process's, comma separated)."),
        click.option("--num_processes", type=int, default=1, help="Processes (machines) in the run."),
        click.option("--process_id", type=int, default=0, help="This process's number, 0 to P-1."),
        click.option("--coordinator_timeout", type=float, default=distribution.DEFAULT_TIMEOUT,
                     help="Seconds to wait for the other processes."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@click.command(
    cls=OneLineUsageErrors,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@config_options
@click.option(
    "--preset",
    default="sicara",
    type=click.Choice(tuple(GENERATOR_PRESETS)),
    help="Generator variant; --norm/--output_mode/--upsampling override parts of it.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --weights_dir from its saved state.")
@distribution_options
@main_guard
def main(resume, devices, coordinator_address, num_processes, process_id, coordinator_timeout, **flags):
    _install_signal_handlers()
    replicas = None
    try:
        config = TrainingConfig.from_flags(**flags)
        replicas = distribution.start(
            devices, coordinator_address, num_processes, process_id, timeout=coordinator_timeout
        )
        _print_progress_messages(replicas.is_chief)
        (resume_training if resume else train)(config, replicas=replicas)
    except KeyboardInterrupt as interrupt:
        code = 128 + (interrupt.args[0] if interrupt.args else signal.SIGINT)
        if not isinstance(interrupt, distribution.StoppedTogether):  # a second Ctrl-C, or one at start-up
            _leave_at_once(replicas, code)
        sys.exit(code)
    except distribution.ProcessLost as error:
        # Process 0 alone: elsewhere, process 0 may be waiting for the others at JAX's shutdown barrier
        if replicas.is_chief:
            _leave_at_once(replicas, 2, error)
        raise


def _leave_at_once(replicas, code, error=None):
    """Ends a process of several without the exit that waits for the others (JAX's shutdown barrier,
    which aborts the process after --coordinator_timeout when one of them is gone). The others find it
    gone (distribution.ProcessLost) and end too."""
    if replicas is None or replicas.num_processes == 1:
        return
    if error is not None:
        print(f"error: {flag_message(error)}", file=sys.stderr)
    exit_now(code)


def _install_signal_handlers():
    """Ctrl-C and SIGTERM (a scheduler's warning before it preempts a job) save the position."""
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if _STOPS_WHILE_LOADING:  # one that :func:`_exit_on_signals`'s handler could not end the process for
        sys.exit(128 + _STOPS_WHILE_LOADING[0])


def _print_progress_messages(chief=True):
    """The training loop's messages (epochs, resume, interruption) on stdout, one line each (on
    process 0 only)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(FlagNames())
    logger = logging.getLogger("deblurgan.training_loop")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if chief else logging.WARNING)
    logger.propagate = False


if __name__ == "__main__":
    main()
