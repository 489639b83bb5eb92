"""Shared fixtures for the inference, deblur-script and test-script tests: a tiny random generator."""

import keras
import numpy as np

from deblurgan.model import generator_model


def tiny_generator(seed=0, **kwargs):
    """``generator_model(n_filters=8, n_blocks=1)`` with random weights *and* batch-norm statistics.

    Keras initialises moving means to 0 and variances to 1, which would make batch norm nearly the
    identity; random statistics make equality tests between code paths meaningful.
    """
    keras.utils.set_random_seed(seed)
    generator = generator_model(n_filters=8, n_blocks=1, **kwargs)
    rng = np.random.default_rng(seed)
    for layer in generator.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0.0, 0.3, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels))
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            layer.beta.assign(rng.normal(0.0, 0.3, channels))
    return generator


def random_photo(height, width, seed=0):
    """A smooth random RGB photo in [0, 1] (float32)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (height // 8 + 2, width // 8 + 2, 3))
    photo = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    return np.clip(photo + rng.normal(0, 0.05, photo.shape), 0, 1).astype(np.float32)
