"""The DeblurGAN networks: the generator, the Sicara critic, the PatchGAN critic, and the
generator+critic model the Sicara training loop uses.

The defaults reproduce the Sicara Keras port layer for layer (11,399,171 generator parameters,
3,098,370 critic parameters); the DeblurGAN paper's choices are one keyword away, or bundled by
``preset="paper"``.
"""

import random

import keras
from keras import layers

from deblurgan.errors import DeblurGANError
from deblurgan.layer_utils import (
    DepthToSpace,
    GlobalSkip,
    ReflectionPadding2D,
    normalization,
    res_block,
    rrdb_block,
)
from deblurgan.multiscale_model import multiscale_generator_model  # noqa: F401  (re-exported)

# Keyword bundles for generator_model(preset=...). "sicara" is the default graph.
GENERATOR_PRESETS = {
    "sicara": dict(norm="batch", output_mode="average", upsampling="nearest"),
    "paper": dict(norm="instance", output_mode="clip", upsampling="transpose"),
}
UPSAMPLINGS = ("nearest", "transpose", "subpixel")
BLOCKS = ("resnet", "rrdb")


def generator_model(
    input_shape=(None, None, 3),
    n_filters=64,
    n_blocks=9,
    norm="batch",
    output_mode="average",
    upsampling="nearest",
    dropout_rate=0.5,
    preset=None,
    zero_init_output=False,
    block="resnet",
    rrdb_growth=32,
    residual_scale=1.0,
    zero_init_blocks=False,
    name="generator",
):
    """The DeblurGAN generator: a fully convolutional ResNet with a global skip connection.

    Height and width may be anything divisible by 4 (two stride-2 downsamplings);
    ``deblurgan.inference`` pads arbitrary photos to that. Inputs and outputs are in [-1, 1].

    Args:
        input_shape: ``(height, width, 3)``; ``None`` for any size.
        n_filters: filters of the first convolution (64); doubled at each downsampling.
        n_blocks: residual blocks at ``4 * n_filters`` channels (9).
        norm: ``"batch"`` (Sicara), ``"instance"`` (paper) or ``"none"``.
        output_mode: ``"average"`` = ``(input + tanh) / 2`` (Sicara) or ``"clip"`` =
            ``clip(input + tanh, -1, 1)`` (paper).
        upsampling: ``"nearest"`` = UpSampling2D then Conv 3x3 (Sicara), ``"transpose"`` =
            Conv2DTranspose 3x3 stride 2 (paper) or ``"subpixel"`` = Conv 3x3 to 4x the stage's
            channels then :class:`~deblurgan.layer_utils.DepthToSpace` by 2 (Shi et al. 2016,
            SRGAN); each followed by the stage's norm and ReLU.
        dropout_rate: dropout inside each residual block (0.5 in both; 0 removes the layer;
            ``block="resnet"`` only).
        preset: ``"sicara"`` or ``"paper"``: sets norm, output_mode and upsampling together,
            overriding those three arguments.
        zero_init_output: start the last convolution at zero, so that with ``output_mode="clip"``
            the untrained generator returns its input and training starts from the identity
            (with random init it first has to unlearn a large random residual).
        block: the residual trunk: ``"resnet"`` = ``n_blocks`` Sicara residual blocks, or
            ``"rrdb"`` = ``n_blocks`` residual-in-residual dense blocks (ESRGAN, no norm inside).
        rrdb_growth: ``block="rrdb"``: channels of each dense-block convolution but the last (32).
        residual_scale: ``block="resnet"``: each block returns ``input + residual_scale * branch``
            (EDSR uses 0.1); 1 keeps the plain addition. RRDBs use ESRGAN's fixed 0.2.
        zero_init_blocks: ``block="resnet"``: start the last convolution of every residual block
            at zero, so every block (and the trunk) starts as the identity.
        name: model name; ``"generator"`` lets the loaders tell generators from critics.

    Example:
        >>> g = generator_model()
        >>> g.count_params()
        11399171
    """
    if preset is not None:
        if preset not in GENERATOR_PRESETS:
            raise DeblurGANError(f"preset={preset!r}: choose one of {', '.join(GENERATOR_PRESETS)}", "preset")
        norm = GENERATOR_PRESETS[preset]["norm"]
        output_mode = GENERATOR_PRESETS[preset]["output_mode"]
        upsampling = GENERATOR_PRESETS[preset]["upsampling"]
    _check_generator_options(upsampling, block, rrdb_growth, residual_scale, zero_init_blocks)

    inputs = keras.Input(shape=input_shape, name="blurred")
    x = ReflectionPadding2D(3, name="head_pad")(inputs)
    x = layers.Conv2D(n_filters, 7, name="head_conv")(x)
    x = normalization(norm, "head_norm")(x)
    x = layers.Activation("relu", name="head_relu")(x)

    for i, mult in enumerate((2, 4), start=1):
        x = layers.Conv2D(n_filters * mult, 3, strides=2, padding="same", name=f"down_{i}_conv")(x)
        x = normalization(norm, f"down_{i}_norm")(x)
        x = layers.Activation("relu", name=f"down_{i}_relu")(x)

    # Seeded from Python's generator, which keras.utils.set_random_seed also seeds.
    dropout_seed = random.randrange(2**30)
    for i in range(1, n_blocks + 1):
        if block == "rrdb":
            x = rrdb_block(x, rrdb_growth, f"rrdb_{i}")
            continue
        x = res_block(
            x,
            n_filters * 4,
            f"res_block_{i}",
            norm=norm,
            dropout_rate=dropout_rate,
            dropout_seed=dropout_seed + i,
            residual_scale=residual_scale,
            zero_init=zero_init_blocks,
        )

    for i, mult in enumerate((2, 1), start=1):
        x = _upsample(x, n_filters * mult, upsampling, f"up_{i}")
        x = normalization(norm, f"up_{i}_norm")(x)
        x = layers.Activation("relu", name=f"up_{i}_relu")(x)

    x = ReflectionPadding2D(3, name="tail_pad")(x)
    tail_init = "zeros" if zero_init_output else "glorot_uniform"
    x = layers.Conv2D(3, 7, kernel_initializer=tail_init, name="tail_conv")(x)
    residual = layers.Activation("tanh", name="tail_tanh")(x)
    outputs = GlobalSkip(output_mode, name="global_skip")([inputs, residual])
    return keras.Model(inputs, outputs, name=name)


def _upsample(x, filters, upsampling, name):
    """Doubles height and width and maps to ``filters`` channels, as ``upsampling`` says."""
    if upsampling == "nearest":
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(x)
        return layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    if upsampling == "transpose":
        return layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"{name}_conv")(x)
    x = layers.Conv2D(4 * filters, 3, padding="same", name=f"{name}_conv")(x)
    return DepthToSpace(2, name=f"{name}_shuffle")(x)


def _check_generator_options(upsampling, block, rrdb_growth, residual_scale, zero_init_blocks):
    if upsampling not in UPSAMPLINGS:
        raise DeblurGANError(
            f"upsampling={upsampling!r}: choose one of {', '.join(UPSAMPLINGS)}", parameter="upsampling"
        )
    if block not in BLOCKS:
        raise DeblurGANError(f"block={block!r}: choose one of {', '.join(BLOCKS)}", parameter="block")
    if block == "rrdb" and (not isinstance(rrdb_growth, int) or rrdb_growth < 1):
        message = f"rrdb_growth={rrdb_growth!r}: must be an int of at least 1"
        raise DeblurGANError(message, parameter="rrdb_growth")
    if block == "rrdb" and residual_scale != 1.0:
        raise DeblurGANError(
            f"residual_scale={residual_scale!r}: applies to resnet blocks only; RRDBs use ESRGAN's fixed 0.2",
            parameter="residual_scale",
        )
    if block == "rrdb" and zero_init_blocks:
        raise DeblurGANError(
            "zero_init_blocks=True: applies to resnet blocks only; an RRDB's dense chain carries its "
            "input, so no zeroed convolution makes it the identity",
            parameter="zero_init_blocks",
        )


def discriminator_model(
    input_shape=(256, 256, 3), n_filters=64, n_layers=3, norm="batch", name="discriminator"
):
    """The Sicara critic (named as in the Sicara port); the paper's is :func:`patchgan_critic_model`.

    Conv 4x4/2 with 64, 64, 128, 256 filters (norm from the second on, LeakyReLU 0.2), Conv 4x4/1
    to 512 with norm and LeakyReLU, Conv 4x4/1 to 1, Flatten, Dense 1024 tanh, Dense 1 sigmoid. Its
    Dense layers fix the input size (256x256 by default).

    Example:
        >>> discriminator_model().count_params()
        3098370
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(n_filters, 4, strides=2, padding="same", name="conv_1")(inputs)
    x = layers.LeakyReLU(0.2, name="lrelu_1")(x)
    for n in range(n_layers):
        i = n + 2
        x = layers.Conv2D(n_filters * min(2**n, 8), 4, strides=2, padding="same", name=f"conv_{i}")(x)
        x = normalization(norm, f"norm_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu_{i}")(x)
    i = n_layers + 2
    x = layers.Conv2D(n_filters * min(2**n_layers, 8), 4, padding="same", name=f"conv_{i}")(x)
    x = normalization(norm, f"norm_{i}")(x)
    x = layers.LeakyReLU(0.2, name=f"lrelu_{i}")(x)
    x = layers.Conv2D(1, 4, padding="same", name="conv_score")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, activation="tanh", name="dense_1")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="dense_score")(x)
    return keras.Model(inputs, outputs, name=name)


def patchgan_critic_model(
    input_shape=(None, None, 3), n_filters=64, n_layers=3, norm="instance", name="critic"
):
    """The paper's PatchGAN critic: one unbounded score per overlapping patch, no sigmoid.

    Conv 4x4/2 to ``n_filters`` with LeakyReLU 0.2 and no norm, then ``n_layers`` Conv 4x4/2
    (filters doubling, capped at 8x) with norm and LeakyReLU, a Conv 4x4/1 with norm and
    LeakyReLU, and a Conv 4x4/1 to one channel. The default (``n_layers=3``, three stride-2
    convolutions after the first) is C64-C128-C256-C512-C512-1 with 142x142-pixel patches and a
    16x16 score map for a 256x256 input; ``n_layers=2`` is pix2pix's 70x70 PatchGAN
    (``NLayerDiscriminator(n_layers=3)`` there, DeblurGAN's ``basic`` critic). Instance norm
    (not batch norm) keeps the critic's output for one sample independent of the others in the
    batch, which the per-sample gradient penalty assumes.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(n_filters, 4, strides=2, padding="same", name="conv_1")(inputs)
    x = layers.LeakyReLU(0.2, name="lrelu_1")(x)
    for n in range(1, n_layers + 1):
        i = n + 1
        x = layers.Conv2D(n_filters * min(2**n, 8), 4, strides=2, padding="same", name=f"conv_{i}")(x)
        x = normalization(norm, f"norm_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu_{i}")(x)
    i = n_layers + 2
    x = layers.Conv2D(n_filters * min(2 ** (n_layers + 1), 8), 4, padding="same", name=f"conv_{i}")(x)
    x = normalization(norm, f"norm_{i}")(x)
    x = layers.LeakyReLU(0.2, name=f"lrelu_{i}")(x)
    outputs = layers.Conv2D(1, 4, padding="same", name="conv_score")(x)
    return keras.Model(inputs, outputs, name=name)


def generator_containing_discriminator_multiple_outputs(generator, discriminator):
    """blurred -> ``[generator(blurred), discriminator(generator(blurred))]`` (the Sicara API).

    The input takes the critic's fixed size when it has one (the Sicara critic), else any size.
    """
    critic_shape = discriminator.input_shape[1:]
    shape = critic_shape if None not in critic_shape else generator.input_shape[1:]
    inputs = keras.Input(shape=shape, name="blurred")
    restored = generator(inputs)
    score = discriminator(restored)
    return keras.Model(inputs, [restored, score], name="generator_with_critic")
