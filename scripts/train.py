"""Trains a DeblurGAN generator on paired blurred/sharp images.

    python scripts/train.py --n_epochs 50 --batch_size 2 --critic_updates 5

Reads DATA_DIR/train/{A,B} (and DATA_DIR/test/{A,B} for validation), writes per-epoch checkpoints
to --weights_dir and logs (tqdm, TensorBoard, losses.csv) to --log_dir. Ctrl-C or SIGTERM saves the
state; the same command with --resume continues.
"""

import logging
import signal
import sys

import click

from deblurgan.cli import main_guard
from deblurgan.config import CRITICS, TrainingConfig
from deblurgan.losses import CONTENT_LOSSES, VGG_NETWORKS, PerceptualLoss
from deblurgan.model import GENERATOR_PRESETS, UPSAMPLINGS
from deblurgan.training import GAN_MODES
from deblurgan.training_loop import resume_training, train

G, C, L, D, R = (getattr(TrainingConfig(), name) for name in ("generator", "critic", "loss", "data", "run"))


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--data_dir", default=R.data_dir, help="Holds train/{A,B} (and test/{A,B} for validation).")
@click.option("--sharp_dir", default=D.sharp_dir, help="Sharp photos to blur on the fly (instead of pairs).")
@click.option("--weights_dir", default=R.weights_dir, help="Where checkpoints and the training state go.")
@click.option("--log_dir", default=R.log_dir, help="TensorBoard events and losses.csv.")
@click.option("--n_epochs", "--epoch_num", "n_epochs", default=R.n_epochs, type=int, help="Epochs to train.")
@click.option("--batch_size", default=D.batch_size, type=int)
@click.option("--critic_updates", default=C.updates, type=int, help="Critic steps per generator step.")
@click.option("--n_images", default=D.n_images, type=int, help="Use only the first N training pairs.")
@click.option("--crop_size", default=D.crop_size, type=int, help="Random crop taken from both images.")
@click.option("--resize", default=D.resize, type=int, help="Resize whole images to N x N instead (Sicara).")
@click.option(
    "--gan_mode",
    default=C.gan_mode,
    type=click.Choice(GAN_MODES),
    help="wgan (Sicara), wgan-gp (paper), wgan-clip, or none (content loss only).",
)
@click.option(
    "--critic",
    default=C.architecture,
    type=click.Choice(CRITICS),
    help="auto: Sicara for wgan, else PatchGAN.",
)
@click.option(
    "--content_loss",
    default=L.content,
    type=click.Choice(["auto", *CONTENT_LOSSES]),
    help="auto: perceptual if the VGG weights can be had, else l1 (with a warning).",
)
@click.option("--content_weight", default=L.content_weight, type=float)
@click.option("--adversarial_weight", default=L.adversarial_weight, type=float)
@click.option(
    "--gp_weight",
    "gradient_penalty_weight",
    default=L.gradient_penalty_weight,
    type=float,
    help="WGAN-GP lambda.",
)
@click.option("--clip_value", default=C.clip_value, type=float, help="wgan-clip weight bound.")
@click.option(
    "--vgg_network",
    default=L.vgg_network,
    type=click.Choice(VGG_NETWORKS),
    help="vgg16 block3_conv3 (Sicara) or vgg19 conv3_3 before ReLU (paper).",
)
@click.option(
    "--vgg_weights", default=L.vgg_weights, help="'imagenet' (downloaded by Keras) or a local notop .h5 file."
)
@click.option(
    "--vgg_input_scaling",
    default=L.vgg_input_scaling,
    type=click.Choice(PerceptualLoss.INPUT_SCALINGS),
    help="caffe: what the Keras VGG weights expect; none: [-1, 1] unscaled (Sicara).",
)
@click.option("--lr", default=R.lr, type=float, help="Learning rate (default: the GAN mode's recipe).")
@click.option(
    "--lr_decay/--no_lr_decay", default=R.lr_decay, help="Linear decay to zero over the second half (paper)."
)
@click.option("--seed", default=D.seed, type=int)
@click.option(
    "--preset",
    default="sicara",
    type=click.Choice(tuple(GENERATOR_PRESETS)),
    help="Generator variant; --norm/--output_mode/--upsampling override parts of it.",
)
@click.option("--norm", default=None, type=click.Choice(["batch", "instance", "none"]))
@click.option("--output_mode", default=None, type=click.Choice(["average", "clip"]))
@click.option("--upsampling", default=None, type=click.Choice(UPSAMPLINGS))
@click.option("--n_filters", default=G.n_filters, type=int)
@click.option("--n_blocks", default=G.n_blocks, type=int)
@click.option("--dropout_rate", default=G.dropout_rate, type=float)
@click.option(
    "--zero_init_output",
    is_flag=True,
    default=G.zero_init_output,
    help="Start the generator's last convolution at zero (with --output_mode clip: start from the identity).",
)
@click.option("--critic_filters", default=C.n_filters, type=int)
@click.option("--init_generator", default=R.init_generator, help="Start the generator from this .h5 file.")
@click.option("--steps_per_epoch", default=D.steps_per_epoch, type=int, help="Cap the batches per epoch.")
@click.option("--val_dir", default=R.val_dir, help="'auto' = DATA_DIR/test when present; '' = none.")
@click.option("--val_images", default=R.val_images, type=int, help="Validation pairs per epoch.")
@click.option(
    "--bn_recalibration_batches",
    default=R.bn_recalibration_batches,
    type=int,
    help="Re-estimate the generator's batch-norm statistics on N training batches before each "
    "checkpoint (precise BN; 0 = keep Keras' moving averages).",
)
@click.option("--workers", default=R.workers, type=int, help="Image-decoding threads.")
@click.option("--resume", is_flag=True, help="Continue the run in --weights_dir from its saved state.")
@click.option("--progress/--no_progress", default=R.progress, help="Show the tqdm bar.")
@main_guard
def main(resume, **flags):
    _install_signal_handlers()
    _print_progress_messages()
    config = TrainingConfig.from_flags(**flags)
    try:
        (resume_training if resume else train)(config)
    except KeyboardInterrupt as interrupt:
        sys.exit(128 + (interrupt.args[0] if interrupt.args else signal.SIGINT))


def _install_signal_handlers():
    """Ctrl-C and SIGTERM (a scheduler's warning before it preempts a job) save the position.

    Set here, not inherited: a shell starts background jobs with SIGINT ignored.
    """

    def stop(signum, frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _print_progress_messages():
    """The training loop's messages (epochs, resume, interruption) on stdout, one line each."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("deblurgan.training_loop")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


if __name__ == "__main__":
    main()
