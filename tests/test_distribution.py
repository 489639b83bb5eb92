"""Data-parallel training (deblurgan.distribution): a step on two devices is the one-device step.

The two devices are virtual CPU devices, so the tests run in fresh processes: JAX reads XLA_FLAGS
when it is imported, and TensorFlow's logical devices must be set before its runtime starts.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from deblurgan import distribution
from deblurgan.cli import flag_message
from deblurgan.datasets import PairedImageDataset
from deblurgan.errors import DeblurGANError
from deblurgan.training import GAN_MODES

REPO = Path(__file__).resolve().parents[1]

# One step of every GAN mode on a global batch of 4: first on one device, then split over two.
# SGD, because Adam and RMSprop divide by the gradients' own size, which turns the rounding noise
# of a (near-)zero gradient (a conv bias before instance norm) into a full-size step; the update
# path under test is the same for every optimizer. Batch norm is on (generator and Sicara critic)
# and dropout off: both backends normalise with the statistics of the global batch. Gradient-norm
# clipping is on (0.01, below every norm here: the Sicara critic's is 0.017 under wgan); its norm,
# logged and compared, is the whole batch's, not a replica's share's.
_EQUAL_STEPS = """
import os
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
import json
import keras, numpy as np
from deblurgan import distribution, losses
from deblurgan.model import discriminator_model, generator_model, patchgan_critic_model
from deblurgan.training import DeblurGANTrainer

two = distribution.start(devices=2)
assert two.n_devices == 2, two
rng = np.random.default_rng(0)
blurred, sharp = (rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32") for _ in range(2))

def one_step(gan_mode, replicas):
    with replicas.scope():
        keras.utils.set_random_seed(0)
        generator = generator_model(n_filters=4, n_blocks=1, norm="batch", dropout_rate=0.0)
        if gan_mode == "wgan":
            critic = discriminator_model(input_shape=(16, 16, 3), n_filters=4)
        else:
            critic = patchgan_critic_model(n_filters=4, n_layers=2)
        trainer = DeblurGANTrainer(
            generator, critic, gan_mode=gan_mode, content_loss=losses.content_loss("l1"),
            critic_updates=2, generator_optimizer=keras.optimizers.SGD(1e-3),
            critic_optimizer=keras.optimizers.SGD(1e-3), clip_norm=0.01,
        )
        logs = trainer.train_on_batch(blurred, sharp)
        return logs, {k: v for k, v in trainer.get_state().items() if k != "trainer/rng"}

result = {}
for gan_mode in GAN_MODES_TO_TEST:
    logs_1, state_1 = one_step(gan_mode, distribution.Replicas())
    logs_2, state_2 = one_step(gan_mode, two)
    # the largest difference of each variable relative to its size (at least 1)
    error = max(
        float(np.max(np.abs(state_1[k].astype("float64") - state_2[k])))
        / max(1.0, float(np.max(np.abs(state_1[k]))))
        for k in state_1
    )
    log_error = max(abs(logs_1[k] - logs_2[k]) / max(1.0, abs(logs_1[k])) for k in logs_1)
    clipped = logs_1["generator/grad_norm"] > 0.01 and logs_1.get("critic/grad_norm", 1.0) > 0.01
    result[gan_mode] = dict(
        error=error, log_error=log_error, same_keys=sorted(logs_1) == sorted(logs_2), clipped=clipped
    )
print(json.dumps(result))
"""


# Every mode in one fresh process per engine: a process start costs seconds of CI.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_a_step_on_two_devices_equals_the_one_device_step_in_every_gan_mode(run_python, backend):
    gan_modes = tuple(GAN_MODES)
    code = f"GAN_MODES_TO_TEST = {gan_modes!r}\n{_EQUAL_STEPS}"
    result = json.loads(run_python(code, backend=backend).strip().splitlines()[-1])

    assert sorted(result) == sorted(gan_modes)
    for gan_mode, row in result.items():
        assert row["same_keys"], gan_mode
        assert row["clipped"], (gan_mode, row)  # clip_norm was below the gradients' norms
        assert row["error"] < 1e-5, (gan_mode, row)
        assert row["log_error"] < 1e-5, (gan_mode, row)


def test_the_shares_of_a_batch_make_up_the_one_device_batch(tmp_path):
    from test_train_script import _write_pairs

    _write_pairs(tmp_path, 8)
    dataset = PairedImageDataset(tmp_path, batch_size=4, crop_size=16, seed=3, workers=0)
    whole = dataset.get_batch(1, epoch=2)
    shares = [
        dataset.get_batch(1, epoch=2, rows=distribution.Replicas(4, 2, p).local_rows(4)) for p in (0, 1)
    ]

    for part in (0, 1):  # blurred, sharp
        np.testing.assert_array_equal(np.concatenate([s[part] for s in shares]), whole[part])
    prefetched = next(dataset.prefetch_iter(epoch=2, start=1, rows=range(2, 4)))
    np.testing.assert_array_equal(prefetched[1], whole[1][2:])


def test_the_global_batch_must_divide_by_the_devices():
    distribution.Replicas(n_devices=2).check_batch_size(4)
    with pytest.raises(DeblurGANError, match=r"data.batch_size=6: .* divide by the 4 devices") as error:
        distribution.Replicas(n_devices=4).check_batch_size(6)
    assert error.value.parameter == "data.batch_size"


@pytest.mark.backend
def test_impossible_requests_are_one_line_errors():
    with pytest.raises(DeblurGANError, match="process_id=2: must be 0 to 1") as error:
        distribution.start(num_processes=2, process_id=2, coordinator_address="localhost:1234")
    assert error.value.parameter == "process_id"
    with pytest.raises(DeblurGANError, match="num_processes=2: pass coordinator_address=HOST:PORT") as error:
        distribution.start(num_processes=2, process_id=1)
    assert flag_message(error.value).startswith("--num_processes 2: pass --coordinator_address HOST:PORT")
    for address in ("localhost", "localhost:abc", "a:1,b"):  # tracebacks, or a wait on JAX, before
        with pytest.raises(DeblurGANError, match="is not HOST:PORT") as error:
            distribution.start(num_processes=2, coordinator_address=address)
        assert error.value.parameter == "coordinator_address"
    with pytest.raises(DeblurGANError) as error:
        distribution.start(num_processes=2, coordinator_address="localhost:1234", timeout=0)
    assert flag_message(error.value) == "--coordinator_timeout 0: must be above 0 seconds"
    if keras.backend.backend() != "tensorflow":  # TensorFlow splits a CPU into any number (not here)
        expected = "trains on one device" if keras.backend.backend() == "torch" else "only 1 cpu device"
        with pytest.raises(DeblurGANError, match=expected):
            distribution.start(devices=64)
    assert distribution.start().n_devices == 1  # a CPU: one device unless asked


@pytest.mark.backend
def test_a_port_something_listens_at_is_refused_before_joining():
    """The port this process is to listen at (JAX: process 0's; TensorFlow: PORT + process_id) held
    by another listener: JAX waited for the timeout (two processes 0) or failed with a misleading
    'could not join', TensorFlow printed a gRPC traceback. Now one line, at once."""
    backend = keras.backend.backend()
    if backend == "torch":
        pytest.skip("PyTorch trains in one process")
    process_id = 1 if backend == "tensorflow" else 0
    with socket.socket() as holder:  # as a gRPC server of another process of the run would
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(DeblurGANError) as error:
            distribution.start(
                num_processes=2, process_id=process_id, coordinator_address=f"localhost:{port - process_id}"
            )
    assert error.value.parameter == "coordinator_address"
    assert flag_message(error.value) == (
        f"--coordinator_address localhost:{port - process_id}: port {port}, where this process is to "
        "listen, is in use on this machine, by another "
        f"program or by another process started with --process_id {process_id}; choose a free port, or "
        "give each process its own --process_id N"
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_script_refuses_a_batch_that_does_not_divide_and_an_absent_coordinator(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax"}
    common = [sys.executable, str(REPO / "scripts" / "train.py"), "--weights_dir", str(tmp_path / "w"),
              "--log_dir", str(tmp_path / "l"), "--n_filters", "4", "--n_blocks", "1"]  # fmt: skip
    result = subprocess.run(
        [*common, "--devices", "3", "--batch_size", "4"], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --batch_size 4: the global batch must divide by the 3 devices"
    ]

    address = f"127.0.0.1:{_free_port()}"  # nobody listens: process 1 gives up after the timeout
    result = subprocess.run(
        [*common, "--coordinator_address", address, "--num_processes", "2", "--process_id", "1",
         "--coordinator_timeout", "5"], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    expected = f"error: --coordinator_address {address}: could not join the other processes within 5.0 s"
    assert result.stderr.strip().splitlines()[-1].startswith(expected)


def _train_process_0(tmp_path, backend, address, timeout, **popen):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend}
    command = [sys.executable, str(REPO / "scripts" / "train.py"), "--weights_dir", str(tmp_path / "w"),
               "--log_dir", str(tmp_path / "l"), "--n_filters", "4", "--n_blocks", "1",
               "--coordinator_address", address, "--num_processes", "2", "--process_id", "0",
               "--coordinator_timeout", str(timeout)]  # fmt: skip
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
def test_process_0_whose_peer_never_comes_ends_in_one_line_at_the_timeout(tmp_path):
    """TensorFlow used to wait for ever inside its C++ (holding the GIL, deaf to Ctrl-C and SIGTERM)."""
    address = f"127.0.0.1:{_free_port()}"
    with _train_process_0(tmp_path, "tensorflow", address, 3) as process:
        try:
            _, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
    assert process.returncode == -signal.SIGKILL  # ended by its watchdog
    assert stderr.strip().splitlines() == [
        f"error: --coordinator_address {address}: the 2 processes did not all join within 3 s; start every "
        "one (its own --process_id N) within that time, or check the address"
    ]


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_the_other_processes_ends_at_once_in_one_line(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    with _train_process_0(tmp_path, "jax", address, 300, start_new_session=True) as process:
        try:
            deadline = time.monotonic() + 120
            while not _watchdog_started(process.pid):  # it runs while the process waits for its peer
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.01)  # soon after it starts: a Ctrl-C there once gave the watchdog's traceback
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: to the whole foreground group
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGINT
    assert stderr.strip().splitlines() == [f"error: interrupted while joining the processes at {address}"]


def _watchdog_started(pid):
    """Whether ``pid`` has started the watchdog of its join (a child running deblurgan's _WATCHDOG)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children += (task / "children").read_text().split()
    for child in children:
        with contextlib.suppress(OSError):  # (it may have ended meanwhile)
            if b"select.select" in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
    return False
