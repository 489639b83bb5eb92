"""A whole training run: ``build_trainer`` (pure), a :class:`RunDirectory` and the epoch loop.

``train(TrainingConfig(...))`` is what ``scripts/train.py`` calls; ``resume_training`` continues
the run in ``config.run.weights_dir`` from its last complete (or interrupted) state. The files
are described in :mod:`deblurgan.run_directory`, the options in :mod:`deblurgan.config`.
"""

import contextlib
import dataclasses
import functools
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from deblurgan import losses
from deblurgan.checkpoints import layer_difference, load_generator
from deblurgan.config import ARCHITECTURE_BLOCKS, AUTO, SECTIONS, TrainingConfig, resumed_config
from deblurgan.datasets import PairedImageDataset, SharpPhotoDataset
from deblurgan.distribution import ProcessLost, Replicas, StoppedTogether
from deblurgan.errors import DeblurGANError, shown_value
from deblurgan.frequency import highpass_critic
from deblurgan.inference import deblur_array, output_layers
from deblurgan.interrupts import interrupts_deferred, stops_noted
from deblurgan.io import read_image
from deblurgan.metrics import check_scorable, psnr_8bit, score_8bit
from deblurgan.model import discriminator_model, generator_model, patchgan_critic_model
from deblurgan.multiscale_model import multiscale_content_loss, multiscale_generator_model
from deblurgan.pairing import check_same_size, pair_images
from deblurgan.run_directory import RunDirectory, check_folders, check_fresh, load_run, run_lock
from deblurgan.training import (
    DeblurGANTrainer,
    default_optimizers,
    recalibrate_batch_norm,
    recipe,
    scheduled_learning_rate,
)

log = logging.getLogger(__name__)


def resolve(config):
    """A new config with ``"auto"`` choices made (critic architecture, content loss, generator
    blocks); checks them."""
    gan = recipe(config.critic.gan_mode)
    generator, critic, loss = config.generator, config.critic, config.loss
    multiscale = generator.architecture == "multiscale"
    if generator.n_blocks is None:
        generator = dataclasses.replace(generator, n_blocks=ARCHITECTURE_BLOCKS[generator.architecture])
    if critic.architecture == AUTO:
        critic = dataclasses.replace(critic, architecture=gan.critic)
    if loss.content == AUTO:  # the multi-scale network's paper loss is the MSE
        content = "mse" if multiscale else _auto_content_loss(loss.vgg_network, loss.vgg_weights)
        loss = dataclasses.replace(loss, content=content)
    if multiscale:
        _check_multiscale(generator)
    _check_training_size(generator, config.data)
    if critic.warmup_steps and not gan.uses_critic:
        raise DeblurGANError(
            f"critic.warmup_steps={critic.warmup_steps}: gan_mode={critic.gan_mode!r} has no critic",
            parameter="critic.warmup_steps",
        )
    if (
        gan.uses_critic
        and critic.architecture == "sicara"
        and not (config.data.crop_size or config.data.resize)
    ):
        raise DeblurGANError(
            "data.crop_size=None: the Sicara critic needs a fixed image size; "
            "set a crop_size or resize, or use the patchgan critic",
            parameter="data.crop_size",
        )
    return dataclasses.replace(config, generator=generator, critic=critic, loss=loss)


def check_used(config):
    """Refuses options that ``config``'s other choices leave unused: a run would record them in
    options.json and train without them."""
    gan_mode, content, photos = config.critic.gan_mode, config.loss.content, config.data.sharp_dir
    resnet = config.generator.architecture == "resnet"
    gan, defaults = recipe(gan_mode), TrainingConfig()
    critic = gan.critic if config.critic.architecture == AUTO else config.critic.architecture
    mode, loss = "critic.gan_mode", "loss.content"
    vgg = ("loss.vgg_network", "loss.vgg_weights", "loss.vgg_input_scaling")
    pairs_only = f"data.sharp_dir={photos} trains on photos cropped to data.crop_size={config.data.crop_size}"
    rules = (  # fields, whether they are used, why not
        (("critic.architecture", "critic.input", "critic.n_filters", "critic.n_layers", "critic.updates",
          "critic.warmup_steps", "run.critic_lr", "loss.adversarial_weight"), gan.uses_critic,
         f"{mode}={gan_mode!r} has no critic"),
        (("generator.norm", "generator.output_mode", "generator.upsampling", "generator.dropout_rate",
          "generator.zero_init_output", "generator.rrdb_growth"), resnet,
         "generator.architecture='multiscale' (DeepDeblur's network) has no such part, by hand or preset"),
        (("critic.n_layers",), not gan.uses_critic or critic == "patchgan", "only the PatchGAN critic has "
         f"layers to set (critic.architecture='patchgan'; 'auto' is the Sicara critic for {mode}='wgan')"),
        (("critic.clip_value",), gan.clip_weights, f"only {mode}='wgan-clip' clips"),
        (("loss.gradient_penalty_weight",), gan.gradient_penalty, f"only {mode}='wgan-gp' has one"),
        (vgg, content in ("perceptual", AUTO), f"{loss}={content!r} uses no VGG"),
        (("loss.fft_weight",), content == "l1+fft", f"only {loss}='l1+fft' has one"),
        (("data.crop_size",), None in (config.data.resize, config.data.crop_size) or photos,
         f"data.resize={config.data.resize} scales whole images instead of cropping"),
        (("run.data_dir",), not photos, f"data.sharp_dir={photos} trains on its photos, blurred on the fly"),
        (("data.resize", "data.n_images"), not photos, f"{pairs_only}, not on image pairs"),
        (("data.blur", "data.samples_per_photo"), photos, "only the sharp photos of data.sharp_dir=PHOTOS "
         "are blurred on the fly, not image pairs"),
    )  # fmt: skip
    unused = {}  # why: the options given for nothing, every one named at once
    for names, used, why in rules:
        for name in () if used else names:
            section, field = name.split(".")
            value = getattr(getattr(config, section), field)
            if value != getattr(getattr(defaults, section), field):
                unused.setdefault(why, []).append(f"{name}={value!r}")
    if unused:
        them = "them" if sum(map(len, unused.values())) > 1 else "it"
        message = "; ".join(f"{', '.join(given)}: unused, {why}" for why, given in unused.items())
        # every name=value, in the options and the reasons, shown as flags by cli.py
        mentions = tuple(n for n in _CONFIG_NAMES if f"{n}=" in message)
        raise DeblurGANError(f"{message}; leave {them} out", mentions=mentions)


_CONFIG_NAMES = tuple(f"{name}.{f.name}" for name, c in SECTIONS.items() for f in dataclasses.fields(c))


def _check_multiscale(generator):
    for field, default in (("block", "resnet"), ("residual_scale", 1.0), ("zero_init_blocks", False)):
        if getattr(generator, field) != default:
            raise DeblurGANError(
                f"generator.{field}={getattr(generator, field)!r}: only for architecture resnet",
                parameter=f"generator.{field}",
            )
    # deblurgan.inference pads and tiles to multiples of 4: two halvings (validation, deblur.py).
    if generator.n_scales > 3:
        raise DeblurGANError(
            f"generator.n_scales={generator.n_scales}: at most 3 (inference pads to multiples of 4)",
            parameter="generator.n_scales",
        )


def _check_training_size(generator, data):
    """Training crops must go through the generator's halvings and back to their own size."""
    if generator.architecture == "multiscale":
        multiple, why = 2 ** (generator.n_scales - 1), "the multiscale generator needs a multiple of"
    else:
        multiple, why = 4, "the resnet generator halves it twice, so it needs a multiple of"
    size = data.resize or data.crop_size
    name = "resize" if data.resize else "crop_size"
    if size is not None and size % multiple:
        raise DeblurGANError(f"data.{name}={size}: {why} {multiple}", parameter=f"data.{name}")
    if size is not None and size < 2 * multiple:  # its smallest feature map must be 2 px at least
        minimum = f"at least {2 * multiple} for this generator"
        raise DeblurGANError(f"data.{name}={size}: {minimum}", parameter=f"data.{name}")


def build_generator(generator):
    """The network of a :class:`~deblurgan.config.GeneratorConfig`: ``generator_model`` (``resnet``)
    or ``multiscale_generator_model``; ``n_blocks=None`` takes the architecture's default."""
    kwargs = dataclasses.asdict(generator)
    architecture, n_scales, kernel_size = (kwargs.pop(k) for k in ("architecture", "n_scales", "kernel_size"))
    if kwargs["n_blocks"] is None:
        kwargs["n_blocks"] = ARCHITECTURE_BLOCKS[architecture]
    if architecture == "multiscale":
        shared = {k: kwargs[k] for k in ("input_shape", "n_blocks", "n_filters", "name")}
        return multiscale_generator_model(n_scales=n_scales, kernel_size=kernel_size, **shared)
    return generator_model(**kwargs)


def build_trainer(config):
    """The networks, losses and optimizers of ``config``, in a :class:`DeblurGANTrainer`; its
    ``"auto"`` choices are made first (:func:`resolve`), as a run makes them."""
    config = resolve(config)  # a resolved config is its own resolution
    keras.utils.set_random_seed(config.data.seed)
    c, size = config.critic, config.data.resize or config.data.crop_size
    critic = None
    with _dtype_policy(config.run.precision):  # float32 weights either way, so the same initial values
        generator = build_generator(config.generator)
        if recipe(c.gan_mode).uses_critic:
            if c.architecture == "sicara":
                critic = discriminator_model(input_shape=(size, size, 3), n_filters=c.n_filters)
            else:
                critic = patchgan_critic_model(n_filters=c.n_filters, n_layers=c.n_layers)
    for network in (generator, critic):
        _float32_outputs(network)
    if critic is not None and c.input == "highpass":
        critic = highpass_critic(critic)
    loss = config.loss
    if loss.content == "perceptual":
        vgg = dict(network=loss.vgg_network, weights=loss.vgg_weights, input_scaling=loss.vgg_input_scaling)
        content = losses.content_loss("perceptual", **vgg)
    else:  # l1+fft: the trainer adds the FFT term itself, to log it apart
        content = losses.content_loss("l1" if loss.content == "l1+fft" else loss.content)
    if config.generator.architecture == "multiscale":  # every scale against the sharp pyramid
        content = functools.partial(multiscale_content_loss, loss=content)
    generator_optimizer, critic_optimizer = default_optimizers(
        c.gan_mode, config.run.lr, config.run.critic_lr
    )
    if config.run.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
        generator_optimizer = keras.optimizers.LossScaleOptimizer(generator_optimizer)
        critic_optimizer = keras.optimizers.LossScaleOptimizer(critic_optimizer)
    return DeblurGANTrainer(
        generator,
        critic,
        gan_mode=c.gan_mode,
        content_loss=content,
        content_weight=loss.content_weight,
        adversarial_weight=loss.adversarial_weight,
        lowpass_weight=loss.lowpass_weight,
        gradient_penalty_weight=loss.gradient_penalty_weight,
        clip_value=c.clip_value,
        critic_updates=c.updates,
        generator_optimizer=generator_optimizer,
        critic_optimizer=critic_optimizer,
        seed=config.data.seed,
        jit_compile=config.run.jit_compile,
        fft_weight=loss.fft_weight if loss.content == "l1+fft" else 0.0,
        clip_norm=config.run.clip_norm,
    )


@contextlib.contextmanager
def _dtype_policy(precision):
    """Keras' global dtype policy set to ``precision`` while networks are built under it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _float32_outputs(network):
    """The output layers of ``network`` compute in float32, so that every loss does: the generator's
    global skip adds the blurred input back unrounded, and only the computed correction is 16-bit."""
    if network is not None:
        for layer in output_layers(network):
            layer.dtype_policy = "float32"


def train(config, replicas=None):
    """Runs a new training run (refusing a ``weights_dir`` that holds one); returns the epoch rows.
    ``replicas``: the devices and processes to train on (``distribution.start``); default one device."""

    def checked():
        check_used(config)
        check_fresh(config.run)
        return config, None, (0, 0, {}, {})

    return _start(checked, replicas=replicas)


def resume_training(config, replicas=None):
    """Continues the run in ``config.run.weights_dir``; all but ``config.run`` must match it (the
    devices may differ: the files are the same on any number)."""

    def saved_run():
        saved, state, position = load_run(config.run.weights_dir)
        resumed = resumed_config(config, saved, Path(config.run.weights_dir) / "options.json")
        changed = [
            f"{field.name} {shown_value(was)} -> {shown_value(now)}"
            for field in dataclasses.fields(resumed.run)
            if (was := getattr(saved.run, field.name)) != (now := getattr(resumed.run, field.name))
        ]
        if changed:  # the run part may change on resume; a forgotten --lr should not go unnoticed
            log.info("run options changed since the last start: %s", ", ".join(changed))
        return resumed, state, position

    return _start(saved_run, replicas=replicas)


def _start(prepare, replicas=None):
    """Trains from ``prepare()``'s (config, state, position) after checking the data; over several
    processes, only once every one has (``Replicas.check_same``)."""
    replicas = replicas or Replicas()
    # Several processes stop together (_Loop._stop_if_asked): a stop, from the start on, is noted now
    # and acted on after the next step.
    with stops_noted(_STOP_REQUESTS) if replicas.num_processes > 1 else contextlib.nullcontext():
        return _prepared_start(prepare, replicas)


def _prepared_start(prepare, replicas):
    try:
        config, state, position = prepare()
        replicas.check_batch_size(config.data.batch_size)
        check_folders(config.run)
        train_dir, val_dir = _data_dirs(config)
        dataset = _training_dataset(config.data, train_dir, config.run)
        config = resolve(config)  # after the data checks: "auto" may look for the VGG weights online
        val_pairs = _validation_pairs(val_dir, config.run)
    except Exception:
        replicas.check_same(None)  # this process cannot start: the others stop too, then its error
        raise
    batches = _epoch_batches(dataset, config.data)
    replicas.check_same(_shared_settings(config, replicas, batches, val_pairs, position))
    with replicas.scope():  # variables replicated (mirrored) on every device
        trainer = build_trainer(config)
        if state is not None:
            trainer.set_state(state)
        elif config.run.init_generator:
            _start_from(trainer.generator, config.run.init_generator)
        with run_lock(config.run, writes=replicas.is_chief):
            if state is not None:  # a resumed run
                log.info("resuming at epoch %d, batch %d", *position[:2])
            directory = RunDirectory(config, writes=replicas.is_chief)  # process 0 writes the files
            return _Loop(config, trainer, dataset, directory, val_pairs, position, replicas).fit()


# What may differ between the processes of one run: each machine's own folders, threads and display.
_PER_PROCESS = {"run.data_dir", "run.weights_dir", "run.log_dir", "run.val_dir", "run.init_generator",
                "run.workers", "run.progress", "data.sharp_dir"}  # fmt: skip


def _shared_settings(config, replicas, batches_per_epoch, val_pairs, position):
    """What the processes of a run must agree on: the options but ``_PER_PROCESS``, their number (JAX
    takes process 0's num_processes without a word) and devices, the data's batches per epoch, the
    validation pairs (the generator runs on every process) and the starting point."""
    options = {
        f"{s}.{name}": v for s, fields in dataclasses.asdict(config).items() for name, v in fields.items()
    }
    shared = {name: value for name, value in options.items() if name not in _PER_PROCESS}
    shared["num_processes"] = replicas.num_processes
    return {
        **shared, "devices in the run": replicas.n_devices, "batches per epoch": batches_per_epoch,
        "validation pairs": len(val_pairs),
        "starting point": f"epoch {position[0]}, batch {position[1]}",
    }  # fmt: skip


class _Loop:
    """The epochs of a run from ``position`` = (epoch, batch, loss sums and elapsed times so far in
    that epoch)."""

    def __init__(self, config, trainer, dataset, directory, val_pairs, position, replicas=None):
        self.config, self.trainer, self.dataset, self.directory = config, trainer, dataset, directory
        self.replicas = replicas = replicas or Replicas()
        # each process reads its rows of every batch; process 0 alone reports progress
        self.rows = replicas.local_rows(config.data.batch_size) if replicas.num_processes > 1 else None
        self.progress = config.run.progress and replicas.is_chief
        self.val_pairs = val_pairs
        self.start_epoch, self.start_batch, self.start_sums, self.start_elapsed = position
        self.n_batches = _epoch_batches(dataset, config.data)
        self.rates = _LearningRates(config, trainer, self.n_batches)
        # Where an interruption would leave the run, the loss sums of that epoch, and the last point
        # saved (the position itself, before a step or after an epoch's files).
        self.position, self.sums = (self.start_epoch, self.start_batch), {}
        self.last_saved = self.position
        self.clock = _EpochClock()

    def fit(self):
        n_epochs, weights_dir = self.config.run.n_epochs, self.directory.weights_dir
        if self.start_epoch >= n_epochs:
            message = "nothing to do: %s already holds %d epochs, run.n_epochs=%d; a larger one trains on"
            log.info(message, weights_dir, self.start_epoch, n_epochs, extra={"parameters": ["run.n_epochs"]})
            return []
        try:
            rows = [self._run_epoch(epoch) for epoch in range(self.start_epoch, n_epochs)]
        except KeyboardInterrupt:
            _STOP_REQUESTS.clear()  # honoured
            self._save_interrupted()
            raise
        except Exception as error:
            if (lost := self.replicas.lost_process(error)) is None:
                raise
            _STOP_REQUESTS.clear()
            raise _process_lost(lost, self.replicas, weights_dir, self.last_saved) from None
        if self.dataset.n_skipped:
            skipped = self.dataset.n_skipped
            log.warning("%d unreadable or oversized images were skipped (see the log above)", skipped)
        return rows

    def _save_interrupted(self):
        (epoch, batch), where = self.position, _saved_in(self.replicas, self.directory.weights_dir)
        if self.position != self.last_saved:
            with interrupts_deferred():  # a second Ctrl-C (an impatient user) must not cut the save
                elapsed = self.clock.elapsed()
                self.directory.save_interrupted(self.trainer, epoch, batch, self.sums, elapsed)
                message = "interrupted %s: state saved in %s; continue with %s"
                at = f"at epoch {epoch}, batch {batch}"
                if batch == self.n_batches:  # "batch 4" of a 4-batch epoch read as one batch too many
                    at = f"after the last batch of epoch {epoch}, before its checkpoint"
                log.warning(message, at, where, "resume_training (train.py: the same command and --resume)")
        elif (epoch, batch) == (0, 0):
            log.warning("interrupted before the first step; nothing to resume in %s", where)
        else:
            log.warning("interrupted; %s holds the state %s", where, _position_text(epoch, batch))

    def _run_epoch(self, epoch):
        first = epoch == self.start_epoch
        batch_index = self.start_batch if first else 0
        # (sum, count) of each loss term over the batches before an interruption, so the epoch's
        # means cover all of it (a critic warm-up step has no generator terms)
        self.sums = sums = dict(self.start_sums) if first else {}
        self.rates.set(epoch * self.n_batches + min(batch_index, self.n_batches - 1))
        self.clock = _EpochClock(self.start_elapsed if first else {})
        bar = tqdm(
            total=self.n_batches, initial=batch_index, desc=f"epoch {epoch}", disable=not self.progress
        )
        with bar:
            for blurred, sharp in self.dataset.prefetch_iter(epoch, start=batch_index, rows=self.rows):
                if batch_index >= self.n_batches:
                    break
                step = epoch * self.n_batches + batch_index
                self.rates.set(step)
                train_generator = step >= self.config.critic.warmup_steps
                with interrupts_deferred():  # a step that updated the weights is a step recorded
                    step_logs = self.trainer.train_on_batch(blurred, sharp, train_generator)
                    _check_finite(step_logs, epoch, batch_index, self.directory.weights_dir)
                    _accumulate(sums, step_logs)
                    batch_index += 1
                    self.position = (epoch, batch_index)
                bar.update(1)
                bar.set_postfix({_short(k): f"{t / n:.4g}" for k, (t, n) in sums.items() if _shown(k)})
                self._stop_if_asked()
        return self._end_epoch(epoch, {name: total / count for name, (total, count) in sums.items()})

    def _end_epoch(self, epoch, means):
        """The epoch's row (losses, validation, steps and times) and files, and the position after it."""
        seconds = round(self.clock.elapsed()["seconds"], 2)  # training only: before validation
        row = {"epoch": epoch, "seconds": seconds, "learning_rate": self.rates.lr, **means}
        _recalibrate(self.trainer.generator, self.dataset, epoch, self.config, self.n_batches)
        limit = self.config.run.max_image_pixels
        row.update(
            _validate(self.trainer.generator, self.val_pairs, self.directory.tensorboard, epoch, limit)
        )
        # For training curves against compute: optimizer steps so far, and the CPU time of this
        # process (all threads) in this epoch, the part before an interruption included.
        # (through a tensor: under MultiWorkerMirroredStrategy the counter is a MirroredVariable)
        steps = keras.ops.convert_to_tensor(self.trainer.generator_optimizer.iterations)
        row["steps"] = int(keras.ops.convert_to_numpy(steps))
        row["cpu_seconds"] = round(self.clock.elapsed()["cpu_seconds"], 1)
        # The epoch's row, files and position go together. The row first: a run killed before the
        # state is saved redoes the epoch, which writes its row again in place.
        with interrupts_deferred():
            self.directory.log(row, epoch)
            self.directory.save_epoch(self.trainer, epoch, means)
            self.position = self.last_saved = (epoch + 1, 0)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        return row

    def _stop_if_asked(self):
        """After a step: KeyboardInterrupt for a stop asked of this process (one whose exception
        Python swallowed: request_stop) or, over several processes, of any: all stop after this step,
        where one stopping alone would leave the others waiting in the next."""
        signum = _STOP_REQUESTS[0] if _STOP_REQUESTS else 0
        if self.replicas.num_processes > 1 and (signum := self.replicas.agreed_stop(signum)):
            raise StoppedTogether(signum)
        if signum:
            raise KeyboardInterrupt(signum)


class _LearningRates:
    """Both optimizers' scheduled rates at each step (counted over the run), set when they change."""

    def __init__(self, config, trainer, n_batches):
        self.run, self.trainer, self.n_batches, self.lr = config.run, trainer, n_batches, None
        # From the config, not the optimizer: a resumed state holds the rate its last step used.
        base_lr = config.run.lr or recipe(config.critic.gan_mode).learning_rate
        self.base_lr = float(np.float32(base_lr))  # as the float32 variable holds it
        self.critic_base_lr = float(np.float32(config.run.critic_lr or base_lr))

    def set(self, step):
        run = self.run
        factor = scheduled_learning_rate(
            1.0, step, self.n_batches, run.n_epochs, run.lr_schedule, run.warmup_steps
        )
        if self.base_lr * factor != self.lr:
            self.lr = self.base_lr * factor
            self.trainer.set_learning_rate(self.lr, self.critic_base_lr * factor)


class _EpochClock:
    """Wall and CPU seconds of an epoch so far, ``before`` (the part run before an interruption)
    included."""

    def __init__(self, before=None):
        before = before or {}
        self.wall = time.time() - before.get("seconds", 0.0)
        self.cpu = time.process_time() - before.get("cpu_seconds", 0.0)

    def elapsed(self):
        return {"seconds": time.time() - self.wall, "cpu_seconds": time.process_time() - self.cpu}


def _saved_in(replicas, weights_dir):
    """Where the state is saved, as this process's messages name it (process 0 writes it)."""
    return str(weights_dir) if replicas.is_chief else "process 0's weights_dir"


def _process_lost(lost, replicas, weights_dir, saved):
    """The error of a run that lost a process (``lost`` says how), naming the state to resume from."""
    resume = "continue with resume_training on every process (train.py: the same commands and --resume)"
    if not replicas.is_chief:  # which state process 0 saved, it alone knows
        return ProcessLost(f"{lost}; {resume}, from the last state process 0 saved, if any")
    if saved == (0, 0):
        return ProcessLost(f"{lost}; {weights_dir} holds no state yet: start every process again")
    return ProcessLost(f"{lost}; {weights_dir} holds the state {_position_text(*saved)}: {resume}")


def _position_text(epoch, batch):
    return f"after epoch {epoch - 1}" if batch == 0 else f"at epoch {epoch}, batch {batch}"


def _validate(generator, val_pairs, tensorboard, epoch, max_pixels):
    """Mean validation scores of ``generator`` (as ``scripts/test.py`` computes them); the first
    three pairs as TensorBoard images."""
    if not val_pairs:
        return {}
    scores = {"val/psnr": [], "val/ssim": [], "val/psnr_blurred": []}
    samples = []
    for blurred_path, sharp_path in val_pairs:
        blurred, sharp = (read_image(p, max_pixels=max_pixels).pixels for p in (blurred_path, sharp_path))
        restored = deblur_array(generator, blurred, precision="fp32")  # not bf16 where auto picks it
        restored_scores = score_8bit(sharp, restored)  # the same scores as scripts/test.py
        scores["val/psnr"].append(restored_scores["psnr"])
        scores["val/ssim"].append(restored_scores["ssim"])
        scores["val/psnr_blurred"].append(psnr_8bit(sharp, blurred))
        if len(samples) < 3:
            samples.append(np.concatenate([sharp, blurred, restored], axis=1))
    tensorboard.images("samples/sharp|blurred|restored", samples, epoch)
    return {name: float(np.mean(values)) for name, values in scores.items()}


def _validation_pairs(val_dir, run):
    """The first ``run.val_images`` pairs of ``val_dir`` that can be read (as ``scripts/test.py``,
    which leaves unreadable pairs out of its means); each other one is named in a warning."""
    pairs = []
    for blurred_path, sharp_path in pair_images(val_dir)[: run.val_images] if val_dir else []:
        try:
            shapes = []
            for path in (blurred_path, sharp_path):
                pixels = read_image(path, max_pixels=run.max_image_pixels).pixels
                check_scorable(path, pixels)
                shapes.append(pixels.shape[:2])
            check_same_size(blurred_path, sharp_path, *shapes)  # else the epoch's end fails, unsaved
            pairs.append((blurred_path, sharp_path))
        except DeblurGANError as error:
            log.warning("validation leaves out %s: %s", blurred_path.name, error)
    return pairs


def _epoch_batches(dataset, data):
    """The batches of an epoch: the whole dataset, or its first ``data.steps_per_epoch``."""
    return min(len(dataset), data.steps_per_epoch or len(dataset))


def _recalibrate(generator, dataset, epoch, config, n_batches):
    """Precise batch-norm statistics for the epoch's checkpoint, from its first training batches."""
    count = min(config.run.bn_recalibration_batches, n_batches)
    if count > 0:
        batches = (dataset.get_batch(i, epoch)[0] for i in range(count))
        recalibrate_batch_norm(generator, batches)


def initial_generator(config):
    """The generator a new run of ``config`` starts from: ``build_trainer``'s seeded initialisation,
    or ``config.run.init_generator``'s weights."""
    config = resolve(config)
    keras.utils.set_random_seed(config.data.seed)
    generator = build_generator(config.generator)
    if config.run.init_generator:
        _start_from(generator, config.run.init_generator)
    return generator


def _start_from(generator, path):
    """Sets ``generator`` to the weights of the generator file ``path``, which must be the same network."""
    source = load_generator(path)
    n, m = len(source.weights), len(generator.weights)
    if [w.shape for w in source.weights] != [w.shape for w in generator.weights]:
        why = f"{n} vs {m} weights" if n != m else f"{n} weights, some of other shapes"
    else:  # the same weights, and maybe another output mode or dropout
        why = (difference := layer_difference(source, generator)) and f"the file's {difference}"
    if why:
        raise DeblurGANError(
            f"run.init_generator={path}: a different network from this run's generator ({why}); "
            "pass the generator options it was trained with (weights/README.md lists the shipped "
            "file's)",
            parameter="run.init_generator",
        )
    generator.set_weights(source.get_weights())


def saved_generator(weights_dir):
    """``(generator, config, (epoch, batch))`` of the run in ``weights_dir`` at its saved position.

    Saved mid-epoch (Ctrl-C), the generator's batch-norm statistics are recalibrated from the
    run's training batches as the epoch's checkpoint would have been; an epoch's end already was.
    """
    config, state, (epoch, batch, _, _) = load_run(weights_dir)
    generator = build_generator(config.generator)
    for i, variable in enumerate(generator.variables):  # trainer_state's names: by position
        variable.assign(state[f"generator/{i}"])
    if batch:
        dataset = _training_dataset(config.data, _data_dirs(config)[0], config.run)
        _recalibrate(generator, dataset, epoch, config, _epoch_batches(dataset, config.data))
    return generator, config, (epoch, batch)


_STOP_REQUESTS = []  # signals taken by request_stop and not yet honoured by a loop


def request_stop(signum, frame=None):
    """The signal handler of a run (``scripts/train.py`` sets it for Ctrl-C and SIGTERM): raises
    KeyboardInterrupt, and the loop saves its position. Python swallows that exception when the
    signal lands in an object's finalizer (TensorFlow frees tensors in them all the time) and only
    prints "Exception ignored"; the loop then raises it after its next step, so that no stop is lost."""
    _STOP_REQUESTS.append(signum)
    raise KeyboardInterrupt(signum)


def _accumulate(sums, step_logs):
    """Adds a step's loss terms to ``sums``: ``{name: (sum, count)}``."""
    for name, value in step_logs.items():
        if _skipped_norm(name, value):
            continue
        total, count = sums.get(name, (0.0, 0))
        sums[name] = (total + value, count + 1)


def _short(name):  # "generator/content" -> "g:content" for the progress bar
    return name.split("/")[0][0] + ":" + name.split("/")[1]


def _shown(name):
    return name.endswith(("total", "content"))


def _auto_content_loss(network, vgg_weights):
    if vgg_weights != "imagenet":  # random init (None) or a local file: nothing to download
        return "perceptual"
    try:
        losses.imagenet_weights_path(network)
        return "perceptual"
    except DeblurGANError as error:
        log.warning("%s; training with the l1 content loss instead of the perceptual loss", error)
        return "l1"


def _training_dataset(data, train_dir, run):
    """Pairs from ``train_dir``, or with ``data.sharp_dir`` sharp photos blurred on the fly."""
    workers, max_image_pixels = run.workers, run.max_image_pixels
    if not data.sharp_dir:  # the options of the other source are refused by check_used
        return PairedImageDataset(
            train_dir, batch_size=data.batch_size, crop_size=data.crop_size, resize=data.resize,
            n_images=data.n_images, seed=data.seed, workers=workers, max_image_pixels=max_image_pixels,
        )  # fmt: skip
    if data.crop_size is None:
        raise DeblurGANError(
            f"data.crop_size=None: the photos of data.sharp_dir={data.sharp_dir} need a crop size",
            parameter="data.crop_size",
            mentions=("data.sharp_dir",),
        )
    return SharpPhotoDataset(
        data.sharp_dir, batch_size=data.batch_size, crop_size=data.crop_size,
        samples_per_photo=data.samples_per_photo, seed=data.seed, workers=workers, blur=data.blur,
        max_image_pixels=max_image_pixels,
    )  # fmt: skip


def _data_dirs(config):
    """(training pairs folder or None with sharp photos, validation pairs folder or None)."""
    data_dir, run = Path(config.run.data_dir), config.run
    if config.data.sharp_dir:
        # scripts/fetch_photos.py writes PHOTOS/train (sharp) beside PHOTOS/val/{A,B}
        train_dir, auto_val = None, Path(config.data.sharp_dir).parent / "val"
    elif (data_dir / "train" / "A").is_dir():
        train_dir, auto_val = data_dir / "train", data_dir / "test"
    elif (data_dir / "A").is_dir():
        train_dir, auto_val = data_dir, None
    else:
        raise DeblurGANError(
            f"data_dir={data_dir}: expected {data_dir}/train/A and {data_dir}/train/B (blurred and sharp "
            f"images), or {data_dir}/A and {data_dir}/B; or pass data.sharp_dir=PHOTOS (sharp photos)",
            parameter="data_dir",
            mentions=("data.sharp_dir",),
        )
    val_dir = run.val_dir
    if val_dir == AUTO:
        val_dir = auto_val if auto_val is not None and (auto_val / "A").is_dir() else None
        if val_dir is None and run.val_images:  # else the epochs' lines just lack val/psnr
            missing = auto_val / "A" if auto_val else "test/ beside A/ and B/"
            message = "no validation (no %s); run.val_dir=FOLDER validates on its pairs"
            log.info(message, missing, extra={"parameters": ["run.val_dir"]})
    elif val_dir and not ((Path(val_dir) / "A").is_dir() and (Path(val_dir) / "B").is_dir()):
        raise DeblurGANError(
            f"run.val_dir={val_dir}: holds no A/ (blurred) and B/ (sharp) folders; pass such a folder, "
            "or an empty one ('') for no validation",
            parameter="run.val_dir",
        )
    return train_dir, (Path(val_dir) if val_dir else None)


def _skipped_norm(name, value):
    """An infinite gradient norm of a step that mixed_float16's loss scaling skips (its first steps,
    until the scale fits): neither a divergence nor part of the epoch's mean; the losses show those."""
    return name.endswith("/grad_norm") and not math.isfinite(value)


def _check_finite(step_logs, epoch, batch_index, weights_dir):
    bad = {n: v for n, v in step_logs.items() if not math.isfinite(v) and not _skipped_norm(n, v)}
    if bad:
        name, value = next(iter(bad.items()))
        fix = "a lower learning rate (lr=...)"
        if any(Path(weights_dir).glob("generator_*.h5")):
            kept = f"the last good checkpoint in {weights_dir} is kept; resume with {fix}"
        else:
            kept = f"{weights_dir} holds no checkpoint yet; start again with {fix}"
        raise DeblurGANError(
            f"loss {name} became {value} at epoch {epoch}, batch {batch_index}; training stopped and {kept}",
            mentions=("lr",),
        )


def TrainingOptions(**flags):  # noqa: N802 (the name of the flat options class this replaces)
    """``TrainingConfig.from_flags(**flags)``: the flat option names of earlier versions."""
    return TrainingConfig.from_flags(**flags)
