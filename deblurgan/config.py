"""The options of a training run as five frozen configs; the defaults are the Sicara recipe.

``TrainingConfig(generator, critic, loss, data, run)``: ``generator`` is exactly
:func:`deblurgan.model.generator_model`'s keyword arguments; ``critic``, ``loss`` and ``data`` define
what is trained; ``run`` says where files go and how long to train. A resumed run must match the
first four; its ``run`` part may change. ``TrainingConfig.from_flags(**flags)`` takes the flat
names of ``scripts/train.py`` (and of the ``options.json`` of earlier versions).
"""

import dataclasses

from deblurgan.errors import DeblurGANError
from deblurgan.losses import CONTENT_LOSSES, VGG_NETWORKS, PerceptualLoss
from deblurgan.model import GENERATOR_PRESETS
from deblurgan.training import GAN_MODES

CRITICS = ("auto", "sicara", "patchgan")
AUTO = "auto"


def _check(section, name, value, ok, why):
    if not ok:
        raise DeblurGANError(f"{section}.{name}={value!r}: {why}", parameter=f"{section}.{name}")


def _check_choice(section, name, value, choices):
    _check(section, name, value, value in choices, f"choose one of {', '.join(map(str, choices))}")


def _check_at_least(section, name, value, low):
    _check(section, name, value, value is None or value >= low, f"must be at least {low}")


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """``generator_model``'s keyword arguments, with its defaults (the Sicara generator)."""

    input_shape: tuple = (None, None, 3)
    n_filters: int = 64
    n_blocks: int = 9
    norm: str = "batch"
    output_mode: str = "average"
    upsampling: str = "nearest"
    dropout_rate: float = 0.5
    preset: str | None = None
    zero_init_output: bool = False
    name: str = "generator"

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(self.input_shape))  # JSON gives a list
        _check_at_least("generator", "n_filters", self.n_filters, 1)
        _check_at_least("generator", "n_blocks", self.n_blocks, 0)


@dataclasses.dataclass(frozen=True)
class CriticConfig:
    """The adversarial part: GAN mode (a row of ``training.RECIPES``), critic network, its steps."""

    gan_mode: str = "wgan"
    architecture: str = AUTO  # sicara for wgan, patchgan otherwise
    n_filters: int = 64
    updates: int = 5  # critic steps per generator step
    clip_value: float = 0.01  # wgan-clip weight bound

    def __post_init__(self):
        _check_choice("critic", "gan_mode", self.gan_mode, GAN_MODES)
        _check_choice("critic", "architecture", self.architecture, CRITICS)
        _check_at_least("critic", "n_filters", self.n_filters, 1)
        _check_at_least("critic", "updates", self.updates, 1)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Generator and critic loss terms and their weights; ``content="auto"`` is perceptual when the
    VGG weights can be had, else L1 with a warning."""

    content: str = AUTO
    content_weight: float = 100.0
    adversarial_weight: float = 1.0
    gradient_penalty_weight: float = 10.0
    vgg_network: str = "vgg16"
    vgg_weights: str | None = "imagenet"
    vgg_input_scaling: str = "caffe"  # "none" feeds [-1, 1] to VGG unscaled, as Sicara did

    def __post_init__(self):
        _check_choice("loss", "content", self.content, (AUTO, *CONTENT_LOSSES))
        _check_choice("loss", "vgg_network", self.vgg_network, VGG_NETWORKS)
        _check_choice("loss", "vgg_input_scaling", self.vgg_input_scaling, PerceptualLoss.INPUT_SCALINGS)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The training stream: which batches, in which order. ``sharp_dir``: sharp photos to blur on
    the fly instead of pairs (carried for the on-the-fly dataset)."""

    batch_size: int = 2
    crop_size: int | None = 256
    resize: int | None = None
    n_images: int | None = None
    steps_per_epoch: int | None = None
    seed: int = 0  # data order and crops, network initialisation, gradient-penalty draws
    sharp_dir: str | None = None

    def __post_init__(self):
        for name in ("batch_size", "crop_size", "resize", "n_images", "steps_per_epoch"):
            _check_at_least("data", name, getattr(self, name), 1)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where the files are and how long to train: free to change when a run is resumed."""

    data_dir: str = "images"
    weights_dir: str = "weights"
    log_dir: str = "logs"
    n_epochs: int = 50
    lr: float | None = None  # None: the GAN mode's recipe
    lr_decay: bool = False
    init_generator: str | None = None
    val_dir: str | None = AUTO  # DATA_DIR/test when present; "" or None: no validation
    val_images: int = 8
    bn_recalibration_batches: int = 20
    workers: int = 2
    progress: bool = True

    def __post_init__(self):
        _check_at_least("run", "n_epochs", self.n_epochs, 1)
        for name in ("val_images", "bn_recalibration_batches", "workers"):
            _check_at_least("run", name, getattr(self, name), 0)


SECTIONS = {
    "generator": GeneratorConfig,
    "critic": CriticConfig,
    "loss": LossConfig,
    "data": DataConfig,
    "run": RunConfig,
}
# Flat names (scripts/train.py flags) that differ from section.field; the rest are field names.
FLAT_NAMES = {
    "critic": ("critic", "architecture"),
    "critic_filters": ("critic", "n_filters"),
    "critic_updates": ("critic", "updates"),
    "content_loss": ("loss", "content"),
}
_GENERATOR_VARIANT = ("norm", "output_mode", "upsampling")


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
        """A config from flat names: ``n_epochs=2, critic_filters=8, norm="none", ...``.

        ``preset`` picks norm, output mode and upsampling; ``norm``/``output_mode``/``upsampling``
        that are not None override it, as ``scripts/train.py --preset`` does.
        """
        _check_choice("generator", "preset", preset, tuple(GENERATOR_PRESETS))
        variant = {k: flags.pop(k) for k in _GENERATOR_VARIANT if k in flags}
        sections = {name: {} for name in SECTIONS}
        sections["generator"].update(GENERATOR_PRESETS[preset])
        sections["generator"].update({k: v for k, v in variant.items() if v is not None})
        for flat, value in flags.items():
            section, field = FLAT_NAMES.get(flat) or _section_of(flat)
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


def _section_of(flat):
    for name, section in SECTIONS.items():
        if flat in {f.name for f in dataclasses.fields(section)}:
            return name, flat
    raise DeblurGANError(f"{flat}: not a training option", parameter=flat)


_FLAT_FIELDS = {"preset", *FLAT_NAMES} | {
    f.name for section in SECTIONS.values() for f in dataclasses.fields(section)
}


def resumed_config(current, saved, source):
    """The config a resumed run continues with: ``saved`` apart from ``current``'s run part.

    Every other field must match; one left at ``"auto"`` or None in ``current`` takes the saved
    value (the saved run resolved it). ``source`` (the options file) is named in the error.
    """
    differing = []
    for name in SECTIONS:
        if name == "run":
            continue
        now, then = getattr(current, name), getattr(saved, name)
        for field in dataclasses.fields(now):
            value, saved_value = getattr(now, field.name), getattr(then, field.name)
            if value != saved_value and value not in (AUTO, None):
                differing.append(f"{name}.{field.name}={saved_value!r} (now {value!r})")
    if differing:
        raise DeblurGANError(
            f"{source}: the run was started with {'; '.join(differing)}; resume with the same "
            "options, or start a new run in another --weights_dir"
        )
    return dataclasses.replace(saved, run=current.run)
