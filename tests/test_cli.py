"""Library errors name parameters; the scripts show the flags that set them."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import invoke_script

from deblurgan.cli import FlagNames, flag_message, main_guard
from deblurgan.errors import DeblurGANError


@pytest.mark.parametrize(
    ("parameter", "message", "shown"),
    [
        ("batch_size", "batch_size=0: must be at least 1", "--batch_size 0: must be at least 1"),
        (
            "gradient_penalty_weight",
            "gradient_penalty_weight=-1: must be >= 0",
            "--gp_weight -1: must be >= 0",
        ),
        (None, "a.png: not an image; pass a PNG", "a.png: not an image; pass a PNG"),
    ],
)
def test_flag_message_names_the_flag_of_the_parameter(parameter, message, shown):
    assert flag_message(DeblurGANError(message, parameter=parameter)) == shown


def test_only_the_parameter_itself_is_renamed():
    error = DeblurGANError("crop_size=300: larger than the image; lower crop_size=", parameter="crop_size")
    assert flag_message(error) == "--crop_size 300: larger than the image; lower crop_size="


def test_the_parameters_a_fix_mentions_become_flags_too():
    error = DeblurGANError(
        "num_processes=2: pass coordinator_address=HOST:PORT, or skip_debian=True",
        parameter="num_processes", mentions=("coordinator_address", "skip_debian"),
    )  # fmt: skip
    assert flag_message(error) == "--num_processes 2: pass --coordinator_address HOST:PORT, or --skip_debian"
    error = DeblurGANError("x.deb: dpkg not found; skip_debian=True", mentions=["skip_debian"])
    assert flag_message(error) == "x.deb: dpkg not found; --skip_debian"
    error = DeblurGANError("link=True cannot link a to b; copy instead (link=False)", parameter="link")
    assert flag_message(error) == "--link cannot link a to b; copy instead (no --link)"


SCRIPTS_DIR = Path(__file__).parents[1] / "scripts"


@pytest.mark.parametrize("script", sorted(path.stem for path in SCRIPTS_DIR.glob("*.py")))
def test_a_mistyped_flag_is_one_line_naming_it_in_every_script(script, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS_DIR))  # as python does for a script (deblur_image.py)
    result = invoke_script(script, "--no_such_flag", "1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: No such option '--no_such_flag'."], result.stderr


def test_ctrl_c_in_a_script_is_one_line_and_the_shells_exit_status():
    """Click's own handling printed "Aborted!" and exited 1, where a shell reports SIGINT as 130."""

    @click.command()
    @main_guard
    def command():
        raise KeyboardInterrupt

    result = CliRunner().invoke(command, [])
    assert (result.exit_code, result.stderr) == (130, "\ninterrupted\n")


def test_sigterm_stops_a_script_as_ctrl_c_does_with_exit_143_and_the_handler_is_restored():
    """deblur.py or test.py sent SIGTERM (a scheduler, kill) died at once: no note of the photos
    written, a temporary file left behind."""
    stopped_in = []

    @click.command()
    @main_guard
    def command():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # a signal is handled between bytecodes: long before this ends
        except KeyboardInterrupt:
            stopped_in.append("command")  # the library's own clean-up (deblur_folder's note) runs
            raise

    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    result = CliRunner().invoke(command, [])
    assert (result.exit_code, result.stderr, stopped_in) == (143, "\ninterrupted\n", ["command"])
    assert time.monotonic() - started < 4
    assert signal.getsignal(signal.SIGTERM) == before


_SLOW_EXIT = """
import atexit, time
atexit.register(time.sleep, 5)  # stands for TensorFlow's and JAX's exit hooks, registered on import
import click
from deblurgan.cli import main_guard

@click.command()
@main_guard
def command():
    print("done", flush=True)

command()
"""


@pytest.mark.slow
def test_ctrl_c_while_a_finished_script_exits_ends_it_quietly_with_130():
    """Before: "Exception ignored in atexit callback ... KeyboardInterrupt" and exit status 0."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_EXIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout.readline() == "done\n"
    time.sleep(1)  # in the exit hook now
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert (process.returncode, stderr) == (130, "")
    assert time.monotonic() - started < 3


def test_a_library_message_naming_its_parameters_names_flags_in_a_script():
    record = logging.LogRecord("deblurgan", logging.INFO, "", 0, "run.n_epochs=%d; more", (3,), None)
    record.parameters = ["run.n_epochs"]
    assert FlagNames().filter(record) and record.getMessage() == "--n_epochs 3; more"


def test_parameters_in_the_arguments_of_a_library_message_are_named_as_flags_too():
    """deblur.py stopped by Ctrl-C advised "skip_existing=True" (an argument of the message)."""
    message = "%d of %d photos written; %s"
    record = logging.LogRecord(
        "deblurgan", logging.WARNING, "", 0, message, (1, 3, "skip_existing=True goes on"), None
    )
    record.parameters = ["skip_existing", "overwrite"]
    assert (
        FlagNames().filter(record) and record.getMessage() == "1 of 3 photos written; --skip_existing goes on"
    )
