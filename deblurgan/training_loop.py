"""A whole training run: data, networks, epochs, checkpoints, resume and logs.

``train(TrainingOptions(...))`` is what ``scripts/train.py`` calls. Per epoch it writes, into
``weights_dir``, ``generator_{epoch}_{loss}.h5`` and ``discriminator_{epoch}.h5`` (epochs count
from 0, as in the Sicara port, so a 50-epoch run ends with ``generator_49_*.h5``), then
``training_state.npz`` (every variable of both networks and both optimizers, the epoch and the
random state) which is what ``resume`` reads; ``options.json`` holds the resolved options. Every
file is written atomically. Logs under ``log_dir``: ``losses.csv`` (one row per epoch) and
TensorBoard scalars (each loss term by name, learning rate, validation PSNR/SSIM) and sample
sharp | blurred | restored images.
"""

import csv
import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from deblurgan import losses
from deblurgan.checkpoints import load_generator, save_model
from deblurgan.data import PairedImageDataset, pair_images
from deblurgan.errors import DeblurGANError
from deblurgan.inference import deblur_array
from deblurgan.io import atomic_path, read_image
from deblurgan.metrics import psnr_8bit, score_8bit
from deblurgan.model import (
    GENERATOR_PRESETS,
    discriminator_model,
    generator_model,
    patchgan_critic_model,
)
from deblurgan.training import (
    GAN_MODES,
    DeblurGANTrainer,
    default_optimizers,
    linear_decay_learning_rate,
    recalibrate_batch_norm,
)

log = logging.getLogger(__name__)

STATE_FILE = "training_state.npz"
OPTIONS_FILE = "options.json"
CONTENT_LOSSES = ("auto", "perceptual", "l1", "mse")
# Options that define the networks, the data stream or the losses: a resumed run must match them.
RESUME_MUST_MATCH = (
    "gan_mode",
    "critic",
    "content_loss",
    "content_weight",
    "adversarial_weight",
    "gradient_penalty_weight",
    "clip_value",
    "vgg_network",
    "batch_size",
    "crop_size",
    "resize",
    "n_images",
    "seed",
    "preset",
    "norm",
    "output_mode",
    "upsampling",
    "n_filters",
    "n_blocks",
    "dropout_rate",
    "zero_init_output",
    "critic_filters",
    "critic_updates",
    "steps_per_epoch",
)


@dataclasses.dataclass
class TrainingOptions:
    """Every option of a training run; the defaults are the Sicara recipe.

    ``data_dir`` holds ``train/{A,B}`` (and optionally ``test/{A,B}``, used for validation), or
    ``A/`` and ``B/`` directly. ``content_loss="auto"`` is the perceptual (VGG) loss when the VGG
    weights can be had (``vgg_weights`` a local file, or ImageNet weights cached or downloadable),
    else L1 with a warning. ``critic="auto"`` is the Sicara critic for ``gan_mode="wgan"`` and the
    PatchGAN critic otherwise. ``norm``/``output_mode``/``upsampling`` of None follow ``preset``.
    """

    data_dir: str = "images"
    weights_dir: str = "weights"
    log_dir: str = "logs"
    n_epochs: int = 50
    batch_size: int = 2
    critic_updates: int = 5
    n_images: int | None = None
    crop_size: int | None = 256
    resize: int | None = None
    gan_mode: str = "wgan"
    critic: str = "auto"
    content_loss: str = "auto"
    content_weight: float = 100.0
    adversarial_weight: float = 1.0
    gradient_penalty_weight: float = 10.0
    clip_value: float = 0.01
    vgg_network: str = "vgg16"
    vgg_weights: str | None = "imagenet"
    lr: float | None = None
    lr_decay: bool = False
    seed: int = 0
    preset: str = "sicara"
    norm: str | None = None
    output_mode: str | None = None
    upsampling: str | None = None
    n_filters: int = 64
    n_blocks: int = 9
    dropout_rate: float = 0.5
    zero_init_output: bool = False
    critic_filters: int = 64
    init_generator: str | None = None
    steps_per_epoch: int | None = None
    val_dir: str | None = "auto"
    val_images: int = 8
    bn_recalibration_batches: int = 20
    workers: int = 2
    progress: bool = True


def train(options):
    """Runs a new training run (refusing a ``weights_dir`` that holds one); returns the epoch rows."""
    return _Run(options, resume=False).fit()


def resume_training(options):
    """Continues the run in ``options.weights_dir`` from its last complete (or interrupted) state."""
    return _Run(options, resume=True).fit()


class _Run:
    def __init__(self, options, resume):
        self.options = options
        self.weights_dir = Path(options.weights_dir)
        self.log_dir = Path(options.log_dir)
        self.resume = resume
        self.start_epoch, self.start_batch, self.start_sums = 0, 0, {}
        state = None
        if resume:
            state = self._load_state()
        else:
            _check_fresh(self.weights_dir)
        self._resolve_options()
        self.train_dir, self.val_dir = _data_dirs(options)
        self.dataset = PairedImageDataset(
            self.train_dir,
            batch_size=options.batch_size,
            crop_size=options.crop_size,
            resize=options.resize,
            n_images=options.n_images,
            seed=options.seed,
            workers=options.workers,
        )
        self.trainer = self._build_trainer()
        if state is not None:
            self.trainer.set_state(state)
        elif options.init_generator:
            self.trainer.generator.set_weights(load_generator(options.init_generator).get_weights())
        self.val_pairs = pair_images(self.val_dir)[: options.val_images] if self.val_dir else []
        self.tensorboard = _TensorBoard(self.log_dir)

    # -- set-up --------------------------------------------------------------------------------

    def _resolve_options(self):
        o = self.options
        if o.gan_mode not in GAN_MODES:
            raise DeblurGANError(f"--gan_mode {o.gan_mode}: choose one of {', '.join(GAN_MODES)}")
        if o.content_loss not in CONTENT_LOSSES:
            raise DeblurGANError(
                f"--content_loss {o.content_loss}: choose one of {', '.join(CONTENT_LOSSES)}"
            )
        if o.critic == "auto":
            o.critic = "sicara" if o.gan_mode == "wgan" else "patchgan"
        if o.content_loss == "auto":
            o.content_loss = _auto_content_loss(o.vgg_network, o.vgg_weights)
        if o.critic == "sicara" and o.gan_mode != "none" and o.crop_size is None and o.resize is None:
            raise DeblurGANError(
                "the Sicara critic needs a fixed image size: "
                "pass --crop_size or --resize, or --critic patchgan"
            )

    def _build_trainer(self):
        o = self.options
        generator_kwargs = dict(
            n_filters=o.n_filters,
            n_blocks=o.n_blocks,
            dropout_rate=o.dropout_rate,
            zero_init_output=o.zero_init_output,
        )
        overrides = {"norm": o.norm, "output_mode": o.output_mode, "upsampling": o.upsampling}
        variant = {**GENERATOR_PRESETS[o.preset], **{k: v for k, v in overrides.items() if v is not None}}
        keras.utils.set_random_seed(o.seed)
        generator = generator_model(**generator_kwargs, **variant)
        critic = None
        if o.gan_mode != "none":
            if o.critic == "sicara":
                size = o.resize or o.crop_size
                critic = discriminator_model(input_shape=(size, size, 3), n_filters=o.critic_filters)
            else:
                critic = patchgan_critic_model(n_filters=o.critic_filters)
        if o.content_loss == "perceptual":
            content = losses.PerceptualLoss(network=o.vgg_network, weights=o.vgg_weights)
        else:
            content = losses.content_loss(o.content_loss)
        generator_optimizer, critic_optimizer = default_optimizers(o.gan_mode, o.lr)
        self.base_lr = float(generator_optimizer.learning_rate)
        return DeblurGANTrainer(
            generator,
            critic,
            gan_mode=o.gan_mode,
            content_loss=content,
            content_weight=o.content_weight,
            adversarial_weight=o.adversarial_weight,
            gradient_penalty_weight=o.gradient_penalty_weight,
            clip_value=o.clip_value,
            critic_updates=o.critic_updates,
            generator_optimizer=generator_optimizer,
            critic_optimizer=critic_optimizer,
            seed=o.seed,
        )

    def _load_state(self):
        state_path = self.weights_dir / STATE_FILE
        options_path = self.weights_dir / OPTIONS_FILE
        if not state_path.is_file() or not options_path.is_file():
            raise DeblurGANError(
                f"{state_path}: nothing to resume (no training state in {self.weights_dir}); "
                "run without --resume to start training, or pass the --weights_dir of an earlier run"
            )
        saved = json.loads(options_path.read_text())
        differing = [
            f"{name}={saved.get(name)!r} (now {getattr(self.options, name)!r})"
            for name in RESUME_MUST_MATCH
            if name in saved
            and saved[name] != getattr(self.options, name)
            and getattr(self.options, name) not in ("auto", None)
        ]
        if differing:
            raise DeblurGANError(
                f"{options_path}: the run was started with {'; '.join(differing)}; resume with the same "
                "options, or start a new run in another --weights_dir"
            )
        for name in RESUME_MUST_MATCH:
            if name in saved:
                setattr(self.options, name, saved[name])
        with np.load(state_path) as archive:
            state = dict(archive)
        self.start_epoch = int(state.pop("run/epoch"))
        self.start_batch = int(state.pop("run/batch"))
        self.start_sums = json.loads(str(state.pop("run/sums", "{}")))
        return state

    # -- the loop -------------------------------------------------------------------------------

    def fit(self):
        o = self.options
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.weights_dir / OPTIONS_FILE, dataclasses.asdict(o))
        n_batches = len(self.dataset) if not o.steps_per_epoch else min(len(self.dataset), o.steps_per_epoch)
        rows = []
        if self.start_epoch >= o.n_epochs:
            print(
                f"nothing to do: {self.weights_dir} already holds {self.start_epoch} epochs "
                f"(--n_epochs {o.n_epochs})"
            )
            return rows
        if self.resume:
            print(f"resuming at epoch {self.start_epoch}, batch {self.start_batch}")
        # Where a Ctrl-C would leave the run, and whether that point is already saved.
        self.position, self.position_saved = (self.start_epoch, self.start_batch), True
        try:
            for epoch in range(self.start_epoch, o.n_epochs):
                rows.append(self._run_epoch(epoch, n_batches))
        except KeyboardInterrupt:
            if not self.position_saved:
                self._save_interrupted(*self.position)
            else:
                print(f"\ninterrupted; {self.weights_dir} holds the state after epoch {self.position[0] - 1}")
            raise
        if self.dataset.n_skipped:
            print(
                f"warning: {self.dataset.n_skipped} unreadable image pairs were skipped (see the log above)"
            )
        return rows

    def _run_epoch(self, epoch, n_batches):
        o = self.options
        lr = linear_decay_learning_rate(self.base_lr, epoch, o.n_epochs) if o.lr_decay else self.base_lr
        self.trainer.set_learning_rate(lr)
        start = self.start_batch if epoch == self.start_epoch else 0
        # loss sums of the batches before an interruption, so the epoch's means cover all of it
        self.sums = dict(self.start_sums) if epoch == self.start_epoch else {}
        sums, started, batch_index = self.sums, time.time(), start
        bar = tqdm(
            total=n_batches, initial=start, desc=f"epoch {epoch}", disable=not o.progress, unit="batch"
        )
        with bar:
            for blurred, sharp in self.dataset.prefetch_iter(epoch, start=start):
                if batch_index >= n_batches:
                    break
                step_logs = self.trainer.train_on_batch(blurred, sharp)
                _check_finite(step_logs, epoch, batch_index, self.weights_dir)
                for name, value in step_logs.items():
                    sums[name] = sums.get(name, 0.0) + value
                batch_index += 1
                self.position, self.position_saved = (epoch, batch_index), False
                bar.update(1)
                bar.set_postfix(
                    {
                        k.split("/")[0][0] + ":" + k.split("/")[1]: f"{v / batch_index:.4g}"
                        for k, v in sums.items()
                        if k.endswith(("total", "content"))
                    }
                )
        means = {name: value / max(1, batch_index) for name, value in sums.items()}
        row = {"epoch": epoch, "seconds": round(time.time() - started, 2), "learning_rate": lr, **means}
        self._recalibrate(epoch, n_batches)
        row.update(self._validate(epoch))
        self._save_epoch(epoch, means)
        self.position, self.position_saved = (epoch + 1, 0), True
        self._log(row, epoch)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch",))
        print(f"epoch {epoch}: {summary}")
        return row

    def _recalibrate(self, epoch, n_batches):
        """Precise batch-norm statistics for the epoch's checkpoint, from its first training batches."""
        count = min(self.options.bn_recalibration_batches, n_batches)
        if count > 0:
            batches = (self.dataset.get_batch(i, epoch)[0] for i in range(count))
            recalibrate_batch_norm(self.trainer.generator, batches)

    def _validate(self, epoch):
        if not self.val_pairs:
            return {}
        generator = self.trainer.generator
        scores = {"val/psnr": [], "val/ssim": [], "val/psnr_blurred": []}
        samples = []
        for blurred_path, sharp_path in self.val_pairs:
            blurred = read_image(blurred_path).pixels
            sharp = read_image(sharp_path).pixels
            restored = deblur_array(generator, blurred)
            restored_scores = score_8bit(sharp, restored)  # the same scores as scripts/test.py
            scores["val/psnr"].append(restored_scores["psnr"])
            scores["val/ssim"].append(restored_scores["ssim"])
            scores["val/psnr_blurred"].append(psnr_8bit(sharp, blurred))
            if len(samples) < 3:
                samples.append(np.concatenate([sharp, blurred, restored], axis=1))
        self.tensorboard.images("samples/sharp|blurred|restored", samples, epoch)
        return {name: float(np.mean(values)) for name, values in scores.items()}

    # -- files ----------------------------------------------------------------------------------

    def _save_epoch(self, epoch, means):
        trainer = self.trainer
        loss = means.get("generator/total", float("nan"))
        save_model(trainer.generator, self.weights_dir / f"generator_{epoch}_{loss:.4g}.h5")
        if trainer.critic is not None:
            save_model(trainer.critic, self.weights_dir / f"discriminator_{epoch}.h5")
        self._save_state(epoch + 1, 0)
        # The complete epoch supersedes a checkpoint saved when this epoch was interrupted.
        (self.weights_dir / f"generator_{epoch}_interrupted.h5").unlink(missing_ok=True)

    def _save_interrupted(self, epoch, batch_index):
        trainer = self.trainer
        save_model(trainer.generator, self.weights_dir / f"generator_{epoch}_interrupted.h5")
        self._save_state(epoch, batch_index, sums=self.sums)
        print(
            f"\ninterrupted at epoch {epoch}, batch {batch_index}: state saved in {self.weights_dir}; "
            "continue with the same command and --resume"
        )

    def _save_state(self, epoch, batch, sums=None):
        state = self.trainer.get_state()
        state["run/epoch"] = np.array(epoch)
        state["run/batch"] = np.array(batch)
        state["run/sums"] = np.array(json.dumps(sums or {}))
        with atomic_path(self.weights_dir / STATE_FILE) as tmp:
            np.savez(tmp, **state)

    def _log(self, row, epoch):
        csv_path = self.log_dir / "losses.csv"
        fields, rows = list(row), []
        if csv_path.is_file():  # a resumed run: keep the earlier epochs' rows and columns
            with open(csv_path, newline="") as f:
                reader = csv.DictReader(f)
                rows = [r for r in reader if int(r["epoch"]) < epoch]
                fields = list(reader.fieldnames or []) + [
                    k for k in row if k not in (reader.fieldnames or [])
                ]
        with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows + [row])
        self.tensorboard.scalars({k: v for k, v in row.items() if k != "epoch"}, epoch)


def _auto_content_loss(network, vgg_weights):
    if vgg_weights != "imagenet":  # random init (None) or a local file: nothing to download
        return "perceptual"
    try:
        losses.imagenet_weights_path(network)
        return "perceptual"
    except DeblurGANError as error:
        print(f"warning: {error}\nwarning: training with --content_loss l1 instead of the perceptual loss")
        return "l1"


def _data_dirs(options):
    data_dir = Path(options.data_dir)
    if (data_dir / "train" / "A").is_dir():
        train_dir = data_dir / "train"
    elif (data_dir / "A").is_dir():
        train_dir = data_dir
    else:
        raise DeblurGANError(
            f"{data_dir}: expected {data_dir}/train/A and {data_dir}/train/B (blurred and sharp images), "
            f"or {data_dir}/A and {data_dir}/B; pass --data_dir"
        )
    val_dir = options.val_dir
    if val_dir == "auto":
        val_dir = data_dir / "test" if (data_dir / "test" / "A").is_dir() and train_dir != data_dir else None
    return train_dir, (Path(val_dir) if val_dir else None)


def _check_fresh(weights_dir):
    if (weights_dir / STATE_FILE).exists():
        raise DeblurGANError(
            f"{weights_dir}: holds an earlier run ({STATE_FILE}); continue it with --resume, "
            "or pass another --weights_dir"
        )


def _check_finite(step_logs, epoch, batch_index, weights_dir):
    bad = {name: value for name, value in step_logs.items() if not math.isfinite(value)}
    if bad:
        name, value = next(iter(bad.items()))
        raise DeblurGANError(
            f"loss {name} became {value} at epoch {epoch}, batch {batch_index}; training stopped and "
            f"the last good checkpoint in {weights_dir} is kept; lower --lr, or resume with --resume"
        )


def _write_json(path, payload):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2, sort_keys=True))


class _TensorBoard:
    """TensorBoard event files through ``tf.summary`` when TensorFlow is installed, else nothing.

    TensorFlow is the default backend and always installed by ``pip install``; on a JAX-only GPU
    host without it the run logs a warning and keeps the CSV.
    """

    def __init__(self, log_dir):
        try:
            import tensorflow as tf
        except ImportError:
            log.warning("TensorFlow is not installed: no TensorBoard logs (losses.csv is still written)")
            self.writer = None
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
