"""DeblurGAN (Kupyn et al., CVPR 2018) in Keras 3: blind motion deblurring with a conditional GAN.

Importing the package registers every custom Keras object, so ``keras.models.load_model`` opens
deblurgan files without ``custom_objects``.
"""

import os

# TensorFlow's C++ start-up chatter (CPU features, missing CUDA) hides our own messages; a user's
# own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from deblurgan import losses  # noqa: E402
from deblurgan.checkpoints import export_keras, load_critic, load_generator, save_model  # noqa: E402
from deblurgan.errors import DeblurGANError  # noqa: E402
from deblurgan.io import (  # noqa: E402
    deprocess_image,
    list_images,
    preprocess_image,
    read_image,
    write_image,
)
from deblurgan.layer_utils import GlobalSkip, ReflectionPadding2D  # noqa: E402
from deblurgan.losses import PerceptualLoss, perceptual_loss, wasserstein_loss  # noqa: E402
from deblurgan.model import (  # noqa: E402
    discriminator_model,
    generator_containing_discriminator_multiple_outputs,
    generator_model,
    patchgan_critic_model,
)

__version__ = "0.1.0"

__all__ = [
    "DeblurGANError",
    "PerceptualLoss",
    "GlobalSkip",
    "ReflectionPadding2D",
    "deprocess_image",
    "discriminator_model",
    "export_keras",
    "generator_containing_discriminator_multiple_outputs",
    "generator_model",
    "list_images",
    "load_critic",
    "losses",
    "load_generator",
    "patchgan_critic_model",
    "perceptual_loss",
    "preprocess_image",
    "read_image",
    "save_model",
    "wasserstein_loss",
    "write_image",
]
