"""deblurgan.config: nested frozen training configs, the resume rule, and build_trainer."""

import dataclasses
import inspect

import pytest

from deblurgan.cli import flag_message
from deblurgan.config import (
    FLAT_NAMES,
    SECTIONS,
    GeneratorConfig,
    TrainingConfig,
    _section_of,
    resumed_config,
)
from deblurgan.errors import DeblurGANError
from deblurgan.model import generator_model
from deblurgan.multiscale_model import multiscale_generator_model
from deblurgan.training_loop import build_trainer, resolve


def test_the_generator_config_is_its_architecture_and_the_builders_keyword_arguments():
    fields = {f.name: f.default for f in dataclasses.fields(GeneratorConfig)}
    assert fields.pop("architecture") == "resnet"
    assert fields.pop("n_blocks") is None  # each architecture's default: 9, or 19 per scale
    for builder in (generator_model, multiscale_generator_model):
        parameters = inspect.signature(builder).parameters
        assert {
            name: p.default for name, p in parameters.items() if name != "n_blocks"
        }.items() <= fields.items()
    assert set(fields) <= set(inspect.signature(generator_model).parameters) | {"n_scales", "kernel_size"}


def test_resolve_gives_each_architecture_its_blocks_and_content_loss_and_checks_sizes():
    resnet = resolve(TrainingConfig.from_flags(content_loss="l1"))
    multiscale = resolve(TrainingConfig.from_flags(architecture="multiscale", vgg_weights=None))
    assert (resnet.generator.n_blocks, multiscale.generator.n_blocks) == (9, 19)
    assert multiscale.loss.content == "mse"  # auto: the paper's loss, even where VGG could be had
    given = resolve(TrainingConfig.from_flags(architecture="multiscale", content_loss="l1", n_blocks=2))
    assert (given.loss.content, given.generator.n_blocks) == ("l1", 2)
    with pytest.raises(
        DeblurGANError, match="data.crop_size=30: the multiscale generator needs a multiple of 4"
    ):
        resolve(TrainingConfig.from_flags(architecture="multiscale", crop_size=30))
    # the resnet generator's two stride-2 convolutions: a 30-pixel crop would come back 32 wide
    for flags in (dict(crop_size=30), dict(resize=30, crop_size=None)):
        name = next(iter(flags))
        message = f"data.{name}=30: the resnet generator halves it twice"
        with pytest.raises(DeblurGANError, match=message) as e:
            resolve(TrainingConfig.from_flags(content_loss="l1", **flags))
        assert e.value.parameter == f"data.{name}"
    assert resolve(TrainingConfig.from_flags(content_loss="l1", crop_size=28)).data.crop_size == 28
    # a crop too small for the residual blocks' padding: a TensorFlow traceback after the start
    for flags, least in ((dict(crop_size=4), 8), (dict(architecture="multiscale", crop_size=4), 8)):
        with pytest.raises(DeblurGANError, match=f"data.crop_size=4: at least {least} for this generator"):
            resolve(TrainingConfig.from_flags(content_loss="l1", **flags))
    assert resolve(TrainingConfig.from_flags(content_loss="l1", crop_size=8)).data.crop_size == 8
    with pytest.raises(DeblurGANError, match="generator.n_scales=4: at most 3"):
        resolve(TrainingConfig.from_flags(architecture="multiscale", n_scales=4))
    # the architecture is part of the generator: a resume must match it
    with pytest.raises(DeblurGANError, match="generator.architecture='multiscale' \\(now 'resnet'\\)"):
        resumed_config(TrainingConfig.from_flags(), multiscale, "options.json")


def test_configs_are_frozen_and_round_trip_through_json_types():
    config = TrainingConfig.from_flags(n_epochs=3, critic_filters=8, preset="paper")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.run.n_epochs = 4
    payload = config.to_dict()
    payload["generator"]["input_shape"] = list(payload["generator"]["input_shape"])  # as JSON reads it
    assert TrainingConfig.from_dict(payload) == config


def test_a_resume_may_change_the_run_part_only():
    saved = resolve(TrainingConfig.from_flags(content_loss="l1", n_epochs=2))
    current = TrainingConfig.from_flags(n_epochs=5, weights_dir="elsewhere")  # critic, content: auto
    assert resumed_config(current, saved, "options.json") == dataclasses.replace(saved, run=current.run)
    for flags in (dict(n_blocks=3), dict(critic_updates=2), dict(vgg_input_scaling="none"), dict(seed=1)):
        with pytest.raises(DeblurGANError, match="options.json: the run was started with"):
            resumed_config(TrainingConfig.from_flags(**flags), saved, "options.json")


def test_a_resume_refused_for_a_presets_fields_names_the_preset():
    """It named --norm, --output_mode and --upsampling, where the user had typed --preset paper."""
    saved = resolve(TrainingConfig.from_flags(preset="paper", content_loss="l1"))
    with pytest.raises(DeblurGANError) as error:
        resumed_config(TrainingConfig.from_flags(), saved, "options.json")
    shown = flag_message(error.value)
    assert shown.startswith("options.json: the run was started with --norm 'instance' (now 'batch'); ")
    assert "--upsampling 'transpose' (now 'nearest') (what --preset paper sets); resume with" in shown


def test_resolve_returns_a_new_config_and_keeps_the_callers():
    config = TrainingConfig.from_flags(gan_mode="wgan-gp", content_loss="l1")
    resolved = resolve(config)
    assert (config.critic.architecture, resolved.critic.architecture) == ("auto", "patchgan")


def test_bad_values_name_the_parameter_and_the_script_shows_the_flag():
    with pytest.raises(DeblurGANError) as error:
        TrainingConfig.from_flags(critic_updates=0)
    assert str(error.value) == "critic.updates=0: must be at least 1"
    assert flag_message(error.value) == "--critic_updates 0: must be at least 1"
    with pytest.raises(DeblurGANError, match="data.crop_size=None: the Sicara critic needs a fixed"):
        resolve(TrainingConfig.from_flags(crop_size=None, content_loss="l1"))
    for flags, message in (
        (dict(batch_size="2"), "data.batch_size='2': must be int"),  # a notebook's slip, not a TypeError
        (dict(content_weight="a"), "loss.content_weight='a': must be float or int"),
        (dict(lr=-1.0), "run.lr=-1.0: must be above 0"),
        (dict(critic_lr=0.0), "run.critic_lr=0.0: must be above 0"),
        (dict(seed=-1), "data.seed=-1: must be at least 0"),  # tracebacks in NumPy and Keras before
        (dict(dropout_rate=1.5), "generator.dropout_rate=1.5: must be at most 1"),  # Keras' traceback
        (dict(content_weight=-1.0), "loss.content_weight=-1.0: must be at least 0"),  # trained before
        (dict(gp_weight=-1.0), "loss.gradient_penalty_weight=-1.0: must be at least 0"),
        (dict(clip_value=-1.0), "critic.clip_value=-1.0: must be above 0"),
        (dict(seed=2**32), "data.seed=4294967296: must be at most 4294967295"),
    ):
        with pytest.raises(DeblurGANError) as error:
            TrainingConfig.from_flags(**flags)
        assert str(error.value) == message
    assert TrainingConfig.from_flags(content_weight=50, dropout_rate=0).loss.content_weight == 50  # ints


def test_from_flags_takes_every_spelling_of_the_script():
    """README: ``from_flags`` takes the flag names, --gp_weight and --epoch_num included."""
    config = TrainingConfig.from_flags(gp_weight=3.0, epoch_num=4)
    assert (config.loss.gradient_penalty_weight, config.run.n_epochs) == (3.0, 4)
    assert config == TrainingConfig.from_flags(gradient_penalty_weight=3.0, n_epochs=4)


def test_the_flat_names_of_earlier_versions_read_their_fields():
    """Old code reading ``options.n_epochs`` of a TrainingOptions (now a TrainingConfig) still works."""
    from deblurgan import TrainingOptions

    options = TrainingOptions(n_epochs=3, critic_filters=8, gp_weight=2.0, lr=1e-3)
    assert (options.n_epochs, options.critic_filters, options.gp_weight, options.lr) == (3, 8, 2.0, 1e-3)
    assert (options.gradient_penalty_weight, options.critic_updates) == (2.0, options.critic.updates)
    assert not hasattr(options, "no_such_option") and not hasattr(options, "_private")
    assert dataclasses.replace(options) == options  # copying is untouched


def test_build_trainer_makes_the_auto_choices_as_a_run_does():
    tiny = dict(n_filters=4, n_blocks=1, critic_filters=4, crop_size=32)
    # gan_mode wgan: the Sicara critic, not the PatchGAN that a bare "auto" would fall through to
    trainer = build_trainer(TrainingConfig.from_flags(content_loss="l1", **tiny))
    assert trainer.critic.name == "discriminator" and trainer.gan_mode == "wgan"
    assert build_trainer(TrainingConfig.from_flags(gan_mode="wgan-gp", **tiny)).critic.name == "critic"
    # --critic_layers 2: DeblurGAN's 70x70 PatchGAN, where the default has a fourth stride-2 convolution
    critic = build_trainer(TrainingConfig.from_flags(gan_mode="wgan-gp", critic_layers=2, **tiny)).critic
    assert [layer.strides[0] for layer in critic.layers if type(layer).__name__ == "Conv2D"] == [
        2,
        2,
        2,
        1,
        1,
    ]
    auto = build_trainer(TrainingConfig.from_flags(vgg_weights=None, gan_mode="none", **tiny))
    assert type(auto.objective.content_loss).__name__ == "PerceptualLoss"  # content "auto"
    resolved = resolve(TrainingConfig.from_flags(content_loss="l1", **tiny))
    assert resolve(resolved) == resolved


def test_vgg_input_scaling_reaches_the_perceptual_loss():
    flags = dict(n_filters=4, n_blocks=1, crop_size=32, gan_mode="none", content_loss="perceptual")
    trainer = build_trainer(TrainingConfig.from_flags(vgg_weights=None, vgg_input_scaling="none", **flags))
    assert trainer.objective.content_loss.input_scaling == "none"


def test_every_option_name_reaches_its_own_field():
    """Each config field with a help text has one flat (command-line) name, no two fields share
    one, and ``from_flags`` routes a value given under that name to that field alone (a field name
    in two sections, such as the critic's and the learning rate's ``warmup_steps``, must not be
    captured by the first section that has it)."""
    flat_names = {place: flat for flat, place in FLAT_NAMES.items()}
    names = {}
    for section, config_class in SECTIONS.items():
        for field in dataclasses.fields(config_class):
            if "help" in field.metadata:
                names.setdefault(flat_names.get((section, field.name), field.name), []).append(
                    (section, field.name)
                )
    assert {name: places for name, places in names.items() if len(places) > 1} == {}
    routed = {name: FLAT_NAMES.get(name) or _section_of(name) for name in names}  # as from_flags
    assert routed == {name: places[0] for name, places in names.items()}
    assert names["warmup_steps"] == [("run", "warmup_steps")]
    assert names["critic_warmup_steps"] == [("critic", "warmup_steps")]
    config = TrainingConfig.from_flags(warmup_steps=7, critic_warmup_steps=3)
    assert (config.run.warmup_steps, config.critic.warmup_steps) == (7, 3)
