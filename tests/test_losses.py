"""Tests for deblurgan.losses: values against numpy, the frozen VGG extractor, weights files, offline errors.

No network: VGG weights are random (``weights=None``) or files saved here from a random VGG, and
the Keras download function is replaced by one that fails like an offline machine.
"""

import hashlib
import urllib.error

import h5py
import keras
import numpy as np
import pytest

from deblurgan import losses
from deblurgan.cli import flag_message
from deblurgan.errors import DeblurGANError

RNG = np.random.default_rng(0)


def images(batch=2, height=32, width=32):
    return RNG.uniform(-1, 1, (batch, height, width, 3)).astype("float32")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def full_vgg(network):
    constructor = keras.applications.VGG16 if network == "vgg16" else keras.applications.VGG19
    return constructor(include_top=False, weights=None, input_shape=(None, None, 3))


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory):
    """network -> (random-init full VGG notop model, its weights saved as a legacy .h5 file)."""
    folder = tmp_path_factory.mktemp("vgg")
    files = {}
    for network in losses.VGG_NETWORKS:
        model = full_vgg(network)
        path = folder / f"{network}_notop.h5"
        model.save(path)  # legacy HDF5, the format of Keras' own notop files
        files[network] = (model, path)
    return files


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache and a download that fails as it does without internet; returns the calls."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    calls = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", no_network)
    return calls


@pytest.mark.backend
def test_wasserstein_loss_hand_value():
    y_true = np.array([[1.0], [1.0], [-1.0], [-1.0]], "float32")
    y_pred = np.array([[2.0], [0.5], [3.0], [-1.0]], "float32")
    # (2 + 0.5 - 3 + 1) / 4
    assert float(losses.wasserstein_loss(y_true, y_pred)) == pytest.approx(0.125)


@pytest.mark.backend
def test_pixel_losses_match_numpy():
    a, b = images(), images()
    assert float(losses.l1_loss(a, b)) == pytest.approx(np.abs(a - b).mean(), rel=1e-5)
    assert float(losses.mse_loss(a, b)) == pytest.approx(((a - b) ** 2).mean(), rel=1e-5)
    assert losses.content_loss("l1") is losses.l1_loss
    assert losses.content_loss("mse") is losses.mse_loss


@pytest.mark.backend
def test_vgg_preprocess_matches_keras_caffe_preprocessing():
    x = images()
    expected = keras.applications.vgg16.preprocess_input((x + 1.0) * 127.5)
    np.testing.assert_allclose(to_numpy(losses.vgg_preprocess(x)), expected, atol=1e-4)


@pytest.mark.backend
@pytest.mark.parametrize("network", losses.VGG_NETWORKS)
@pytest.mark.parametrize("height, width", [(32, 32), (48, 40)])
def test_extractor_gives_quarter_resolution_256_channels(network, height, width):
    extractor = losses.vgg_feature_extractor(network, weights=None)
    features = extractor(losses.vgg_preprocess(images(2, height, width)))
    assert tuple(features.shape) == (2, height // 4, width // 4, 256)


@pytest.mark.backend
def test_vgg19_features_are_taken_before_relu_and_vgg16_after():
    x = losses.vgg_preprocess(images())
    vgg16 = to_numpy(losses.vgg_feature_extractor("vgg16", weights=None)(x))
    vgg19 = to_numpy(losses.vgg_feature_extractor("vgg19", weights=None)(x))
    assert vgg16.min() >= 0
    assert vgg19.min() < 0


@pytest.mark.backend
@pytest.mark.parametrize("network", losses.VGG_NETWORKS)
def test_local_weights_file_gives_keras_vgg_block3_conv3(network, vgg_files):
    model, path = vgg_files[network]
    extractor = losses.vgg_feature_extractor(network, weights=str(path))
    x = losses.vgg_preprocess(images())
    reference = keras.Model(model.input, model.get_layer("block3_conv3").output)(x)
    features = to_numpy(extractor(x))
    if network == "vgg19":  # the same convolution, its ReLU left out
        features = np.maximum(features, 0)
    np.testing.assert_allclose(features, to_numpy(reference), rtol=1e-5, atol=1e-5)
    for weight, saved in zip(extractor.weights, model.weights[: len(extractor.weights)], strict=True):
        np.testing.assert_array_equal(to_numpy(weight), to_numpy(saved))


@pytest.mark.backend
def test_extractor_is_frozen_inside_a_trainable_model():
    extractor = losses.vgg_feature_extractor("vgg16", weights=None)
    assert extractor.trainable_weights == []
    assert len(extractor.non_trainable_weights) == 14  # 7 convolutions: kernel and bias each
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(4, 1)(extractor(keras.layers.Conv2D(3, 1)(inputs)))
    model = keras.Model(inputs, outputs)
    frozen = {id(v) for v in extractor.weights}
    assert len(model.trainable_weights) == 4
    assert not frozen & {id(v) for v in model.trainable_weights}


@pytest.mark.backend
@pytest.mark.parametrize("network", losses.VGG_NETWORKS)
def test_perceptual_loss_is_feature_mse(network):
    perceptual = losses.content_loss("perceptual", network=network, weights=None)
    a, b = images(), images()
    assert float(perceptual(a, a)) == pytest.approx(0.0, abs=1e-8)
    features_a = to_numpy(perceptual.extractor(losses.vgg_preprocess(a)))
    features_b = to_numpy(perceptual.extractor(losses.vgg_preprocess(b)))
    expected = ((features_a - features_b) ** 2).mean()
    assert expected > 0
    assert float(perceptual(a, b)) == pytest.approx(expected, rel=1e-4)


@pytest.mark.backend
def test_unscaled_input_reproduces_sicara():
    perceptual = losses.PerceptualLoss(weights=None, input_scaling="none")
    a, b = images(), images()
    features_a, features_b = (to_numpy(perceptual.extractor(x)) for x in (a, b))
    assert float(perceptual(a, b)) == pytest.approx(((features_a - features_b) ** 2).mean(), rel=1e-4)


@pytest.mark.backend
def test_gradient_penalty_of_known_norms():
    gradients = np.zeros((3, 4, 4, 3), "float32")
    gradients[0, 1, 2, 0] = 3.0  # norm 3 -> (3 - 1)^2 = 4
    gradients[1] = 1.0 / np.sqrt(48)  # norm 1 -> 0
    # sample 2 is all zero: norm 0 -> 1, and no NaN thanks to the epsilon
    assert float(losses.gradient_penalty_from_gradients(gradients)) == pytest.approx(5.0 / 3.0, rel=1e-5)

    random = RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    norms = np.sqrt((random.reshape(4, -1) ** 2).sum(axis=1))
    expected = ((norms - 1.0) ** 2).mean()
    assert float(losses.gradient_penalty_from_gradients(random)) == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_gradient_is_finite_for_zero_gradients():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape")
    import tensorflow as tf

    gradients = tf.Variable(np.zeros((2, 4, 4, 3), "float32"))
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty_from_gradients(gradients)
    assert np.isfinite(tape.gradient(penalty, gradients).numpy()).all()


@pytest.mark.backend
@pytest.mark.parametrize("network", losses.VGG_NETWORKS)
def test_imagenet_weights_offline_say_which_file_and_how_to_pass_it(network, offline, tmp_path):
    offline_cache = tmp_path / "keras_home"
    file_name, url, _ = losses.VGG_WEIGHTS[network]
    with pytest.raises(DeblurGANError) as error:
        losses.vgg_feature_extractor(network, weights="imagenet")
    message = str(error.value)
    assert offline == [url]
    assert "\n" not in message
    cache = offline_cache / "models"
    for part in (file_name, url, "Temporary failure", "vgg_weights=PATH", f"put it in {cache}/{file_name}"):
        assert part in message
    assert "--vgg_weights PATH or put it" in flag_message(error.value)


@pytest.mark.backend
def test_imagenet_weights_come_from_keras_cache_without_download(offline, vgg_files, monkeypatch, tmp_path):
    model, path = vgg_files["vgg16"]
    file_name, url, _ = losses.VGG_WEIGHTS["vgg16"]
    cached = tmp_path / "keras_home" / "models" / file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    # The real md5 belongs to the real ImageNet file; accept our random stand-in instead.
    md5 = hashlib.md5(cached.read_bytes()).hexdigest()
    monkeypatch.setitem(losses.VGG_WEIGHTS, "vgg16", (file_name, url, md5))
    monkeypatch.setattr(losses, "_default_perceptual_loss", losses._default_perceptual_loss.__wrapped__)

    extractor = losses.vgg_feature_extractor("vgg16", weights="imagenet")
    np.testing.assert_array_equal(to_numpy(extractor.weights[0]), to_numpy(model.weights[0]))
    a, b = images(), images()
    assert float(losses.perceptual_loss(a, b)) > 0
    assert offline == []


@pytest.mark.backend
def test_default_perceptual_loss_builds_its_extractor_once(monkeypatch):
    built = []
    real_extractor = losses.vgg_feature_extractor

    def fake_extractor(network="vgg16", weights="imagenet"):
        built.append((network, weights))
        return real_extractor(network, None)  # random weights: no download

    monkeypatch.setattr(losses, "vgg_feature_extractor", fake_extractor)
    losses._default_perceptual_loss.cache_clear()
    try:
        a, b = images(), images()
        first, second = losses.perceptual_loss(a, b), losses.perceptual_loss(b, a)
    finally:
        losses._default_perceptual_loss.cache_clear()
    assert built == [("vgg16", "imagenet")]
    assert float(first) == pytest.approx(float(second), rel=1e-5)


@pytest.mark.backend
def test_bad_weights_files_give_one_line_errors(vgg_files, tmp_path):
    missing = tmp_path / "nowhere.h5"
    with pytest.raises(DeblurGANError, match="nowhere.h5: no such VGG16 weights file"):
        losses.vgg_feature_extractor("vgg16", weights=missing)

    text = tmp_path / "weights.h5"
    text.write_text("<html>404 Not Found</html>")
    with pytest.raises(DeblurGANError, match="weights.h5: not a Keras VGG16 weights file") as error:
        losses.vgg_feature_extractor("vgg16", weights=text)
    assert "vgg_weights=PATH" in str(error.value)
    assert "--vgg_weights PATH" in flag_message(error.value)

    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w"):
        pass
    with pytest.raises(DeblurGANError, match="empty.h5: cannot load it as VGG16"):
        losses.vgg_feature_extractor("vgg16", weights=empty)

    _, vgg16_file = vgg_files["vgg16"]
    with pytest.raises(DeblurGANError, match="cannot load it as VGG19 notop weights") as error:
        losses.vgg_feature_extractor("vgg19", weights=vgg16_file)
    assert "\n" not in str(error.value)


def test_invalid_names_are_rejected():
    with pytest.raises(DeblurGANError, match="network must be one of"):
        losses.vgg_feature_extractor("resnet50", weights=None)
    with pytest.raises(DeblurGANError, match="content loss must be one of"):
        losses.content_loss("ssim")
    with pytest.raises(DeblurGANError, match="takes no options"):
        losses.content_loss("l1", weights=None)


def gradient_wrt_prediction(loss_fn, y_true, y_pred):
    """d loss_fn(y_true, y_pred) / d y_pred with the current backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(lambda y: loss_fn(y_true, y)))(y_pred))
    if backend == "torch":
        import torch

        y = torch.tensor(y_pred, requires_grad=True)
        loss_fn(y_true, y).backward()
        return y.grad.numpy()
    import tensorflow as tf

    y = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        loss = loss_fn(y_true, y)
    return tape.gradient(loss, y).numpy()


@pytest.mark.backend
def test_perceptual_loss_gradient_reaches_the_restored_image():
    perceptual = losses.PerceptualLoss("vgg19", weights=None)
    before = [to_numpy(w).copy() for w in perceptual.extractor.weights]
    gradient = gradient_wrt_prediction(perceptual, images(), images())
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    for weight, old in zip(perceptual.extractor.weights, before, strict=True):
        np.testing.assert_array_equal(to_numpy(weight), old)


def test_a_bad_vgg_weights_path_names_the_flags(tmp_path):
    """The fixes read weights='imagenet' and network='vgg16', and a folder was "no such" file."""
    with pytest.raises(DeblurGANError) as error:
        losses.vgg_feature_extractor("vgg16", weights=str(tmp_path / "nosuch.h5"))
    file_name = losses.VGG_WEIGHTS["vgg16"][0]
    assert flag_message(error.value).endswith(
        f"no such VGG16 weights file; pass the path of the Keras notop weights file ({file_name}) "
        "or --vgg_weights 'imagenet'"
    )
    with pytest.raises(DeblurGANError, match="a folder, not a VGG16 weights file"):
        losses.vgg_feature_extractor("vgg16", weights=str(tmp_path))
    h5py.File(tmp_path / "empty.h5", "w").close()
    with pytest.raises(DeblurGANError) as error:
        losses.vgg_feature_extractor("vgg16", weights=str(tmp_path / "empty.h5"))
    assert flag_message(error.value).endswith("for --vgg_network 'vgg16'")
