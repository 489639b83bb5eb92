"""The files of a training run: state, checkpoints, options, losses.csv and TensorBoard.

In ``weights_dir``, per epoch: ``generator_{epoch}_{loss}.h5`` and ``discriminator_{epoch}.h5``
(Sicara's names; epochs count from 0), then ``training_state.npz`` (every variable of both networks
and both optimizers, the position in the run and the random state), which is what a resume reads;
``options.json`` holds the resolved :class:`~deblurgan.config.TrainingConfig`. In ``log_dir``:
``losses.csv`` (one row per epoch) and TensorBoard scalars and images. Every file is written
atomically, so a run killed at any moment resumes from its last complete state.
"""

import contextlib
import csv
import fcntl
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from deblurgan.checkpoints import save_model
from deblurgan.config import TrainingConfig
from deblurgan.errors import DeblurGANError
from deblurgan.io import atomic_path, writable_folder

log = logging.getLogger(__name__)

STATE_FILE = "training_state.npz"
OPTIONS_FILE = "options.json"
LOSSES_FILE = "losses.csv"
LOCK_FILE = ".lock"  # held while a run writes the folder (run_lock)


def check_fresh(run):
    """Refuses a ``weights_dir`` or ``log_dir`` of ``run`` (a RunConfig) that already holds a run's
    files: a new run must not overwrite them (``losses.csv`` of the shared default ``logs/``)."""
    for name, file_name in (("weights_dir", STATE_FILE), ("log_dir", LOSSES_FILE)):
        folder = getattr(run, name)
        if (Path(folder) / file_name).exists():
            raise DeblurGANError(
                f"run.{name}={folder}: holds an earlier run ({file_name}); resume it or choose a new folder",
                f"run.{name}",
            )


def check_folders(run):
    """Checks that the ``weights_dir`` and ``log_dir`` of ``run`` (a RunConfig) can be written to,
    before the networks are built and without writing anything."""
    for name in ("weights_dir", "log_dir"):
        writable_folder(getattr(run, name), f"run.{name}", create=False)


def load_run(weights_dir):
    """``(saved config, trainer state, (epoch, batch, loss sums, elapsed))`` of the run in
    ``weights_dir``; the (sum, count) of each loss term and the elapsed times are those of the
    epoch's batches before it stopped."""
    state_path, options_path = Path(weights_dir) / STATE_FILE, Path(weights_dir) / OPTIONS_FILE
    missing = [path.name for path in (state_path, options_path) if not path.is_file()]
    if missing:
        raise DeblurGANError(
            f"run.weights_dir={weights_dir}: nothing to resume (no {' and no '.join(missing)} in it); "
            "start a new run there, or pass the folder of an earlier run",
            parameter="run.weights_dir",
        )
    try:
        saved = TrainingConfig.from_dict(json.loads(options_path.read_text()))
    except (ValueError, TypeError, AttributeError) as error:  # not JSON, or not a config's
        raise _damaged(weights_dir, options_path, error) from None
    try:
        with np.load(state_path) as archive:
            state = dict(archive)
        epoch, batch = int(state.pop("run/epoch")), int(state.pop("run/batch"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # a partial copy
        raise _damaged(weights_dir, state_path, error) from None
    sums = json.loads(str(state.pop("run/sums", "{}")))
    # (sum, count) per loss term; states saved before the counts summed every batch
    sums = {name: tuple(value) if isinstance(value, list) else (value, batch) for name, value in sums.items()}
    elapsed = json.loads(str(state.pop("run/elapsed", "{}")))  # absent in states saved before it existed
    return saved, state, (epoch, batch, sums, elapsed)


def _damaged(weights_dir, path, error):
    return DeblurGANError(
        f"run.weights_dir={weights_dir}: {path.name} cannot be read ({type(error).__name__}: {error}); "
        "copy it again from the run's machine, or start a new run in another folder",
        parameter="run.weights_dir",
    )


@contextlib.contextmanager
def run_lock(run, writes=True):
    """Holds ``.lock`` in the ``weights_dir`` and the ``log_dir`` of ``run`` (advisory locks, freed by
    the system when the process ends, even killed) while a run writes there: a second run of the
    folders, such as a ``--resume`` typed while the first still trains, is refused instead of
    writing over its files."""
    with contextlib.ExitStack() as locks:
        folders = {Path(getattr(run, name)).resolve(): name for name in ("log_dir", "weights_dir")}
        for folder, name in folders.items() if writes else ():
            folder.mkdir(parents=True, exist_ok=True)
            lock = locks.enter_context(open(folder / LOCK_FILE, "a"))  # closing it frees the lock
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeblurGANError(
                    f"run.{name}={getattr(run, name)}: another training run is writing there; let it "
                    "end (or stop it with Ctrl-C) first, or choose another folder",
                    parameter=f"run.{name}",
                ) from None
        yield


class RunDirectory:
    """Writes a run's files; ``config`` is the resolved config, written to ``options.json`` now.
    ``writes=False``: writes nothing (the processes other than 0 of a run on several machines)."""

    def __init__(self, config, writes=True):
        self.weights_dir = Path(config.run.weights_dir)
        self.log_dir = Path(config.run.log_dir)
        self.options_path = self.weights_dir / OPTIONS_FILE
        self.writes = writes
        self.tensorboard = _TensorBoard(self.log_dir if writes else None)
        if not writes:
            return
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.options_path) as tmp:
            Path(tmp).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))

    def save_epoch(self, trainer, epoch, means):
        """The epoch's checkpoints, then the state after it (so the state never runs ahead)."""
        if not self.writes:
            return
        if "generator/total" in means:
            loss = means["generator/total"]
            save_model(trainer.generator, self.weights_dir / f"generator_{epoch}_{loss:.4g}.h5")
        else:  # a critic warm-up epoch: the generator is the start's, and a name with "nan" would alarm
            log.info("epoch %d trained the critic only: no generator checkpoint", epoch)
        if trainer.critic is not None:
            save_model(trainer.critic, self.weights_dir / f"discriminator_{epoch}.h5")
        self.save_state(trainer, epoch + 1, 0)
        # The complete epoch supersedes a checkpoint saved when this epoch was interrupted.
        (self.weights_dir / f"generator_{epoch}_interrupted.h5").unlink(missing_ok=True)

    def save_interrupted(self, trainer, epoch, batch, sums, elapsed):
        """Mid-epoch: ``sums`` are the epoch's (sum, count) of each loss term so far, ``elapsed`` its
        ``seconds`` and ``cpu_seconds`` so far (the resumed epoch's row adds them to its own)."""
        if not self.writes:
            return
        save_model(trainer.generator, self.weights_dir / f"generator_{epoch}_interrupted.h5")
        self.save_state(trainer, epoch, batch, sums, elapsed)

    def save_state(self, trainer, epoch, batch, sums=None, elapsed=None):
        state = trainer.get_state()
        state["run/epoch"] = np.array(epoch)
        state["run/batch"] = np.array(batch)
        state["run/sums"] = np.array(json.dumps(sums or {}))
        state["run/elapsed"] = np.array(json.dumps(elapsed or {}))
        with atomic_path(self.weights_dir / STATE_FILE) as tmp:
            np.savez(tmp, **state)

    def log(self, row, epoch):
        """Appends the epoch's row to losses.csv (replacing rows of later epochs) and TensorBoard."""
        if not self.writes:
            return
        csv_path = self.log_dir / LOSSES_FILE
        fields, rows = list(row), []
        if csv_path.is_file():  # a resumed run: keep the earlier epochs' rows and columns
            with open(csv_path, newline="") as f:
                reader = csv.DictReader(f)
                rows = [r for r in reader if int(r["epoch"]) < epoch]
                fields = list(dict.fromkeys([*(reader.fieldnames or []), *row]))  # old columns first
        with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows + [row])
        self.tensorboard.scalars({k: v for k, v in row.items() if k != "epoch"}, epoch)


class _TensorBoard:
    """TensorBoard event files through ``tf.summary`` when TensorFlow is installed, else nothing.

    TensorFlow is the default backend and always installed by ``pip install``; on a JAX-only GPU
    host without it the run logs a warning and keeps the CSV.
    """

    def __init__(self, log_dir):
        self.tf = self.writer = None
        if log_dir is None:  # writes nothing
            return
        try:
            import tensorflow as tf
        except ImportError:
            log.warning("TensorFlow is not installed: no TensorBoard logs (losses.csv is still written)")
            return
        self.tf = tf
        with tf.device("/cpu:0"):
            self.writer = tf.summary.create_file_writer(str(log_dir))

    def scalars(self, values, step):
        if self.writer is None:
            return
        with self.writer.as_default():
            for name, value in values.items():
                self.tf.summary.scalar(name, value, step=step)
        self.writer.flush()

    def images(self, name, images, step):
        if self.writer is None or not images:
            return
        width = min(image.shape[1] for image in images)
        batch = np.stack([image[:, :width] for image in images if image.shape == images[0].shape])
        with self.writer.as_default():
            self.tf.summary.image(name, batch, step=step, max_outputs=len(batch))
        self.writer.flush()
