"""Trains a DeblurGAN generator on paired blurred/sharp images.

    python scripts/train.py --n_epochs 50 --batch_size 2 --critic_updates 5

Reads DATA_DIR/train/{A,B} (and DATA_DIR/test/{A,B} for validation), writes per-epoch checkpoints
to --weights_dir and logs (tqdm, TensorBoard, losses.csv) to --log_dir. Ctrl-C saves the state;
the same command with --resume continues.
"""

import sys

import click

from deblurgan.cli import main_guard
from deblurgan.training import GAN_MODES
from deblurgan.training_loop import CONTENT_LOSSES, TrainingOptions, resume_training, train

DEFAULTS = TrainingOptions()


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--data_dir", default=DEFAULTS.data_dir, help="Holds train/{A,B} (and test/{A,B} for validation)."
)
@click.option(
    "--weights_dir", default=DEFAULTS.weights_dir, help="Where checkpoints and the training state go."
)
@click.option("--log_dir", default=DEFAULTS.log_dir, help="TensorBoard events and losses.csv.")
@click.option(
    "--n_epochs", "--epoch_num", "n_epochs", default=DEFAULTS.n_epochs, type=int, help="Epochs to train."
)
@click.option("--batch_size", default=DEFAULTS.batch_size, type=int)
@click.option(
    "--critic_updates", default=DEFAULTS.critic_updates, type=int, help="Critic steps per generator step."
)
@click.option("--n_images", default=None, type=int, help="Use only the first N training pairs.")
@click.option("--crop_size", default=DEFAULTS.crop_size, type=int, help="Random crop taken from both images.")
@click.option(
    "--resize", default=None, type=int, help="Resize whole images to N x N instead of cropping (Sicara)."
)
@click.option(
    "--gan_mode",
    default=DEFAULTS.gan_mode,
    type=click.Choice(GAN_MODES),
    help="wgan (Sicara), wgan-gp (paper), wgan-clip, or none (content loss only).",
)
@click.option(
    "--critic",
    default=DEFAULTS.critic,
    type=click.Choice(["auto", "sicara", "patchgan"]),
    help="auto: Sicara critic for wgan, PatchGAN otherwise.",
)
@click.option(
    "--content_loss",
    default=DEFAULTS.content_loss,
    type=click.Choice(CONTENT_LOSSES),
    help="auto: perceptual if the VGG weights can be had, else l1 (with a warning).",
)
@click.option("--content_weight", default=DEFAULTS.content_weight, type=float)
@click.option("--adversarial_weight", default=DEFAULTS.adversarial_weight, type=float)
@click.option(
    "--gp_weight",
    "gradient_penalty_weight",
    default=DEFAULTS.gradient_penalty_weight,
    type=float,
    help="WGAN-GP lambda.",
)
@click.option("--clip_value", default=DEFAULTS.clip_value, type=float, help="wgan-clip weight bound.")
@click.option(
    "--vgg_network",
    default=DEFAULTS.vgg_network,
    type=click.Choice(["vgg16", "vgg19"]),
    help="vgg16 block3_conv3 (Sicara) or vgg19 conv3_3 before ReLU (paper).",
)
@click.option(
    "--vgg_weights",
    default=DEFAULTS.vgg_weights,
    help="'imagenet' (downloaded and cached by Keras) or a local notop .h5 file.",
)
@click.option("--lr", default=None, type=float, help="Learning rate (default: the GAN mode's recipe).")
@click.option(
    "--lr_decay/--no_lr_decay",
    default=DEFAULTS.lr_decay,
    help="Linear decay to zero over the second half of training (paper).",
)
@click.option("--seed", default=DEFAULTS.seed, type=int)
@click.option(
    "--preset",
    default=DEFAULTS.preset,
    type=click.Choice(["sicara", "paper"]),
    help="Generator variant; --norm/--output_mode/--upsampling override parts of it.",
)
@click.option("--norm", default=None, type=click.Choice(["batch", "instance", "none"]))
@click.option("--output_mode", default=None, type=click.Choice(["average", "clip"]))
@click.option("--upsampling", default=None, type=click.Choice(["nearest", "transpose"]))
@click.option("--n_filters", default=DEFAULTS.n_filters, type=int)
@click.option("--n_blocks", default=DEFAULTS.n_blocks, type=int)
@click.option("--dropout_rate", default=DEFAULTS.dropout_rate, type=float)
@click.option(
    "--zero_init_output",
    is_flag=True,
    help="Start the generator's last convolution at zero (with --output_mode clip: start from the identity).",
)
@click.option("--critic_filters", default=DEFAULTS.critic_filters, type=int)
@click.option(
    "--init_generator", default=None, help="Start the generator from this .h5 (e.g. a pre-trained one)."
)
@click.option("--steps_per_epoch", default=None, type=int, help="Cap the batches per epoch.")
@click.option("--val_dir", default=DEFAULTS.val_dir, help="'auto' = DATA_DIR/test when present; '' = none.")
@click.option("--val_images", default=DEFAULTS.val_images, type=int, help="Validation pairs per epoch.")
@click.option(
    "--bn_recalibration_batches",
    default=DEFAULTS.bn_recalibration_batches,
    type=int,
    help="Re-estimate the generator's batch-norm statistics on N training batches before each "
    "checkpoint (precise BN; 0 = keep Keras' moving averages).",
)
@click.option("--workers", default=DEFAULTS.workers, type=int, help="Image-decoding threads.")
@click.option("--resume", is_flag=True, help="Continue the run in --weights_dir from its saved state.")
@click.option("--progress/--no_progress", default=True, help="Show the tqdm bar.")
@main_guard
def main(resume, **kwargs):
    options = TrainingOptions(**kwargs)
    try:
        (resume_training if resume else train)(options)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
