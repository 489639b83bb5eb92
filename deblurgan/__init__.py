"""DeblurGAN (Kupyn et al., CVPR 2018) in Keras 3: blind motion deblurring with a conditional GAN.

Importing the package registers every custom Keras object, so ``keras.models.load_model`` opens
deblurgan files without ``custom_objects``.
"""

from deblurgan.interrupts import interrupts_deferred
from deblurgan.quiet import import_tensorflow_quietly

# Loading takes seconds (TensorFlow): a Ctrl-C or SIGTERM then is held until it ends, because one
# that lands in a library's garbage-collection callback is swallowed by Python, and the stop lost.
with interrupts_deferred():
    # TensorFlow's C++ start-up chatter (CPU features, missing CUDA) hides our own messages; a user's
    # own TF_CPP_MIN_LOG_LEVEL wins (see deblurgan/quiet.py).
    import_tensorflow_quietly()
    from deblurgan import frequency, losses
    from deblurgan.blur import (
        blur_image,
        linear_motion_kernel,
        psf_from_trajectory,
        random_blur,
        random_psfs,
        trajectory,
    )
    from deblurgan.blur_dataset import make_blur_dataset
    from deblurgan.checkpoints import export_keras, load_critic, load_generator, save_model
    from deblurgan.config import TrainingConfig
    from deblurgan.datasets import PairedImageDataset, SharpPhotoDataset
    from deblurgan.errors import DeblurGANError
    from deblurgan.evaluate import evaluate_folder
    from deblurgan.gopro import organize_gopro
    from deblurgan.inference import (
        deblur_array,
        deblur_file,
        deblur_folder,
        receptive_field_radius,
    )
    from deblurgan.interpolation import average_generators, interpolate_generators
    from deblurgan.io import (
        deprocess_image,
        list_images,
        preprocess_image,
        read_image,
        write_image,
    )
    from deblurgan.layer_utils import DepthToSpace, GlobalSkip, ReflectionPadding2D, ScaledAdd
    from deblurgan.losses import PerceptualLoss, perceptual_loss, wasserstein_loss
    from deblurgan.metrics import laplacian_variance, psnr, psnr_ops, ssim, ssim_ops
    from deblurgan.model import (
        discriminator_model,
        generator_containing_discriminator_multiple_outputs,
        generator_model,
        multiscale_generator_model,
        patchgan_critic_model,
    )
    from deblurgan.pairing import pair_images
    from deblurgan.training import DeblurGANTrainer, gradient_penalty
    from deblurgan.training_loop import TrainingOptions, build_trainer, resume_training, train
    from deblurgan.utils import load_images

__version__ = "0.1.0"

__all__ = [
    "average_generators",
    "blur_image",
    "build_trainer",
    "deblur_array",
    "deblur_file",
    "deblur_folder",
    "DeblurGANError",
    "DepthToSpace",
    "DeblurGANTrainer",
    "deprocess_image",
    "discriminator_model",
    "evaluate_folder",
    "frequency",
    "export_keras",
    "generator_containing_discriminator_multiple_outputs",
    "generator_model",
    "GlobalSkip",
    "gradient_penalty",
    "interpolate_generators",
    "laplacian_variance",
    "linear_motion_kernel",
    "list_images",
    "load_critic",
    "load_generator",
    "load_images",
    "losses",
    "make_blur_dataset",
    "multiscale_generator_model",
    "organize_gopro",
    "pair_images",
    "PairedImageDataset",
    "patchgan_critic_model",
    "perceptual_loss",
    "PerceptualLoss",
    "preprocess_image",
    "psf_from_trajectory",
    "psnr",
    "psnr_ops",
    "random_blur",
    "random_psfs",
    "read_image",
    "receptive_field_radius",
    "ReflectionPadding2D",
    "resume_training",
    "save_model",
    "ScaledAdd",
    "SharpPhotoDataset",
    "ssim",
    "ssim_ops",
    "train",
    "TrainingConfig",
    "TrainingOptions",
    "trajectory",
    "wasserstein_loss",
    "write_image",
]
