"""The options of a training run as five frozen configs; the defaults are the Sicara recipe.

``TrainingConfig(generator, critic, loss, data, run)``: ``generator`` is its ``architecture`` and
the keyword arguments of :func:`deblurgan.model.generator_model` (``resnet``) or
:func:`deblurgan.multiscale_model.multiscale_generator_model` (``multiscale``); ``critic``,
``loss`` and ``data`` define what is trained; ``run`` says where files go and how long to train. A
resumed run must match the first four; its ``run`` part may change.
``TrainingConfig.from_flags(**flags)`` takes the flat names of ``scripts/train.py`` (and of the
``options.json`` of earlier versions). A field with a ``help`` is a ``scripts/train.py`` option.
"""

import dataclasses
import types
import typing
from typing import ClassVar

from deblurgan.datasets import BLUR_PRESETS
from deblurgan.errors import MAX_SEED, DeblurGANError
from deblurgan.io import DEFAULT_MAX_IMAGE_PIXELS
from deblurgan.losses import CONTENT_LOSSES, VGG_NETWORKS, PerceptualLoss
from deblurgan.model import BLOCKS, GENERATOR_PRESETS, UPSAMPLINGS
from deblurgan.training import GAN_MODES, LR_SCHEDULES, PRECISIONS

AUTO = "auto"
CRITICS = (AUTO, "sicara", "patchgan")
# generator architecture -> its residual blocks when n_blocks is None (per scale for multiscale, Nah et al.)
ARCHITECTURE_BLOCKS = {"resnet": 9, "multiscale": 19}
CRITIC_INPUTS = ("image", "highpass")


def _option(default, help, *flags, choices=None, minimum=None, maximum=None, above=None):
    """A field that is a scripts/train.py option; the config checks ``choices`` and the bounds
    (``above``: a lower bound the value may not equal)."""
    bounds = {"minimum": minimum, "maximum": maximum, "above": above}
    metadata = {"help": help, "flags": flags, "choices": choices, **bounds}
    return dataclasses.field(default=default, metadata=metadata)


class _Section:
    section: ClassVar[str]

    def __post_init__(self):
        for field in dataclasses.fields(self):
            key, value = f"{self.section}.{field.name}", getattr(self, field.name)
            _check_type(key, value, field.type)
            choices, minimum = field.metadata.get("choices"), field.metadata.get("minimum")
            if choices and value not in choices:
                raise DeblurGANError(f"{key}={value}: choose one of {', '.join(choices)}", parameter=key)
            if minimum is not None and value is not None and value < minimum:
                raise DeblurGANError(f"{key}={value}: must be at least {minimum}", parameter=key)
            maximum, above = field.metadata.get("maximum"), field.metadata.get("above")
            if maximum is not None and value is not None and value > maximum:
                raise DeblurGANError(f"{key}={value}: must be at most {maximum}", parameter=key)
            if above is not None and value is not None and not value > above:
                raise DeblurGANError(f"{key}={value}: must be above {above}", parameter=key)


def _check_type(key, value, annotation):
    """``value`` is of the field's type (an int is a float too): a string from a notebook's
    ``from_flags(batch_size="2")`` is refused here, not in a comparison far away."""
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if float in allowed:
        allowed = (*allowed, int)
    if not isinstance(value, allowed):
        names = " or ".join(t.__name__ for t in allowed if t is not type(None))
        raise DeblurGANError(f"{key}={value!r}: must be {names}", parameter=key)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig(_Section):
    """The generator: ``architecture`` and its builder's keyword arguments, with their defaults.

    ``resnet`` (the Sicara generator) takes ``generator_model``'s arguments; ``multiscale``
    (DeepDeblur) takes ``input_shape``, ``n_filters``, ``n_blocks``, ``n_scales``, ``kernel_size``
    and ``name``; the others away from their defaults are refused (the block fields by every run,
    the norm, output, upsampling and dropout fields by a new one: ``training_loop.check_used``). Fields
    added later default to the earlier behaviour, so older ``options.json`` files still load.
    ``n_blocks=None``: the architecture's default (``ARCHITECTURE_BLOCKS``).
    """

    section: ClassVar[str] = "generator"
    architecture: str = _option(
        "resnet", "Generator: resnet (Sicara) or multiscale (DeepDeblur).", choices=tuple(ARCHITECTURE_BLOCKS)
    )
    input_shape: tuple = (None, None, 3)
    n_filters: int = _option(64, "Generator filters (first convolution; each scale's).", minimum=1)
    n_blocks: int | None = _option(None, "Residual blocks (default 9; multiscale: 19 per scale).", minimum=0)
    n_scales: int = _option(3, "multiscale: pyramid levels (1, 1/2, 1/4).", minimum=1)
    kernel_size: int = _option(5, "multiscale: side of every convolution.", minimum=1)
    norm: str = _option("batch", "Overrides --preset's normalisation.", choices=("batch", "instance", "none"))
    output_mode: str = _option(
        "average", "Overrides --preset: average (Sicara) or clip.", choices=("average", "clip")
    )
    upsampling: str = _option("nearest", "Overrides --preset's upsampling.", choices=UPSAMPLINGS)
    dropout_rate: float = _option(0.5, "Dropout in each residual block.", minimum=0, maximum=1)
    preset: str | None = None
    zero_init_output: bool = _option(False, "Start the last convolution at zero (identity with clip).")
    block: str = _option("resnet", "Residual trunk: resnet (Sicara) or rrdb (ESRGAN RRDBs).", choices=BLOCKS)
    rrdb_growth: int = _option(32, "rrdb: channels of each dense-block convolution.", minimum=1)
    residual_scale: float = _option(1.0, "resnet: each block adds scale * branch (EDSR: 0.1).")
    zero_init_blocks: bool = _option(False, "resnet: start each block's last convolution at zero (identity).")
    name: str = "generator"

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(self.input_shape))  # JSON gives a list
        super().__post_init__()


@dataclasses.dataclass(frozen=True)
class CriticConfig(_Section):
    """The adversarial part: GAN mode (a row of ``training.RECIPES``), critic network, its steps."""

    section: ClassVar[str] = "critic"
    gan_mode: str = _option(
        "wgan",
        "wgan (Sicara), wgan-gp (paper), wgan-clip, ragan (ESRGAN), ragan-ls (DeblurGAN-v2), none.",
        choices=GAN_MODES,
    )
    architecture: str = _option(AUTO, "auto: Sicara critic for wgan, PatchGAN otherwise.", choices=CRITICS)
    input: str = _option("image", "highpass: the critic sees x - lowpass(x) (DSGAN).", choices=CRITIC_INPUTS)
    n_filters: int = _option(64, "Critic filters.", minimum=1)
    n_layers: int = _option(
        3,
        "patchgan: stride-2 convolutions after the first; 3: 142 px patches, 2: DeblurGAN's 70 px.",
        minimum=1,
    )
    updates: int = _option(5, "Critic steps per generator step.", minimum=1)
    warmup_steps: int = _option(
        0, "Steps at the start that train the critic alone (BasicSR's net_d_init_iters).", minimum=0
    )
    clip_value: float = _option(0.01, "wgan-clip weight bound.", above=0)


@dataclasses.dataclass(frozen=True)
class LossConfig(_Section):
    """Loss terms and weights; ``content="auto"``: perceptual if VGG weights can be had, else L1."""

    section: ClassVar[str] = "loss"
    content: str = _option(
        AUTO, "auto: perceptual if VGG weights can be had, else l1.", choices=(AUTO, *CONTENT_LOSSES)
    )
    content_weight: float = _option(100.0, "Weight of the content loss.", minimum=0)
    adversarial_weight: float = _option(1.0, "Weight of the adversarial loss.", minimum=0)
    gradient_penalty_weight: float = _option(10.0, "WGAN-GP lambda.", "--gp_weight", minimum=0)
    lowpass_weight: float = _option(0.0, "Weight of DSGAN's low-pass L1 (colour) loss; 0: off.", minimum=0)
    fft_weight: float = _option(
        0.1, "--content_loss l1+fft: weight of the FFT L1 next to the L1 (MIMO-UNet).", minimum=0
    )
    vgg_network: str = _option(
        "vgg16", "vgg16 block3_conv3 (Sicara), vgg19 conv3_3 (paper).", choices=VGG_NETWORKS
    )
    vgg_weights: str | None = _option("imagenet", "'imagenet' (downloaded by Keras) or a local notop .h5.")
    vgg_input_scaling: str = _option(
        "caffe", "caffe: as Keras' VGG expects; none: Sicara's.", choices=PerceptualLoss.INPUT_SCALINGS
    )


@dataclasses.dataclass(frozen=True)
class DataConfig(_Section):
    """The training stream: which batches, in which order."""

    section: ClassVar[str] = "data"
    batch_size: int = _option(2, "Pairs per batch.", minimum=1)
    crop_size: int | None = _option(256, "Random crop taken from both images.", minimum=1)
    resize: int | None = _option(None, "Resize whole images to N x N instead (Sicara).", minimum=1)
    n_images: int | None = _option(None, "Use only the first N training pairs.", minimum=1)
    steps_per_epoch: int | None = _option(None, "Cap the batches per epoch.", minimum=1)
    seed: int = _option(
        0,
        "Data order and crops, network initialisation, gradient-penalty draws.",
        minimum=0,
        maximum=MAX_SEED,
    )
    sharp_dir: str | None = _option(None, "Sharp photos to blur on the fly instead of pairs.")
    samples_per_photo: int = _option(8, "With --sharp_dir: crops of each photo per epoch.", minimum=1)
    blur: str = _option(
        "default",
        "With --sharp_dir: default (make_blur_dataset's kernels, noise sigma 0-0.01, JPEG quality "
        "70-95) or sample (images/test's blur, no noise).",
        choices=tuple(BLUR_PRESETS),
    )


@dataclasses.dataclass(frozen=True)
class RunConfig(_Section):
    """Where the files are and how long to train: free to change when a run is resumed."""

    section: ClassVar[str] = "run"
    data_dir: str = _option("images", "Holds train/{A,B} (and test/{A,B} for validation), or A/ and B/.")
    weights_dir: str = _option("weights", "Checkpoints and the training state.")
    log_dir: str = _option("logs", "TensorBoard events and losses.csv.")
    n_epochs: int = _option(50, "Epochs to train.", "--n_epochs", "--epoch_num", minimum=1)
    lr: float | None = _option(None, "Learning rate (default: the GAN mode's recipe).", above=0)
    critic_lr: float | None = _option(None, "The critic's learning rate (default: --lr).", above=0)
    lr_decay: bool = _option(False, "Same as --lr_schedule linear (kept for earlier runs).")
    # The schedule is a function of the step (training.scheduled_learning_rate); like lr, a resume
    # takes it from its command line.
    lr_schedule: str = _option(
        "constant",
        "linear: flat, then to 0 over the second half, per epoch (paper); cosine: to 0 over the run.",
        choices=LR_SCHEDULES,
    )
    warmup_steps: int = _option(0, "Learning rate ramps linearly from 0 over the first N steps.", minimum=0)
    clip_norm: float | None = _option(None, "Clip each network's gradients to this global L2 norm.", above=0)
    init_generator: str | None = _option(None, "Start the generator from this .h5 file.")
    val_dir: str | None = _option(
        AUTO, "auto: DATA_DIR/test, or SHARP_DIR/../val with --sharp_dir, when present; '': none."
    )
    val_images: int = _option(8, "Validation pairs per epoch.", minimum=0)
    bn_recalibration_batches: int = _option(20, "Batches re-estimating batch-norm statistics.", minimum=0)
    workers: int = _option(2, "Image-decoding threads.", minimum=0)
    max_image_pixels: int = _option(
        DEFAULT_MAX_IMAGE_PIXELS, "Training and validation images above this are skipped.", minimum=1
    )
    # Speed options; like the rest of run, a resume takes them from its command line, not the saved run.
    precision: str = _option(
        "float32",
        "mixed_bfloat16 is fast only on a GPU or a CPU with AMX (amx_bf16); weights stay float32.",
        choices=PRECISIONS,
    )
    jit_compile: bool | None = _option(None, "XLA-compile the steps (default: on for JAX, off for TF).")
    progress: bool = _option(True, "Show the tqdm bar.")

    def __post_init__(self):
        super().__post_init__()
        if self.lr_decay and self.lr_schedule == "constant":  # the flag of earlier versions
            object.__setattr__(self, "lr_schedule", "linear")
        elif self.lr_decay and self.lr_schedule != "linear":
            raise DeblurGANError(
                f"run.lr_decay=True: means lr_schedule=linear; drop it for lr_schedule={self.lr_schedule}",
                parameter="run.lr_decay",
                mentions=("lr_schedule",),
            )


SECTIONS = {c.section: c for c in (GeneratorConfig, CriticConfig, LossConfig, DataConfig, RunConfig)}
# Flat names (scripts/train.py parameters) that differ from the field name or whose field name is in
# two sections; the rest are the same.
FLAT_NAMES = {
    "critic": ("critic", "architecture"),
    "critic_filters": ("critic", "n_filters"),
    "critic_layers": ("critic", "n_layers"),
    "critic_updates": ("critic", "updates"),
    "critic_input": ("critic", "input"),
    "critic_warmup_steps": ("critic", "warmup_steps"),
    "warmup_steps": ("run", "warmup_steps"),  # the learning rate's (the critic's: critic_warmup_steps)
    "content_loss": ("loss", "content"),
}
GENERATOR_VARIANT = ("norm", "output_mode", "upsampling")  # flags that override --preset


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Every option of a training run. ``dataclasses.replace`` makes a changed copy."""

    generator: GeneratorConfig = GeneratorConfig()
    critic: CriticConfig = CriticConfig()
    loss: LossConfig = LossConfig()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()

    @classmethod
    def from_flags(cls, preset="sicara", **flags):
        """A config from flat names (``n_epochs=2, critic_filters=8, ...``); ``preset`` picks norm,
        output mode and upsampling, and ``norm``/``output_mode``/``upsampling`` not None override it."""
        if preset not in GENERATOR_PRESETS:
            message = f"preset={preset}: choose one of {', '.join(GENERATOR_PRESETS)}"
            raise DeblurGANError(message, parameter="preset")
        sections = {name: {} for name in SECTIONS}
        sections["generator"].update(GENERATOR_PRESETS[preset])
        for flat, value in flags.items():
            section, field = _field_of(flat)
            if value is not None or flat not in GENERATOR_VARIANT:
                sections[section][field] = value
        return cls(**{name: SECTIONS[name](**values) for name, values in sections.items()})

    @classmethod
    def from_dict(cls, payload):
        """The inverse of ``to_dict``; a flat ``options.json`` of earlier versions works too."""
        if "generator" not in payload:
            return cls.from_flags(**{k: v for k, v in payload.items() if k in _FLAT_FIELDS})
        return cls(**{name: SECTIONS[name](**payload.get(name, {})) for name in SECTIONS})

    def to_dict(self):
        return dataclasses.asdict(self)

    def __getattr__(self, name):
        """An option's flat name (``config.n_epochs``, as the flat options of earlier versions had
        it) reads its field; called only for names that are not attributes."""
        if name.startswith("_"):  # copy, pickle and dataclasses probe for such names
            raise AttributeError(name)
        try:
            section, field = _field_of(name)
        except DeblurGANError:
            raise AttributeError(f"TrainingConfig has no option {name!r}") from None
        return getattr(getattr(self, section), field)


def _field_of(flat):
    """``(section, field)`` of a flat name: a flag's (--critic_filters), its other spelling
    (--gp_weight) or a field's own."""
    return FLAT_NAMES.get(flat) or _FLAG_FIELDS.get(flat) or _section_of(flat)


def _section_of(flat):
    for name, section in SECTIONS.items():
        if flat in {f.name for f in dataclasses.fields(section)}:
            return name, flat
    raise DeblurGANError(f"{flat}: not a training option", parameter=flat)


# The script's other spellings of a field (--gp_weight, --epoch_num), accepted as flat names too.
_FLAG_FIELDS = {
    flag.removeprefix("--"): (name, field.name)
    for name, section in SECTIONS.items()
    for field in dataclasses.fields(section)
    for flag in field.metadata.get("flags", ())
}
_FLAT_FIELDS = {"preset", *FLAT_NAMES, *_FLAG_FIELDS} | {
    f.name for c in SECTIONS.values() for f in dataclasses.fields(c)
}


def resumed_config(current, saved, source):
    """The config a resumed run continues with: ``saved``, with ``current``'s run part.

    Every other field must match; one left at ``"auto"`` or None in ``current`` takes the saved
    value (the saved run resolved it). ``source`` (the options file) is named in the error.
    """
    differing = {
        f"{name}.{field.name}": (getattr(getattr(saved, name), field.name), value)
        for name in SECTIONS
        if name != "run"
        for field in dataclasses.fields(getattr(current, name))
        if (value := getattr(getattr(current, name), field.name)) not in (AUTO, None)
        and value != getattr(getattr(saved, name), field.name)
    }
    if differing:
        started = "; ".join(f"{k}={was!r} (now {now!r})" for k, (was, now) in differing.items())
        raise DeblurGANError(
            f"{source}: the run was started with {started}{_preset_hint(saved.generator, differing)}; "
            "resume with the same options, or start "
            "a new run with another run.weights_dir=FOLDER",
            mentions=(*differing, "preset", "run.weights_dir"),
        )
    return dataclasses.replace(saved, run=current.run)


def _preset_hint(generator, differing):
    """`` (what preset=paper sets)`` when the differing fields are a preset's, which the user gave as
    one flag: options.json keeps the fields, not the preset."""
    for name, fields in GENERATOR_PRESETS.items():
        if all(getattr(generator, field) == value for field, value in fields.items()):
            if any(key.removeprefix("generator.") in fields for key in differing):
                return f" (what preset={name} sets)"
    return ""
