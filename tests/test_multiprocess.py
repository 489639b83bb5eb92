"""Data-parallel training across processes: two ``scripts/train.py`` processes on localhost.

JAX joins them with ``jax.distributed.initialize`` (CPU collectives over Gloo), TensorFlow with
``MultiWorkerMirroredStrategy`` (``TF_CONFIG``). Each process has one CPU device and reads its
half of every global batch; the reference is the same run in one process on one device, which
the two-process run must reproduce (up to the order of floating-point sums). Also: a run trained
on two devices resumes on one.
"""

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = [
    "--n_filters", "4", "--n_blocks", "1", "--norm", "none", "--dropout_rate", "0", "--gan_mode", "none",
    "--content_loss", "l1", "--batch_size", "4", "--crop_size", "16", "--steps_per_epoch", "2",
    "--val_images", "0", "--workers", "0", "--no_progress",
]  # fmt: skip


@pytest.fixture
def data_dir(tmp_path):
    from test_train_script import _write_pairs

    _write_pairs(tmp_path / "images" / "train", 8)
    return tmp_path / "images"


def _command(data_dir, run_dir, *args):
    return [
        sys.executable, str(REPO / "scripts" / "train.py"), "--data_dir", str(data_dir),
        "--weights_dir", str(run_dir / "weights"), "--log_dir", str(run_dir / "logs"), *TINY_ARGS, *args,
    ]  # fmt: skip


def _env(backend):
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend}


def _run(backend, command):
    result = subprocess.run(command, env=_env(backend), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _free_ports(n):
    """A port P with P..P+n-1 free (TensorFlow gives worker i the port P+i)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        try:
            for port in range(first, first + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no free ports")


def _run_two_processes(backend, command, run_dir, timeout=600):
    """Starts processes 0 and 1 of ``command``; returns their (returncode, pid, stdout, stderr)."""
    return _finish(_start_two_processes(backend, command, run_dir), timeout)


def _start_two_processes(backend, command, run_dir, process_1_args=()):
    address = f"localhost:{_free_ports(2)}"
    processes = []
    for process_id in (0, 1):
        out, err = (open(run_dir / f"p{process_id}.{kind}", "w") for kind in ("out", "err"))  # noqa: SIM115
        args = ["--num_processes", "2", "--process_id", str(process_id), "--coordinator_address", address]
        extra = list(process_1_args) if process_id == 1 else []
        process = subprocess.Popen([*command, *args, *extra], env=_env(backend), stdout=out, stderr=err)
        processes.append((process, out, err))
    return processes


def _finish(processes, timeout):
    results = []
    for process, out, err in processes:
        try:
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:  # a hung process: end both, then fail
                for other, _, _ in processes:
                    other.kill()
            out.close()
            err.close()
        name = Path(out.name).with_suffix("")
        texts = [Path(f"{name}.{kind}").read_text() for kind in ("out", "err")]
        results.append((process.returncode, process.pid, *texts))
    return results


def _when_printed(path, text, processes, timeout=300):
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert time.monotonic() < deadline and all(p.poll() is None for p, _, _ in processes), "not printed"
        time.sleep(0.05)


def _when_training(run_dir, processes, timeout=300):
    """Returns once process 0 has saved an epoch: both processes are in the epoch loop."""
    deadline = time.monotonic() + timeout
    while not (run_dir / "weights" / "training_state.npz").exists():
        assert time.monotonic() < deadline and all(p.poll() is None for p, _, _ in processes), "not training"
        time.sleep(0.2)


def _losses(run_dir):
    with open(run_dir / "logs" / "losses.csv") as f:
        return list(csv.DictReader(f))


def _assert_same_state(first, second, tolerance=1e-5):
    """The networks' and optimizers' variables of two ``training_state.npz``, equal up to rounding."""
    first, second = np.load(first), np.load(second)
    keys = sorted(k for k in first.files if k.startswith(("generator", "critic")))
    assert keys and keys == sorted(k for k in second.files if k.startswith(("generator", "critic")))
    for key in keys:
        a, b = first[key].astype("float64"), second[key].astype("float64")
        assert np.max(np.abs(a - b)) <= tolerance * max(1.0, float(np.max(np.abs(a)))), key


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_processes_train_one_epoch_as_one_process_does_and_only_process_0_writes(
    data_dir, tmp_path, backend
):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    results = _run_two_processes(backend, _command(data_dir, two, "--n_epochs", "1"), two)

    for returncode, _, _, stderr in results:
        assert returncode == 0, stderr[-3000:]
    (_, pid_0, stdout_0, _), (_, _, stdout_1, _) = results
    assert "epoch 0:" in stdout_0 and "epoch 0:" not in stdout_1  # process 1 prints no progress
    names = sorted(p.name for p in (two / "weights").iterdir())
    assert len(names) == 4 and names[1].startswith("generator_0_"), names
    assert names[:1] + names[2:] == [".lock", "options.json", "training_state.npz"]  # process 0's lock
    events = [p.name for p in (two / "logs").glob("events.out.tfevents.*")]
    assert len(events) == 1 and f".{pid_0}." in events[0]  # TensorBoard: process 0's file only
    state = np.load(two / "weights" / "training_state.npz")
    assert int(state["run/epoch"]) == 1 and int(state["generator_optimizer/0"]) == 2

    # the same run in one process on one device: the same steps on the same global batches
    _run(backend, _command(data_dir, one, "--n_epochs", "1"))
    _assert_same_state(two / "weights" / "training_state.npz", one / "weights" / "training_state.npz")
    (row_two,), (row_one,) = _losses(two), _losses(one)
    assert float(row_two["generator/content"]) == pytest.approx(float(row_one["generator/content"]), rel=1e-5)


@pytest.mark.slow
def test_a_run_trained_on_two_devices_resumes_on_one(data_dir, tmp_path):
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    _run("jax", _command(data_dir, resumed, "--n_epochs", "1", "--devices", "2"))
    result = _run("jax", _command(data_dir, resumed, "--n_epochs", "2", "--devices", "1", "--resume"))

    assert "resuming at epoch 1" in result.stdout
    names = sorted(p.name for p in (resumed / "weights").iterdir() if p.name != ".lock")
    assert [n.split("_")[:2] for n in names[:2]] == [["generator", "0"], ["generator", "1"]], names
    assert names[2:] == ["options.json", "training_state.npz"]
    state = np.load(resumed / "weights" / "training_state.npz")
    assert int(state["run/epoch"]) == 2
    assert int(state["generator_optimizer/0"]) == 4  # 2 steps per epoch: the saved optimizer went on
    assert [row["epoch"] for row in _losses(resumed)] == ["0", "1"]

    # two epochs straight on one device: the same weights (the step on 2 devices is the 1-device step)
    _run("jax", _command(data_dir, straight, "--n_epochs", "2"))
    _assert_same_state(*(run / "weights" / "training_state.npz" for run in (resumed, straight)))


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend, asked, signum, when",
    [("jax", 1, signal.SIGINT, "training"), ("tensorflow", 0, signal.SIGTERM, "training"),
     ("jax", 0, signal.SIGTERM, "start-up")],
)  # fmt: skip
def test_a_stop_asked_of_one_process_stops_both_after_the_same_step_and_process_0_saves_it(
    data_dir, tmp_path, backend, asked, signum, when
):
    """One process stopping alone would leave the other waiting in the next step's all-reduce (JAX:
    both then aborted after 5 minutes); at start-up, the stop was lost or both hung."""
    processes = _start_two_processes(backend, _command(data_dir, tmp_path, "--n_epochs", "100000"), tmp_path)
    if when == "training":
        _when_training(tmp_path, processes)
    else:  # the processes have joined (JAX prints this line then), and build their networks
        _when_printed(tmp_path / "p0.out", "[Gloo] Rank 0 is connected", processes)
        time.sleep(0.5)
    processes[asked][0].send_signal(signum)
    (code_0, _, stdout_0, stderr_0), (code_1, _, stdout_1, stderr_1) = _finish(processes, timeout=120)

    assert (code_0, code_1) == (128 + signum, 128 + signum), stderr_0[-2000:] + stderr_1[-2000:]
    state = np.load(tmp_path / "weights" / "training_state.npz")
    epoch, batch = int(state["run/epoch"]), int(state["run/batch"])
    at = f"interrupted at epoch {epoch}, batch {batch}: state saved in"
    if batch == 2:  # the epoch's last (--steps_per_epoch 2)
        at = f"interrupted after the last batch of epoch {epoch}, before its checkpoint: state saved in"
    assert f"{at} {tmp_path / 'weights'};" in stdout_0
    assert f"{at} process 0's weights_dir;" in stdout_1  # process 1 writes nothing
    assert int(state["generator_optimizer/0"]) == 2 * int(state["run/epoch"]) + int(state["run/batch"])


@pytest.mark.slow
@pytest.mark.parametrize("backend, killed", [("jax", 1), ("tensorflow", 0)])
def test_a_killed_process_ends_the_other_at_once_with_one_line_naming_the_state_to_resume(
    data_dir, tmp_path, backend, killed
):
    """Before: a traceback, then JAX's C++ abort after its heartbeat timeout (rc 134)."""
    processes = _start_two_processes(backend, _command(data_dir, tmp_path, "--n_epochs", "100000"), tmp_path)
    _when_training(tmp_path, processes)
    processes[killed][0].kill()
    code, _, _, stderr = _finish(processes, timeout=120)[1 - killed]

    assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: another process stopped answering (")
    resume = "continue with resume_training on every process (train.py: the same commands and --resume)"
    assert line.endswith(resume + ("" if killed else ", from the last state process 0 saved, if any"))
    state = np.load(tmp_path / "weights" / "training_state.npz")  # complete: written atomically
    if killed == 1:  # process 0 knows which state it saved last
        assert f"{tmp_path / 'weights'} holds the state after epoch {int(state['run/epoch']) - 1}:" in line
        assert int(state["run/batch"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "option, shown",
    [("--lr", ("--lr default", "--lr 0.001")),
     ("--num_processes", ("--num_processes 2", "--num_processes 3"))],  # JAX took process 0's, silently
)  # fmt: skip
def test_processes_started_with_different_options_are_refused_before_anything_is_written(
    data_dir, tmp_path, option, shown
):
    value = shown[1].split()[1]
    processes = _start_two_processes("jax", _command(data_dir, tmp_path), tmp_path, [option, value])
    results = _finish(processes, timeout=120)

    for process_id, (code, _, _, stderr) in enumerate(results):
        assert code == 2, stderr[-3000:]
        expected = (
            f"error: processes 0 and 1 were started differently, in {shown[process_id]} (process "
            f"{process_id}'s); start every process with the same options and training data\n"
        )
        assert expected in stderr, stderr[-3000:]
    assert not (tmp_path / "weights").exists()


@pytest.mark.slow
def test_tensorflow_workers_started_with_different_numbers_say_so_in_one_line(data_dir, tmp_path):
    """Before: two warnings of TensorFlow's, then its error cut off before the cause."""
    command = _command(data_dir, tmp_path, "--coordinator_timeout", "20")
    results = _finish(_start_two_processes("tensorflow", command, tmp_path, ["--num_processes", "3"]), 120)

    for code, _, _, stderr in results:
        assert code == 2, stderr[-3000:]
        [line] = stderr.strip().splitlines()
        assert "the workers did not all answer within 20.0 s; start every process with the same " in line
        assert "--num_processes N and --coordinator_address HOST:PORT (Collective ops is aborted by" in line
        assert "is joining a group with size" in line, line


@pytest.mark.slow
def test_a_process_that_fails_before_training_ends_the_other_with_a_line_each(data_dir, tmp_path):
    """Before: process 0 waited for process 1 in its first collective, then both aborted."""
    command = _command(data_dir, tmp_path)
    processes = _start_two_processes("jax", command, tmp_path, ["--data_dir", "/no"])
    (code_0, _, _, stderr_0), (code_1, _, _, stderr_1) = _finish(processes, timeout=120)

    assert (code_0, code_1) == (2, 2) and "Traceback" not in stderr_0 + stderr_1, stderr_0[-3000:]
    assert "error: --data_dir /no: expected /no/train/A and /no/train/B" in stderr_1
    assert stderr_0.endswith("error: process 1 could not start training; its own error says why\n")
