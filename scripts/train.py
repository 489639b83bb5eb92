"""Trains a DeblurGAN generator on paired blurred/sharp images.

    python scripts/train.py --n_epochs 50 --batch_size 2 --critic_updates 5

Reads DATA_DIR/train/{A,B} (and DATA_DIR/test/{A,B} for validation), writes per-epoch checkpoints
to --weights_dir and logs (tqdm, TensorBoard, losses.csv) to --log_dir. Ctrl-C or SIGTERM saves the
state; the same command with --resume continues. Each option is a field of deblurgan.config.
"""

import dataclasses
import logging
import signal
import sys
import typing

import click

from deblurgan.cli import OneLineUsageErrors, main_guard
from deblurgan.config import FLAT_NAMES, GENERATOR_VARIANT, SECTIONS, TrainingConfig
from deblurgan.model import GENERATOR_PRESETS
from deblurgan.training_loop import resume_training, train


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
@main_guard
def main(resume, **flags):
    _install_signal_handlers()
    _print_progress_messages()
    config = TrainingConfig.from_flags(**flags)
    try:
        (resume_training if resume else train)(config)
    except KeyboardInterrupt as interrupt:
        sys.exit(128 + (interrupt.args[0] if interrupt.args else signal.SIGINT))


def _install_signal_handlers():
    """Ctrl-C and SIGTERM (a scheduler's warning before it preempts a job) save the position.

    Set here, not inherited: a shell starts background jobs with SIGINT ignored.
    """

    def stop(signum, frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _print_progress_messages():
    """The training loop's messages (epochs, resume, interruption) on stdout, one line each."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("deblurgan.training_loop")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


if __name__ == "__main__":
    main()
