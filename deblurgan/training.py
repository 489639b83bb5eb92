"""The DeblurGAN update: ``critic_updates`` critic steps, then one generator step.

GAN modes are rows of ``RECIPES`` (the README's table lists them): ``"wgan"`` is the Sicara
recipe (Sicara critic, real target +1 under ``mean(y_true * y_pred)``, Adam 1e-4 betas 0.9/0.999;
Sicara ran separate real and fake critic updates, here one update minimises their sum),
``"wgan-gp"`` the paper's (PatchGAN, ``mean D(fake) - mean D(real) + 10 GP``, Adam betas 0.5/0.999),
``"wgan-clip"`` the original WGAN (weights clipped to +-0.01, RMSprop 5e-5), ``"ragan"`` and
``"ragan-ls"`` the relativistic average GANs of ESRGAN (binary cross-entropy; Adam 1e-4, betas
0.9/0.99 as ESRGAN) and DeblurGAN-v2 (least squares; Adam 1e-4, betas 0.9/0.999, PyTorch's defaults
as DeblurGAN-v2 uses them), both with the PatchGAN critic, and ``"none"`` content loss only
(pre-training).

Correct updates: every loss is written as a pure function of variable *values* (``stateless_call``),
and each step differentiates and updates only its own network's trainable values and writes back
only that network's state. A generator step reads the critic's values without changing any of them
(its batch-norm statistics included), and a critic step never touches the generator. Keras 3's
``trainable`` flag and ``compile`` play no part, which is why toggling them cannot break this.

Backend-specific gradient code lives in the section marked below and nowhere else.
"""

import dataclasses
import json
import math

import keras
import numpy as np
from keras import ops

from deblurgan import frequency, losses
from deblurgan.distribution import (
    BatchPlacement,
    across_replicas,
    replica_gradients,
    replica_mean,
    replica_sum,
)
from deblurgan.errors import DeblurGANError
from deblurgan.multiscale_model import finest_output


@dataclasses.dataclass(frozen=True)
class GanRecipe:
    """What a GAN mode changes. ``real_target``: the label of real images under
    ``mean(y_true * y_pred)`` (Sicara's critic scores them low, +1; the paper's high, -1); fakes get
    the opposite label and the generator's adversarial term the real one.
    ``relativistic``: ``(critic loss, generator loss)`` of the critic's raw ``(real, fake)`` scores
    (``losses.RELATIVISTIC_LOSSES``) replacing the Wasserstein terms; the generator's needs the
    scores of the real images too."""

    real_target: float
    gradient_penalty: bool
    clip_weights: bool
    optimizer: type
    optimizer_kwargs: dict
    learning_rate: float
    critic: str  # the critic architecture of critic="auto"
    relativistic: tuple | None = None
    uses_critic: bool = True


_ADAM, _RMSPROP = keras.optimizers.Adam, keras.optimizers.RMSprop
_SICARA_BETAS, _PAPER_BETAS = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8), dict(beta_1=0.5, beta_2=0.999)
_ESRGAN_BETAS = dict(beta_1=0.9, beta_2=0.99)
_RAGAN, _RAGAN_LS = losses.RELATIVISTIC_LOSSES["ragan"], losses.RELATIVISTIC_LOSSES["ragan-ls"]
# fmt: off
RECIPES = {  # real_target, gradient penalty, clipping, optimizer, its kwargs, learning rate, critic,
    # relativistic losses
    "wgan":      GanRecipe(1.0,  False, False, _ADAM,    _SICARA_BETAS, 1e-4, "sicara"),
    "wgan-gp":   GanRecipe(-1.0, True,  False, _ADAM,    _PAPER_BETAS,  1e-4, "patchgan"),
    "wgan-clip": GanRecipe(-1.0, False, True,  _RMSPROP, {},            5e-5, "patchgan"),
    "ragan":     GanRecipe(-1.0, False, False, _ADAM,    _ESRGAN_BETAS, 1e-4, "patchgan", _RAGAN),
    "ragan-ls":  GanRecipe(-1.0, False, False, _ADAM,    _SICARA_BETAS, 1e-4, "patchgan", _RAGAN_LS),
    "none":      GanRecipe(-1.0, False, False, _ADAM,    _SICARA_BETAS, 1e-4, "patchgan", uses_critic=False),
}
# fmt: on
GAN_MODES = tuple(RECIPES)
# Keras dtype policies a run may train under (scripts/train.py --precision); weights stay float32.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
LR_SCHEDULES = ("constant", "linear", "cosine")


def recipe(gan_mode):
    """The :class:`GanRecipe` of ``gan_mode``; a clear error for an unknown one."""
    if gan_mode not in RECIPES:
        raise DeblurGANError(
            f"gan_mode={gan_mode!r}: choose one of {', '.join(GAN_MODES)}", parameter="gan_mode"
        )
    return RECIPES[gan_mode]


def default_optimizers(gan_mode, learning_rate=None, critic_learning_rate=None):
    """(generator optimizer, critic optimizer) of the recipe for ``gan_mode``; the critic's rate
    defaults to ``learning_rate``, which defaults to the recipe's."""
    r = recipe(gan_mode)
    learning_rate = learning_rate or r.learning_rate
    rates = {"generator_optimizer": learning_rate, "critic_optimizer": critic_learning_rate or learning_rate}
    return tuple(r.optimizer(rate, name=name, **r.optimizer_kwargs) for name, rate in rates.items())


def linear_decay_learning_rate(base_lr, epoch, n_epochs):
    """Constant for the first half of training, then linear to zero at the end (the paper's schedule)."""
    half = n_epochs / 2.0
    if epoch < half:
        return base_lr
    return base_lr * max(0.0, (n_epochs - epoch) / half)


def scheduled_learning_rate(base_lr, step, steps_per_epoch, n_epochs, schedule="constant", warmup_steps=0):
    """The learning rate of optimizer step ``step`` (0-based, counted over the whole run).

    ``base_lr`` times a warmup factor and a decay factor, both functions of ``step`` alone (so a
    resumed run continues the same sequence):

    - warmup: step ``k < warmup_steps`` gets ``(k + 1) / warmup_steps`` (a linear ramp from 0 that
      reaches 1 at step ``warmup_steps - 1``); 1 afterwards.
    - ``"constant"``: 1. ``"linear"``: the paper's, per epoch (``linear_decay_learning_rate`` of the
      epoch ``step // steps_per_epoch``): flat for the first half, then linear to 0.
      ``"cosine"``: ``(1 + cos(pi * p)) / 2`` with ``p`` going from 0 at the end of the warmup to 1 at
      step ``n_epochs * steps_per_epoch`` (the end of the run).
    """
    if schedule not in LR_SCHEDULES:
        raise DeblurGANError(
            f"lr_schedule={schedule!r}: choose one of {', '.join(LR_SCHEDULES)}", parameter="lr_schedule"
        )
    factor = (step + 1) / warmup_steps if step < warmup_steps else 1.0
    if schedule == "linear":
        factor *= linear_decay_learning_rate(1.0, step // steps_per_epoch, n_epochs)
    elif schedule == "cosine":
        decay_steps = max(1, n_epochs * steps_per_epoch - warmup_steps)
        progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
        factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * factor


class DeblurGANTrainer:
    """Holds the generator, the critic and their optimizers, and performs the GAN update.

    Args:
        generator, critic: Keras models (``critic`` may be None for ``gan_mode="none"``).
        gan_mode: one of ``GAN_MODES`` (a row of ``RECIPES``).
        content_loss: callable ``(sharp, restored) -> scalar`` (e.g. ``losses.content_loss("l1")``);
            ``restored`` is the list of outputs of a multi-scale generator (finest first), whose
            other terms use the finest only.
        content_weight, adversarial_weight: generator loss weights (100 and 1, as Sicara and the paper).
        lowpass_weight: weight of DSGAN's low-pass L1 term (``frequency.lowpass_l1_loss``; 0: off).
        gradient_penalty_weight: lambda of WGAN-GP (10).
        clip_value: critic weight clipping bound for ``wgan-clip`` (0.01).
        critic_updates: critic steps per generator step (5).
        generator_optimizer, critic_optimizer: default to ``default_optimizers(gan_mode)``; a
            ``keras.optimizers.LossScaleOptimizer`` scales the loss (mixed_float16 training).
        seed: seeds the gradient-penalty interpolation draws.
        fft_weight: weight of the FFT L1 term (``losses.fft_l1_loss`` of the finest output, logged as
            ``generator/fft``) relative to the content loss: the generator loss gets
            ``content_weight * (content + fft_weight * fft)``, MIMO-UNet's L1 + 0.1 FFT for content L1
            (``content_loss="l1+fft"`` in a config); 0: off.
        clip_norm: each network's gradients are scaled by ``min(1, clip_norm / global norm)`` before
            its optimizer step, the norm (before clipping) logged as ``{network}/grad_norm``; None: off.
        jit_compile: XLA-compile the steps; None: the backend's norm (see ``_compile``).

    Example:
        >>> trainer = DeblurGANTrainer(g, patchgan_critic_model(), gan_mode="wgan-gp",
        ...                            content_loss=losses.content_loss("l1"))
        >>> logs = trainer.train_on_batch(blurred, sharp)   # {"critic/total": ..., "generator/total": ...}
    """

    def __init__(
        self, generator, critic, gan_mode="wgan", content_loss=None, content_weight=100.0,
        adversarial_weight=1.0, gradient_penalty_weight=10.0, clip_value=0.01, critic_updates=5,
        generator_optimizer=None, critic_optimizer=None, seed=0, lowpass_weight=0.0, jit_compile=None,
        fft_weight=0.0, clip_norm=None,
    ):  # fmt: skip
        self.recipe = recipe(gan_mode)
        if self.recipe.uses_critic and critic is None:
            raise DeblurGANError(f"gan_mode={gan_mode!r}: needs a critic", parameter="gan_mode")
        self.generator = generator
        self.critic = critic if self.recipe.uses_critic else None
        self.gan_mode = gan_mode
        self.objective = GANObjective(
            self.recipe, generator, self.critic, content_loss or losses.content_loss("l1"),
            content_weight=content_weight, adversarial_weight=adversarial_weight,
            gradient_penalty_weight=gradient_penalty_weight, lowpass_weight=lowpass_weight,
            fft_weight=fft_weight,
        )  # fmt: skip
        self.clip_value = float(clip_value)
        self.clip_norm = clip_norm
        self.critic_updates = int(critic_updates)
        default_g, default_d = default_optimizers(gan_mode)
        self.generator_optimizer = generator_optimizer or default_g
        self.critic_optimizer = critic_optimizer or default_d
        self.rng = np.random.default_rng(seed)
        self.jit_compile = jit_compile
        self._place = BatchPlacement()  # this process's batch rows onto the devices (distribution.py)
        self._generator_step = _Updater(
            self.objective.generator_loss, generator, self.generator_optimizer, other=self.critic,
            jit_compile=jit_compile, clip_norm=clip_norm, name="generator",
        )  # fmt: skip
        self._predict = _compiled_inference(finest_output(generator), jit_compile)  # what the critic sees
        if self.critic is not None:
            post = self._clip_weights if self.recipe.clip_weights else None
            self._critic_step = _Updater(
                self.objective.critic_loss, self.critic, self.critic_optimizer, post_update=post,
                jit_compile=jit_compile, clip_norm=clip_norm, name="critic",
            )  # fmt: skip

    # -- the algorithm ---------------------------------------------------------------------------

    def train_on_batch(self, blurred, sharp, train_generator=True):
        """One DeblurGAN iteration on a batch; returns each loss term by name (floats).
        ``train_generator=False``: the critic steps alone, against a fixed generator (a critic
        warm-up before adversarial fine-tuning, BasicSR's ``net_d_init_iters``)."""
        logs = {}
        if self.critic is not None:
            place, n = self._place, len(sharp) * self._place.num_processes  # n: the global batch
            blurred, sharp = place(blurred), place(sharp)
            restored = self._predict(blurred)  # the generator in inference mode, as Sicara's g.predict
            for _ in range(self.critic_updates):
                alpha = self.rng.uniform(size=(n, 1, 1, 1)).astype("float32")[place.rows(n)]
                logs.update(self._critic_step(sharp, restored, place(alpha)))
        if train_generator:
            logs.update(self._generator_step(blurred, sharp))
        return {name: float(value) for name, value in logs.items()}

    def _clip_weights(self, values):
        return [ops.clip(v, -self.clip_value, self.clip_value) for v in values]

    def set_learning_rate(self, learning_rate, critic_learning_rate=None):
        """Sets the optimizers' learning rates (the critic's defaults to the generator's)."""
        self.generator_optimizer.learning_rate = learning_rate
        critic_learning_rate = learning_rate if critic_learning_rate is None else critic_learning_rate
        self.critic_optimizer.learning_rate = critic_learning_rate

    def get_state(self):
        """Every variable of both networks and optimizers, and the random state (for exact resume)."""
        return trainer_state(self)

    def set_state(self, state):
        restore_trainer_state(self, state)


class GANObjective:
    """The loss of each network as a pure function of variable values, every term weighted and
    logged by name (``critic/...``, ``generator/...``). See :class:`DeblurGANTrainer` for the weights."""

    def __init__(
        self, recipe, generator, critic, content_loss, content_weight=100.0, adversarial_weight=1.0,
        gradient_penalty_weight=10.0, lowpass_weight=0.0, fft_weight=0.0,
    ):  # fmt: skip
        self.recipe, self.generator, self.critic = recipe, generator, critic
        self.content_loss = content_loss
        self.content_weight = float(content_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.lowpass_weight = float(lowpass_weight)
        self.fft_weight = float(fft_weight)

    def critic_loss(self, trainable, non_trainable, _, sharp, restored, alpha):
        critic, real_target = self.critic, self.recipe.real_target
        real_score, non_trainable = critic.stateless_call(trainable, non_trainable, sharp, training=True)
        fake_score, non_trainable = critic.stateless_call(trainable, non_trainable, restored, training=True)
        if self.recipe.relativistic:
            total = self.recipe.relativistic[0](real_score, fake_score)
            logs = {"critic/relativistic": total}
        else:
            total = losses.wasserstein_loss(real_target, real_score) + losses.wasserstein_loss(
                -real_target, fake_score
            )
            logs = {"critic/wasserstein": total}
        if self.recipe.gradient_penalty:
            penalty = gradient_penalty(
                lambda x: critic.stateless_call(trainable, non_trainable, x, training=True)[0],
                sharp,
                restored,
                alpha,
            )
            logs["critic/gradient_penalty"] = penalty
            total = total + self.gradient_penalty_weight * penalty
        logs["critic/total"] = total
        return total, (logs, non_trainable)

    def generator_loss(self, trainable, non_trainable, critic_values, blurred, sharp):
        restored, non_trainable = self.generator.stateless_call(
            trainable, non_trainable, blurred, training=True
        )
        content = self.content_loss(sharp, restored)  # every output of a multi-scale generator
        logs = {"generator/content": content}
        total = self.content_weight * content
        if isinstance(restored, (list, tuple)):  # the other terms judge the finest output only
            restored = restored[0]
        if self.fft_weight:
            fft = losses.fft_l1_loss(sharp, restored)
            logs["generator/fft"] = fft
            total = total + self.content_weight * self.fft_weight * fft
        if self.lowpass_weight:
            lowpass = frequency.lowpass_l1_loss(sharp, restored)
            logs["generator/lowpass"] = lowpass
            total = total + self.lowpass_weight * lowpass
        if self.critic is not None:
            adversarial = self._adversarial_loss(critic_values, restored, sharp)
            logs["generator/adversarial"] = adversarial
            total = total + self.adversarial_weight * adversarial
        logs["generator/total"] = total
        return total, (logs, non_trainable)

    def _adversarial_loss(self, critic_values, restored, sharp):
        """The generator's adversarial term: the critic's verdict on ``restored``, read-only."""

        def score(images):  # batch statistics as in the critic's own steps; its state updates dropped
            return self.critic.stateless_call(*critic_values, images, training=True)[0]

        if self.recipe.relativistic:
            return self.recipe.relativistic[1](score(sharp), score(restored))
        return losses.wasserstein_loss(self.recipe.real_target, score(restored))


def _state_variables(trainer):
    """Every variable whose value defines the training state, with a stable name for each."""
    named = []
    for prefix, owner in (
        ("generator", trainer.generator),
        ("critic", trainer.critic),
        ("generator_optimizer", trainer.generator_optimizer),
        ("critic_optimizer", trainer.critic_optimizer if trainer.critic is not None else None),
    ):
        if isinstance(owner, keras.optimizers.LossScaleOptimizer):
            # Its own variables (the loss scale) apart, so a resume may change --precision.
            own = owner.variables[: len(owner.variables) - len(owner.inner_optimizer.variables)]
            named += [(f"{prefix}/loss_scale/{i}", v) for i, v in enumerate(own)]
            owner = owner.inner_optimizer
        if owner is not None:
            # By position: Keras numbers seed-generator names process-wide, so paths can differ
            # between the run that saved and the one that resumes.
            named += [(f"{prefix}/{i}", v) for i, v in enumerate(owner.variables)]
    return named


def trainer_state(trainer):
    """``{name: array}`` of the trainer's networks, optimizers and random state."""
    # (read through convert_to_tensor: a mirrored int64 variable refuses np.array on TensorFlow)
    state = {name: ops.convert_to_numpy(ops.convert_to_tensor(v)) for name, v in _state_variables(trainer)}
    state["trainer/rng"] = np.array(json.dumps(trainer.rng.bit_generator.state))
    return state


def restore_trainer_state(trainer, state):
    """Sets the trainer from a :func:`trainer_state` dict; a clear error when it does not fit."""
    # a state saved without loss scaling leaves the loss scale at its start
    named = [
        (name, v) for name, v in _state_variables(trainer) if name in state or "/loss_scale/" not in name
    ]
    missing = [name for name, _ in named if name not in state]
    if missing:
        raise DeblurGANError(f"training state lacks {len(missing)} variables, e.g. {missing[0]}")
    for name, variable in named:
        if tuple(state[name].shape) != tuple(variable.shape):
            raise DeblurGANError(
                f"training state {name} ({variable.path}) has shape {state[name].shape}, "
                f"the network has {tuple(variable.shape)}"
            )
        variable.assign(state[name])
    if "trainer/rng" in state:
        trainer.rng.bit_generator.state = json.loads(str(state["trainer/rng"]))


def recalibrate_batch_norm(model, batches):
    """Sets every BatchNormalization layer's moving statistics from ``batches`` ("precise BN").

    Moving averages (momentum 0.99) lag behind weights that change every step, so a network
    trained with batch statistics can do much worse in inference mode than in training mode.
    This recomputes them with the current weights: each layer's moving mean and variance become
    the average of its batch statistics over ``batches`` (an iterable of input batches).
    Trainable weights are untouched, and so is the random state of dropout: a run interrupted
    during the recalibration recalibrates again when resumed, and must draw the masks it would
    have. Returns the number of batches used.
    """
    norms = list(_batch_norm_layers(model))
    if not norms:
        return 0
    statistics = {id(v) for layer in norms for v in layer.non_trainable_variables}
    others = [v for v in model.non_trainable_variables if id(v) not in statistics]  # seed states
    kept = [ops.convert_to_numpy(ops.convert_to_tensor(v)) for v in others]
    momenta = [layer.momentum for layer in norms]
    count = 0
    try:
        for count, batch in enumerate(batches, start=1):
            for layer in norms:  # moving <- running mean of the batch statistics seen so far
                layer.momentum = (count - 1) / count
            model(batch, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
        _assign(others, kept)
    return count


def _batch_norm_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        elif hasattr(layer, "layers"):  # a nested model
            yield from _batch_norm_layers(layer)


def gradient_penalty(critic_fn, real, fake, alpha):
    """WGAN-GP penalty ``mean((||grad critic(x_hat)||_2 - 1)^2)``, ``x_hat = alpha real + (1-alpha) fake``.

    ``critic_fn`` maps images to scores (any shape per sample: a PatchGAN map is summed, so the
    gradient is that of the sum of the sample's patch scores). ``alpha`` has shape (batch, 1, 1, 1).
    """
    real, fake, alpha = (ops.convert_to_tensor(t, dtype="float32") for t in (real, fake, alpha))
    interpolated = alpha * real + (1.0 - alpha) * fake
    gradients = input_gradient(critic_fn, interpolated)
    return losses.gradient_penalty_from_gradients(gradients)


class _Updater:
    """One optimisation step of ``model`` on ``loss_fn``, the same on every backend.

    ``loss_fn(trainable, non_trainable, other, *inputs) -> (loss, (logs, new_non_trainable))`` is
    pure; ``other`` holds the values of the other network (read-only). The compiled step maps
    values to new values: it differentiates with respect to ``trainable`` only, applies
    ``optimizer``, optionally maps the new trainable values through ``post_update`` (weight
    clipping); then only ``model``'s and ``optimizer``'s variables are written back. A
    ``LossScaleOptimizer`` multiplies the loss by its current scale (read from the values passed
    in) and unscales the gradients itself. ``clip_norm``: the gradients are clipped to that global
    norm first (:func:`clip_by_global_norm`; of the unscaled loss), and the norm is logged as
    ``{name}/grad_norm``.
    """

    def __init__(
        self, loss_fn, model, optimizer, other=None, post_update=None, jit_compile=None, clip_norm=None,
        name="model",
    ):  # fmt: skip
        self.loss_fn, self.model, self.optimizer = loss_fn, model, optimizer
        self.other, self.post_update = other, post_update
        self.clip_norm, self.name = clip_norm, name
        optimizer.build(model.trainable_variables)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            self.loss_fn, self._unscaled_loss_fn = self._scaled_loss, loss_fn
        self.place = BatchPlacement()
        self._step = across_replicas(_compile(self._values_step, jit_compile), models=(model, other))

    def __call__(self, *inputs):
        inputs = tuple(self.place(x) for x in inputs)
        other = None
        if self.other is not None:
            other = (_values(self.other.trainable_variables), _values(self.other.non_trainable_variables))
        model = self.model
        trainable, non_trainable, optimizer_values, logs = self._step(
            _values(model.trainable_variables),
            _values(model.non_trainable_variables),
            _values(self.optimizer.variables),
            other,
            *inputs,
        )
        _assign(model.trainable_variables, trainable)
        _assign(model.non_trainable_variables, non_trainable)
        _assign(self.optimizer.variables, optimizer_values)
        return logs

    def _values_step(self, trainable, non_trainable, optimizer_values, other, *inputs):
        self._optimizer_values = optimizer_values  # for _scaled_loss, within this trace or call
        (logs, non_trainable), grads = value_and_grad(self.loss_fn, trainable, non_trainable, other, *inputs)
        # several TensorFlow replicas: each replica's share of the gradients, mean statistics
        grads, (logs, non_trainable) = replica_gradients(grads), replica_mean((logs, non_trainable))
        if self.clip_norm is not None:  # by the norm of the whole batch's gradients, not a share's
            whole = replica_sum(grads)
            grads, norm = clip_by_global_norm(grads, self.clip_norm, scale=self._loss_scale(), whole=whole)
            logs = {**logs, f"{self.name}/grad_norm": norm}
        trainable, optimizer_values = _optimizer_step(
            self.optimizer, optimizer_values, grads, trainable, self.model.trainable_variables
        )
        if self.post_update is not None:
            trainable = self.post_update(trainable)
        return trainable, non_trainable, optimizer_values, logs

    def _scaled_loss(self, *args):
        loss, aux = self._unscaled_loss_fn(*args)  # the logs keep the unscaled terms
        return ops.multiply(loss, self._loss_scale()), aux

    def _loss_scale(self):
        """The loss scale of this step (1 without a ``LossScaleOptimizer``), not a stale one."""
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return 1.0
        mapping = list(zip(self.optimizer.variables, self._optimizer_values, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            return self.optimizer.scale_loss(1.0)


def clip_by_global_norm(grads, clip_norm, scale=1.0, whole=None):
    """``(grads * min(1, clip_norm / norm), norm)``, ``norm = sqrt(sum of every squared element) / scale``
    (``scale``: the loss scale the gradients carry) of ``whole`` (default ``grads``: the gradients
    of the whole batch, where ``grads`` are one replica's share). ``keras.ops`` only."""
    whole = grads if whole is None else whole
    norm = ops.divide(ops.sqrt(sum(ops.sum(ops.square(g)) for g in whole)), scale)
    factor = ops.divide(clip_norm, ops.maximum(norm, clip_norm))  # exactly 1 when norm <= clip_norm
    return [ops.multiply(g, ops.cast(factor, g.dtype)) for g in grads], norm


def _values(variables):
    return [v.value for v in variables]


def _assign(variables, values):
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


# ------------------------------------------------------------------------------------------------
# Backend-specific gradient code: the only place that knows about TensorFlow, JAX or PyTorch.
# ------------------------------------------------------------------------------------------------


def value_and_grad(fn, trainable, *args, create_graph=False):
    """``(aux, gradients)`` of ``fn(trainable, *args) -> (loss, aux)`` with respect to ``trainable``;
    ``create_graph``: the gradients themselves stay differentiable (for the gradient penalty)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        (_, aux), grads = jax.value_and_grad(fn, has_aux=True)(trainable, *args)
        return aux, grads
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(trainable)
            loss, aux = fn(trainable, *args)
        return aux, tape.gradient(loss, trainable)
    if backend == "torch":
        import torch

        detach = lambda t: t.detach() if isinstance(t, torch.Tensor) else t  # noqa: E731
        leaf = lambda t: t if t.requires_grad else t.detach().requires_grad_(True)  # noqa: E731
        trainable = keras.tree.map_structure(leaf, trainable)
        loss, aux = fn(trainable, *keras.tree.map_structure(detach, args))
        grads = torch.autograd.grad(loss, keras.tree.flatten(trainable), create_graph=create_graph)
        grads = keras.tree.pack_sequence_as(trainable, list(grads))
        return (aux if create_graph else keras.tree.map_structure(detach, aux)), grads
    raise NotImplementedError(f"backend {backend!r} is not supported")


def _optimizer_step(optimizer, optimizer_values, grads, trainable, variables):
    """New (trainable, optimizer) values after one step of ``optimizer``."""
    if keras.backend.backend() != "tensorflow":
        return optimizer.stateless_apply(optimizer_values, grads, trainable)
    # Keras refuses stateless_apply on TensorFlow (tf.distribute); the values are the variables'
    # own, read inside this same tf.function, so applying to the variables is the same step.
    optimizer.apply(grads, variables)
    return _values(variables), _values(optimizer.variables)


def _compile(fn, jit_compile=None):
    """``fn`` compiled for the backend: jax.jit, tf.function (XLA with ``jit_compile``), or eager
    PyTorch. ``jit_compile=None`` is each backend's norm: XLA on JAX (no XLA = eager JAX, very slow),
    plain tf.function on TensorFlow (XLA was no faster on an AVX2 CPU: benchmarks/README.md)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return fn if jit_compile is False else jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True, jit_compile=bool(jit_compile))
    if jit_compile:
        raise DeblurGANError(
            f"jit_compile=True: not available on the {backend} backend; leave it unset",
            parameter="jit_compile",
        )
    return fn


def input_gradient(fn, x):
    """Gradient of ``sum(fn(x))`` with respect to ``x``, itself differentiable (for the penalty)."""
    return value_and_grad(lambda inputs: (ops.sum(fn(inputs)), ()), x, create_graph=True)[1]


def _compiled_inference(model, jit_compile=None):
    """``images -> model(images, training=False)``, compiled for the backend, without gradients
    (the outputs of a distributed batch stay distributed)."""
    predict = across_replicas(_compile(lambda trainable, non_trainable, images: ops.stop_gradient(
        model.stateless_call(trainable, non_trainable, images, training=False)[0]), jit_compile),
        per_replica=True)  # fmt: skip
    return lambda images: predict(
        _values(model.trainable_variables), _values(model.non_trainable_variables), images
    )
