"""Data-parallel training: one step over several devices, and over several processes (machines).

Every step works on the *global* batch (``--batch_size``); each device computes on an equal share
of it, and the networks' gradients are averaged over the whole batch, so a step on N devices is
the one-device step on the same batch (up to the order of floating-point sums). Each process
reads only its rows of every batch (:meth:`Replicas.local_rows`); the union of the shares is the
one-device batch of the same ``(seed, epoch, index)``. Only process 0 writes files.

* JAX: ``keras.distribution.DataParallel`` over a one-axis mesh. Variables are replicated, the
  batch is split along its first axis (:func:`place_batch`), and ``jax.jit`` compiles the same
  stateless step into a data-parallel program (XLA inserts the all-reduces). Batch-norm
  statistics are those of the global batch: synchronised, exactly as on one device.
* TensorFlow: ``tf.distribute.MirroredStrategy`` (``MultiWorkerMirroredStrategy`` across
  processes). Variables are mirrored, the step runs once per replica on its share
  (:func:`across_replicas`), the optimizer sums the replicas' gradients (each replica's are divided
  by the replica count first, :func:`replica_gradients`). Batch norm is synchronised during the
  steps (statistics of the global batch, Keras' ``synchronized=True``, which the saved files do not
  carry); the losses and statistics are averaged over the replicas (:func:`replica_mean`).
* PyTorch: one device.

``start(...)`` (what ``scripts/train.py --devices N`` calls) checks the request, joins the other
processes and returns the :class:`Replicas` whose ``scope()`` the networks are built and trained in.
On a CPU, ``--devices N`` splits the processor into N virtual devices: JAX needs
``--xla_force_host_platform_device_count=N`` in ``XLA_FLAGS`` before it is imported (the scripts
set it), TensorFlow's logical devices are set here before its runtime starts.
"""

import contextlib
import dataclasses
import errno
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zlib

import keras
import numpy as np

from deblurgan.errors import DeblurGANError, shown_value
from deblurgan.interrupts import in_main_thread

DEFAULT_TIMEOUT = 60  # seconds to wait for the coordinator and the other processes
# In the errors of a collective whose peer process went away (JAX's Gloo over TCP; TensorFlow's)
_LOST_PROCESS_SIGNS = ("Gloo", "Connection reset by peer", "Socket closed", "Collective ops is aborted")


@functools.cache
def _tensorflow_gather(strategy):
    """``values`` of every replica of ``strategy``, stacked; traced once (eager, TensorFlow would
    trace its collective again at every call)."""
    import tensorflow as tf

    def gather(values):
        return strategy.gather(strategy.run(lambda v: v[None], args=(values,)), axis=0)

    return tf.function(gather)


class ProcessLost(DeblurGANError):
    """Another process of the run stopped mid-step: this one can only leave, without the exit that
    waits for every process (JAX's shutdown barrier would wait out its timeout, then abort)."""


class StoppedTogether(KeyboardInterrupt):
    """A Ctrl-C or SIGTERM that every process of the run agreed on, after the same step: they can
    all exit normally (any other stop leaves the others waiting for this process)."""


@dataclasses.dataclass(frozen=True)
class Replicas:
    """Where a run trains: ``n_devices`` devices in all, over ``num_processes`` processes.

    ``strategy``: the ``tf.distribute`` strategy (TensorFlow), ``distribution``: the
    ``keras.distribution.DataParallel`` (JAX); both None on one device.
    """

    n_devices: int = 1
    num_processes: int = 1
    process_id: int = 0
    strategy: object = None
    distribution: object = None

    @property
    def is_chief(self):
        """Process 0: the one that writes checkpoints and logs."""
        return self.process_id == 0

    def scope(self):
        """The context the networks and optimizers are built and trained in."""
        if self.strategy is not None:
            return self.strategy.scope()
        if self.distribution is not None:
            return self.distribution.scope()
        return contextlib.nullcontext()

    def check_batch_size(self, batch_size):
        if batch_size % self.n_devices:
            raise DeblurGANError(
                f"data.batch_size={batch_size}: the global batch must divide by the {self.n_devices} devices",
                parameter="data.batch_size",
            )

    def local_rows(self, batch_size):
        """This process's rows of a global batch of ``batch_size``."""
        share = batch_size // self.num_processes
        return range(self.process_id * share, (self.process_id + 1) * share)

    def gather(self, values):
        """Every process's ``values`` (whole numbers under 2**31), one row per process. A collective:
        every process must call it, with as many values."""
        values = np.asarray(values, dtype="int32")
        if self.num_processes == 1:
            return values[None]
        if self.strategy is not None:
            rows = _tensorflow_gather(self.strategy)(values)  # a row per replica
            return np.asarray(rows)[:: self.n_devices // self.num_processes]
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(values))

    def check_same(self, settings):
        """Refuses to go on unless every process has the same ``settings`` ({name: value}): processes
        that differ would train different steps, and wait for one another in the first that differs.
        ``settings=None``: this process cannot start (the caller raises why); the others then stop
        too, and all can exit together (one leaving alone would leave the others waiting for it)."""
        if self.num_processes == 1:
            return
        failed = np.flatnonzero(self._gather_or_lost([settings is None]))
        if settings is None:
            return
        if len(failed):
            raise DeblurGANError(f"process {failed[0]} could not start training; its own error says why")
        names = sorted(settings)
        rows = self._gather_or_lost(
            [zlib.crc32(repr(settings[name]).encode()) & 0x7FFFFFFF for name in names]
        )
        for process, row in enumerate(rows):
            differ = [name for name, first, other in zip(names, rows[0], row, strict=True) if first != other]
            if differ:
                # parameters as name=value (shown as flags by cli.py), what follows from them as "name value"
                here = ", ".join(
                    f"{name} {settings[name]}" if " " in name else f"{name}={shown_value(settings[name])}"
                    for name in differ
                )
                raise DeblurGANError(
                    f"processes 0 and {process} were started differently, in {here} (process "
                    f"{self.process_id}'s); start every process with the same options and training data",
                    mentions=[name for name in differ if " " not in name],
                )  # fmt: skip

    def _gather_or_lost(self, values):
        try:
            return self.gather(values)
        except Exception as error:
            if (lost := self.lost_process(error)) is None:
                raise
            raise ProcessLost(f"{lost} before training began") from None

    def agreed_stop(self, signum):
        """The largest of the processes' ``signum`` (0: none was asked to stop), so that all stop after
        the same step: one that stopped alone would leave the others waiting in the next."""
        return int(self.gather([signum]).max())

    def lost_process(self, error):
        """What went wrong, when ``error`` is a collective that failed because another process
        stopped (killed, or its machine lost); None for any other error."""
        lines = [line for line in str(error).splitlines() if any(s in line for s in _LOST_PROCESS_SIGNS)]
        if self.num_processes == 1 or not lines:
            return None
        return f"another process stopped answering ({lines[0].strip().rstrip(':')[:160]})"


def start(devices=None, coordinator_address=None, num_processes=1, process_id=0, timeout=DEFAULT_TIMEOUT):
    """Joins the other processes (if any), checks the request and returns the :class:`Replicas`.

    ``devices``: devices per process; None: every visible accelerator, or 1 on a CPU.
    ``coordinator_address``: ``HOST:PORT`` of process 0 (or every process's address, comma
    separated, process 0 first; TensorFlow needs one per process and gives process i the port
    PORT + i of HOST when one is given). ``timeout``: seconds to wait for the others.
    """
    if devices is not None and devices < 1:
        raise DeblurGANError(f"devices={devices}: must be at least 1", parameter="devices")
    if num_processes < 1:
        raise DeblurGANError(f"num_processes={num_processes}: must be at least 1", parameter="num_processes")
    if not 0 <= process_id < num_processes:
        raise DeblurGANError(
            f"process_id={process_id}: must be 0 to {num_processes - 1} (num_processes={num_processes})",
            parameter="process_id",
        )
    if num_processes > 1 and not coordinator_address:
        raise DeblurGANError(
            f"num_processes={num_processes}: pass coordinator_address=HOST:PORT (process 0's)",
            parameter="num_processes",
            mentions=("coordinator_address",),
        )
    if num_processes > 1:
        _check_addresses(coordinator_address)
        if not timeout > 0:
            raise DeblurGANError(f"timeout={timeout}: must be above 0 seconds", parameter="timeout")
    backend = keras.backend.backend()
    if backend == "jax":
        return _start_jax(devices, coordinator_address, num_processes, process_id, timeout)
    if backend == "tensorflow":
        return _start_tensorflow(devices, coordinator_address, num_processes, process_id, timeout)
    if (devices or 1) > 1 or num_processes > 1:
        raise DeblurGANError(
            f"devices={devices}: the {backend} backend trains on one device; use JAX or TensorFlow "
            "for several", parameter="devices",
        )  # fmt: skip
    return Replicas()


def _check_addresses(coordinator_address):
    """Each comma-separated address is HOST:PORT with a port number."""
    for address in coordinator_address.split(","):
        host, _, port = address.rpartition(":")
        if not (host and port.isdigit() and 0 < int(port) < 65536):
            raise DeblurGANError(
                f"coordinator_address={coordinator_address}: {address!r} is not HOST:PORT (a port "
                "number from 1 to 65535)",
                parameter="coordinator_address",
            )


def _worker_addresses(coordinator_address, num_processes):
    """Every TensorFlow worker's address: as given, or PORT + i of one HOST:PORT for worker i."""
    addresses = coordinator_address.split(",")
    if len(addresses) == 1:
        host, port = addresses[0].rsplit(":", 1)
        addresses = [f"{host}:{int(port) + i}" for i in range(num_processes)]
    if len(addresses) != num_processes:
        raise DeblurGANError(
            f"coordinator_address={coordinator_address}: {len(addresses)} addresses for "
            f"num_processes={num_processes}", parameter="coordinator_address",
        )  # fmt: skip
    return addresses


def _check_port_free(coordinator_address, address, process_id):
    """Refuses the port this process is to listen at when something here listens there already:
    JAX and TensorFlow would wait until the timeout, print a C++ traceback or crash. gRPC shares
    its ports, so a second process started with the same process_id is one such listener."""
    port = int(address.rpartition(":")[2])  # address: this process's, of coordinator_address
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed run's TIME_WAIT is free
        try:
            probe.bind(("", port))
        except OSError as error:
            why = f"cannot be opened on this machine ({error.strerror}); choose another port"
            if error.errno == errno.EADDRINUSE:
                why = (
                    f"is in use on this machine, by another program or by another process started "
                    f"with process_id={process_id}; choose a free port, or give each process its own "
                    "process_id=N"
                )
            where = f"port {port}, where this process is to listen,"
            raise DeblurGANError(
                f"coordinator_address={coordinator_address}: {where} {why}",
                parameter="coordinator_address",
                mentions=("process_id",),
            ) from None


def _too_many(devices, visible, kind):
    return DeblurGANError(
        f"devices={devices}: only {visible} {kind} device(s) visible to this process", parameter="devices"
    )


def _start_jax(devices, coordinator_address, num_processes, process_id, timeout):
    import jax

    if num_processes > 1:
        address = coordinator_address.split(",")[0]
        if process_id == 0:  # it hosts the coordinator
            _check_port_free(coordinator_address, address, process_id)
        else:  # JAX aborts the process when it cannot reach the coordinator
            _wait_for(address, timeout)
        try:
            # JAX's own error (process 1 and up) comes at the timeout; its abort (process 0) after it
            with _join_deadline(address, num_processes, timeout, grace=2.0):
                # a lost process ends the others after the timeout (JAX: an abort), not 100 s or 5 min
                jax.distributed.initialize(
                    address, num_processes, process_id, initialization_timeout=int(timeout),
                    heartbeat_timeout_seconds=max(int(timeout), 30), shutdown_timeout_seconds=int(timeout),
                )  # fmt: skip
                # The first collective sets up Gloo's connections, and fails if a process is 30 s late
                # (JAX's fixed wait): here, where they have just joined, not at a later one.
                from jax.experimental import multihost_utils

                multihost_utils.sync_global_devices("deblurgan: processes joined")
        except Exception as error:  # noqa: BLE001 (jax raises plain RuntimeErrors/XlaRuntimeErrors)
            raise DeblurGANError(
                f"coordinator_address={address}: could not join the {num_processes} processes within "
                f"{timeout} s ({_reason(error)})", parameter="coordinator_address",
            ) from None  # fmt: skip
    local = jax.local_devices()
    accelerator = local[0].platform != "cpu"
    if devices is None:
        devices = len(local) if accelerator else 1
    if devices > len(local):
        raise _too_many(devices, len(local), local[0].platform)
    chosen = [d for p in range(num_processes) for d in _process_devices(jax.devices(), p)[:devices]]
    replicas = Replicas(len(chosen), num_processes, process_id)
    if len(chosen) == 1:
        return replicas
    mesh = keras.distribution.DeviceMesh(
        (len(chosen),), ["batch"], devices=[f"{d.platform}:{d.id}" for d in chosen]
    )
    return dataclasses.replace(replicas, distribution=keras.distribution.DataParallel(device_mesh=mesh))


def _wait_for(address, timeout):
    """Waits until something listens at ``address`` (``HOST:PORT``); an error after ``timeout`` s."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except (OSError, ValueError) as error:
            if time.monotonic() > deadline:
                raise DeblurGANError(
                    f"coordinator_address={address}: could not join the other processes within "
                    f"{timeout} s (nothing answers there: {error}); start process 0 first, or check "
                    "the address", parameter="coordinator_address",
                ) from None  # fmt: skip
            time.sleep(0.5)


# A watchdog process: the join holds the GIL inside TensorFlow's C++, so no Python thread can act.
# The parent writes one byte to its stdin when the join ends; end of file without it means the
# parent died during the join (Ctrl-C, as a rule).
_WATCHDOG = """
import os, select, signal, sys
parent, seconds, on_timeout, on_interrupt = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
if select.select([0], [], [], seconds)[0]:
    if not os.read(0, 1):
        sys.stderr.write(on_interrupt + "\\n")
else:
    sys.stderr.write(on_timeout + "\\n")
    os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def _join_deadline(address, num_processes, timeout, grace=0.0):
    """Ends the process with one line on stderr if the block (joining the other processes, inside
    TensorFlow's or JAX's C++, where Python cannot raise) outlasts ``timeout + grace`` s; Ctrl-C
    meanwhile ends it at once. A process that never comes otherwise hangs TensorFlow for ever, deaf
    to Ctrl-C and SIGTERM, and makes JAX abort with a C++ stack trace."""
    from deblurgan.cli import flag_message  # the scripts' form: it is their last word

    error = DeblurGANError(
        f"coordinator_address={address}: the {num_processes} processes did not all join within "
        f"{timeout:g} s; start every one (its own process_id=N) within that time, or check the address",
        parameter="coordinator_address",
        mentions=("process_id",),
    )
    lines = [f"error: {flag_message(error)}", f"error: interrupted while joining the processes at {address}"]
    main = in_main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    if callable(handler):  # Python's handler would wait for the join; the default ends the process
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    # In a session of its own, Ctrl-C never reaches the watchdog (it could land while the watchdog
    # starts, a traceback): it learns of the parent's death from its stdin instead.
    command = [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(os.getpid()), str(timeout + grace), *lines]
    watchdog = subprocess.Popen(command, stdin=subprocess.PIPE, start_new_session=True)
    try:
        yield
    finally:
        with contextlib.suppress(BrokenPipeError):  # a watchdog killed by someone else
            watchdog.stdin.write(b".")
            watchdog.stdin.close()
        watchdog.wait()
        if callable(handler):
            signal.signal(signal.SIGINT, handler)


def _process_devices(devices, process):
    return sorted((d for d in devices if d.process_index == process), key=lambda d: d.id)


def _start_tensorflow(devices, coordinator_address, num_processes, process_id, timeout):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if num_processes > 1:
        return _start_tensorflow_workers(
            tf, devices, gpus, coordinator_address, num_processes, process_id, timeout
        )
    if devices is None:
        devices = len(gpus) or 1
    if gpus:
        if devices > len(gpus):
            raise _too_many(devices, len(gpus), "GPU")
        names = [f"/gpu:{i}" for i in range(devices)]
    else:
        _split_cpu(tf, devices)
        names = [f"/cpu:{i}" for i in range(devices)]
    if devices == 1:
        return Replicas()
    return Replicas(devices, strategy=tf.distribute.MirroredStrategy(names))


def _split_cpu(tf, devices):
    """``devices`` logical CPU devices (possible only before TensorFlow's runtime starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if devices > 1 or len(tf.config.get_logical_device_configuration(cpu) or []) > 1:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
            )
        except RuntimeError:
            visible = len(tf.config.list_logical_devices("CPU"))
            if visible != devices:
                raise _too_many(devices, visible, "CPU (TensorFlow started already)") from None


def _start_tensorflow_workers(tf, devices, gpus, coordinator_address, num_processes, process_id, timeout):
    available = len(gpus) or 1
    if devices is None:
        devices = available
    if devices > available:
        raise _too_many(devices, available, "GPU" if gpus else "CPU (one per TensorFlow worker)")
    addresses = _worker_addresses(coordinator_address, num_processes)
    _check_port_free(coordinator_address, addresses[process_id], process_id)  # every worker serves
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": process_id}}
    )
    if gpus:
        tf.config.set_visible_devices(gpus[:devices], "GPU")
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=float(timeout))
    with _join_deadline(addresses[0], num_processes, timeout):
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    _check_workers_reachable(tf, strategy, addresses[0], timeout)
    return Replicas(strategy.num_replicas_in_sync, num_processes, process_id, strategy=strategy)


def _check_workers_reachable(tf, strategy, address, timeout):
    """One collective across the workers (in a tf.function: run eagerly, TensorFlow warns of its cost):
    a worker that does not answer, or one started with another num_processes, is an error."""

    def total():
        return strategy.reduce("SUM", strategy.run(tf.ones, args=((),)), axis=None)

    try:
        tf.function(total, autograph=False)()
    except Exception as error:  # noqa: BLE001 (tf.errors.* of the collective)
        raise DeblurGANError(
            f"coordinator_address={address}: the workers did not all answer within {timeout} s; start every "
            f"process with the same num_processes=N and coordinator_address=HOST:PORT ({_reason(error)})",
            parameter="coordinator_address", mentions=("num_processes", "coordinator_address"),
        ) from None  # fmt: skip


def _reason(error):
    """The first line of a JAX or TensorFlow error that says what went wrong (TensorFlow frames it in
    "Graph execution error", the op's Python stack and ``{{function_node ...}}``)."""
    said = [
        line.strip()
        for line in str(error).splitlines()
        if line.strip() and not line.strip().startswith(_FRAMING)
    ]
    return re.sub(r"\{\{function_node [^}]*\}\}\s*", "", (said or [str(error)])[0])[:160]


_FRAMING = ("Graph execution error", "Detected at node", "File ", "The error could be", "[[")


# ------------------------------------------------------------------------------------------------
# Used by deblurgan.training inside a step (they read the strategy or distribution in effect).
# ------------------------------------------------------------------------------------------------


class BatchPlacement:
    """Puts this process's rows of a global batch where the step needs them: split over the devices
    of the distribution in effect when it was made (``__call__``), ``rows(n)``: the rows of a
    global batch of ``n`` that this process holds."""

    def __init__(self):
        backend = keras.backend.backend()
        self.strategy = self.distribution = None
        self.num_processes, self.process_id = 1, 0
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.distribute.has_strategy():
                self.strategy = tf.distribute.get_strategy()
                resolver = getattr(self.strategy, "cluster_resolver", None)
                if resolver is not None and resolver.cluster_spec().as_dict():
                    self.num_processes = len(resolver.cluster_spec().as_dict().get("worker", [None]))
                    self.process_id = int(resolver.task_id or 0)
        elif backend == "jax" and keras.distribution.distribution() is not None:
            import jax

            self.distribution = keras.distribution.distribution()
            self.num_processes, self.process_id = jax.process_count(), jax.process_index()

    def rows(self, n):
        share = n // self.num_processes
        return slice(self.process_id * share, (self.process_id + 1) * share)

    def __call__(self, local):
        if self.strategy is not None:
            return self._per_replica(local)
        if self.distribution is None:
            return keras.ops.convert_to_tensor(local)
        import jax

        if isinstance(local, jax.Array) and len(local.sharding.device_set) > 1:
            return local  # already a global batch
        local = np.asarray(local)
        layout = self.distribution.get_data_layout((local.shape[0] * self.num_processes, *local.shape[1:]))
        return jax.make_array_from_process_local_data(layout.backend_layout, local)

    def _per_replica(self, local):
        import tensorflow as tf

        if isinstance(local, tf.distribute.DistributedValues):
            return local
        local = np.asarray(local)
        n_local = self.strategy.num_replicas_in_sync // self.num_processes
        share = len(local) // n_local
        first = self.process_id * n_local

        def share_of(context):
            index = context.replica_id_in_sync_group - first
            return tf.constant(local[index * share : (index + 1) * share])

        return self.strategy.experimental_distribute_values_from_function(share_of)


def across_replicas(step, per_replica=False, models=()):
    """``step`` (a compiled function of values and batches) run on every replica's share.

    On TensorFlow under a strategy: ``strategy.run`` in a ``tf.function``; the outputs are the
    same on every replica (their gradients and statistics were reduced), so the first replica's
    are returned; ``per_replica``: the outputs are the replicas' batch shares and stay distributed.
    The batch-norm layers of ``models`` are traced with ``synchronized=True`` (statistics of the
    global batch, as on one device and on JAX), and left unsynchronised for saving and elsewhere.
    Elsewhere ``step`` itself (JAX's jit is data-parallel by its inputs' sharding).
    """
    if keras.backend.backend() != "tensorflow":
        return step
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return step
    strategy = tf.distribute.get_strategy()

    def run(*args):  # runs while tracing only
        with _synchronized_batch_norm(models):
            outputs = strategy.run(step, args=args)
        if per_replica:
            return outputs
        return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], outputs)

    return tf.function(run, reduce_retracing=True)


@contextlib.contextmanager
def _synchronized_batch_norm(models):
    layers = [
        layer
        for model in models
        if model is not None
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized
    ]
    for layer in layers:
        layer.synchronized = True
    try:
        yield
    finally:
        for layer in layers:
            layer.synchronized = False


def _replica_context():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


def replica_mean(values):
    """Inside a step: the mean over the replicas of each floating value (losses, batch-norm
    moving statistics), so that every replica returns the same; others as they are."""
    context = _replica_context()
    if context is None:
        return values
    import tensorflow as tf

    def mean(value):
        if value is None or not value.dtype.is_floating:
            return value
        return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)

    return tf.nest.map_structure(mean, values)


def global_mean(values):
    """``ops.mean(values)``; inside a step on several TensorFlow replicas, the mean of the global
    batch (each replica holds an equal share), as one device and JAX compute it."""
    mean = keras.ops.mean(values)
    context = _replica_context()
    if context is None:
        return mean
    import tensorflow as tf

    return context.all_reduce(tf.distribute.ReduceOp.MEAN, mean)


def replica_sum(values):
    """Inside a step on several TensorFlow replicas: the sum over the replicas of each value (of
    their gradient shares: the whole batch's gradients); elsewhere the values themselves."""
    context = _replica_context()
    if context is None:
        return values
    import tensorflow as tf

    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def replica_gradients(grads):
    """Inside a step: a replica's gradients as TensorFlow's ``optimizer.apply`` expects them (it
    sums them over the replicas, so each replica's are divided by the replica count)."""
    context = _replica_context()
    if context is None:
        return grads
    return [None if g is None else g / context.num_replicas_in_sync for g in grads]
