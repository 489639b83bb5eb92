"""The Frechet Inception Distance (Heusel et al., NeurIPS 2017) with Keras' InceptionV3.

Features are InceptionV3's 2048 global-average-pooled activations (``include_top=False,
pooling="avg"``) of images resized to 299x299 (bilinear) and scaled to [-1, 1], Inception's own
input range. FID is :func:`deblurgan.metrics.frechet_distance` between the features' means and
covariances.

Weights are ``"imagenet"`` (Keras' "notop" file, downloaded once into ``~/.keras/models/`` or
``$KERAS_HOME/models/``), the path of that file saved locally (for offline machines), or ``None``
(random initialisation, for tests). Keras' ImageNet InceptionV3 is not the exact TensorFlow graph
(``pt_inception-2015-12-05``) that TTUR and pytorch-fid use, so absolute values differ slightly from
published FIDs; comparisons made with this module are consistent with each other. FID is biased
upwards for small sets; with fewer images than features (2048) the covariances are singular and
:func:`frechet_distance` regularises them as the reference code does.
"""

import logging
from pathlib import Path

import h5py
import keras
import numpy as np
from tqdm import tqdm

from deblurgan.errors import DeblurGANError
from deblurgan.io import preprocess_image
from deblurgan.metrics import frechet_distance
from deblurgan.pretrained import cached_weights_path, first_line

log = logging.getLogger(__name__)

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/{INCEPTION_FILE}"
INCEPTION_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"  # as keras.applications.InceptionV3 checks it
INCEPTION_SIZE = 299


def inception_weights_path():
    """The local path of Keras' InceptionV3 ImageNet "notop" weights, downloading them if needed.

    Raises:
        DeblurGANError: the file is not cached and cannot be downloaded; the message names the
            file, its URL and where to put a copy.
    """
    return cached_weights_path(
        INCEPTION_FILE, INCEPTION_URL, INCEPTION_MD5, "InceptionV3 ImageNet weights", "inception_weights"
    )


def inception_feature_extractor(weights="imagenet"):
    """InceptionV3 without its classifier: ``(batch, 299, 299, 3)`` in [-1, 1] -> ``(batch, 2048)``.

    Args:
        weights: ``"imagenet"``, the path of the notop ``.h5`` file, or ``None`` (random, for tests).
    """
    if weights is None:
        path = None
    elif isinstance(weights, str) and weights == "imagenet":
        path = inception_weights_path()
    else:
        path = Path(weights).expanduser()
        if not path.is_file() or not h5py.is_hdf5(path):
            raise DeblurGANError(
                f"{path}: no such InceptionV3 weights file (or not HDF5); pass {INCEPTION_FILE}, "
                f"or 'imagenet' to download it"
            )
        path = str(path)
    shape = (INCEPTION_SIZE, INCEPTION_SIZE, 3)
    try:
        model = keras.applications.InceptionV3(
            include_top=False, weights=path, input_shape=shape, pooling="avg"
        )
    except Exception as error:  # Keras raises many types for a foreign or damaged file
        raise DeblurGANError(
            f"{path}: cannot load it as InceptionV3 notop weights ({first_line(error)}); "
            f"pass {INCEPTION_FILE}"
        ) from None
    model.trainable = False
    return model


def image_features(images, extractor, batch_size=16, progress=False):
    """Features ``(n, d)`` (float64) of ``images``: each ``(h, w, 3)`` uint8 or float in [0, 1].

    Images go through ``deblurgan.io.preprocess_image`` (to [-1, 1]) and, when the extractor has a
    fixed input size, a bilinear resize to it; outputs with spatial axes are flattened.
    """
    height, width = extractor.input_shape[1:3]
    features, batch = [], []

    def flush():
        x = np.stack(batch)
        if height is not None and width is not None and x.shape[1:3] != (height, width):
            x = keras.ops.image.resize(x, (height, width), interpolation="bilinear", antialias=False)
        out = keras.ops.convert_to_numpy(extractor(x, training=False))
        features.append(out.reshape(len(batch), -1).astype(np.float64))
        batch.clear()

    for image in tqdm(images, desc="FID features", unit="image", disable=not progress):
        image = np.asarray(image)
        if batch and image.shape != batch[0].shape:
            flush()
        batch.append(preprocess_image(image))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return np.concatenate(features) if features else np.zeros((0, 0))


def feature_statistics(features):
    """Mean ``(d,)`` and covariance ``(d, d)`` (unbiased, as ``np.cov``) of features ``(n, d)``."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_from_features(features_a, features_b):
    """FID between two feature sets ``(n, d)``; each needs at least 2 rows."""
    for name, features in (("images_a", features_a), ("images_b", features_b)):
        if len(features) < 2:
            raise DeblurGANError(
                f"{name}: FID needs at least 2 images per set (a covariance), got {len(features)}; "
                "evaluate on more images"
            )
    if min(len(features_a), len(features_b)) < features_a.shape[1]:
        log.info("FID on fewer images than features (%d): the value is biased upwards", features_a.shape[1])
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def fid(images_a, images_b, feature_extractor=None, batch_size=16, progress=False):
    """FID between two image sets; see :func:`deblurgan.metrics.fid`."""
    images_a, images_b = list(images_a), list(images_b)
    for name, images in (("images_a", images_a), ("images_b", images_b)):
        if len(images) < 2:
            raise DeblurGANError(
                f"{name}: FID needs at least 2 images per set, got {len(images)}; pass more images"
            )
    extractor = feature_extractor if feature_extractor is not None else inception_feature_extractor()
    features_a = image_features(images_a, extractor, batch_size, progress)
    features_b = image_features(images_b, extractor, batch_size, progress)
    return fid_from_features(features_a, features_b)
