"""Saving and loading: the three Sicara-style loads, .keras export, clear errors, atomic writes."""

import h5py
import keras
import numpy as np
import pytest
from conftest import invoke_script
from PIL import Image

import deblurgan
from deblurgan.checkpoints import export_keras, load_critic, load_generator, save_model
from deblurgan.errors import DeblurGANError
from deblurgan.model import discriminator_model, generator_model


def _fixed_input(size=32):
    return np.random.default_rng(7).uniform(-1, 1, (1, size, size, 3)).astype("float32")


def _predict(model, x):
    return np.asarray(model.predict(x, verbose=0))


LOAD_THREE_WAYS = """
import sys
import numpy as np
path, x_path = sys.argv[1:] if len(sys.argv) > 2 else ("generator_49.h5", "x.npy")
x = np.load(x_path)
outputs = {}

import deblurgan
outputs["load_generator"] = deblurgan.load_generator(path).predict(x, verbose=0)

import keras
model = keras.models.load_model(path)  # no custom_objects: importing deblurgan registered them
outputs["keras_load_model"] = model.predict(x, verbose=0)

g = deblurgan.generator_model()
g.load_weights(path)
outputs["load_weights"] = g.predict(x, verbose=0)
np.savez("outputs.npz", **outputs)
print(type(model).__name__, model.count_params())
"""


@pytest.mark.slow
def test_full_generator_h5_loads_three_ways_in_a_fresh_process(tmp_path, randomize_weights, run_python):
    g = randomize_weights(generator_model(), seed=11)
    x = _fixed_input()
    expected = _predict(g, x)
    save_model(g, tmp_path / "generator_49.h5")
    np.save(tmp_path / "x.npy", x)

    stdout = run_python(LOAD_THREE_WAYS, cwd=tmp_path)

    assert stdout.split() == ["Functional", "11399171"]
    outputs = np.load(tmp_path / "outputs.npz")
    assert sorted(outputs.files) == ["keras_load_model", "load_generator", "load_weights"]
    for how in outputs.files:
        np.testing.assert_allclose(outputs[how], expected, atol=1e-6, err_msg=how)
    assert np.ptp(expected) > 0.1  # random weights give a non-trivial output to compare


@pytest.mark.backend
def test_keras_export_round_trip(tmp_path, tiny_generator):
    h5 = save_model(tiny_generator, tmp_path / "generator_1.h5")
    exported = export_keras(h5)
    assert exported == tmp_path / "generator_1.keras"
    x = _fixed_input()

    for path in (h5, exported):
        np.testing.assert_allclose(_predict(load_generator(path), x), _predict(tiny_generator, x), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator_1.h5", "generator_1.keras"]


@pytest.fixture
def critic_h5(tmp_path):
    return save_model(discriminator_model(input_shape=(32, 32, 3), n_filters=4), tmp_path / "critic.h5")


def _assert_clear_error(load, path, *words):
    with pytest.raises(DeblurGANError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    for word in words:
        assert word in message
    return message


def test_missing_file_is_a_clear_error(tmp_path):
    _assert_clear_error(load_generator, tmp_path / "generator_49.h5", "no such file")
    _assert_clear_error(load_generator, tmp_path, "a folder, not a file")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_truncated_file_is_a_clear_error(tmp_path, tiny_generator, suffix):
    path = save_model(tiny_generator, tmp_path / f"generator{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_clear_error(load_generator, path)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_text_file_is_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"generator{suffix}"
    path.write_text("<html>404 Not Found</html>\n")
    _assert_clear_error(load_generator, path, "not a")


@pytest.mark.parametrize("name", ["training_state.npz", "options.json"])
def test_another_file_of_a_run_is_named_as_not_a_model(tmp_path, name):
    """It was taken for a truncated download, to be downloaded again."""
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, x=np.zeros(2))
    else:
        path.write_text("{}")
    message = _assert_clear_error(load_generator, path, "not a model file; pass a generator .h5 or .keras")
    assert "download" not in message


def test_critic_passed_as_generator_is_a_clear_error(critic_h5):
    _assert_clear_error(load_generator, critic_h5, "this is a critic (discriminator) file, not a generator")


def test_another_network_passed_as_generator_is_not_called_a_critic(tmp_path):
    """An InceptionV3 file (test.py --fid's) was called a critic (discriminator) file."""
    inputs = keras.Input((None, None, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    path = save_model(keras.Model(inputs, features, name="inception_v3"), tmp_path / "inception.h5")
    message = _assert_clear_error(load_generator, path, "this is the network 'inception_v3', not a generator")
    assert "critic" not in message


def test_generator_passed_as_critic_is_a_clear_error(tmp_path, tiny_generator):
    path = save_model(tiny_generator, tmp_path / "generator.h5")
    _assert_clear_error(load_critic, path, "generator")


def test_critic_loads_as_critic(critic_h5):
    assert load_critic(critic_h5).output_shape == (None, 1)


def test_an_upper_case_extension_is_a_clear_error(tmp_path, tiny_generator):
    """Keras' several-hundred-character "File format not supported" message before."""
    path = save_model(tiny_generator, tmp_path / "g.h5").rename(tmp_path / "G.H5")
    _assert_clear_error(load_generator, path, "lower-case extension only; rename it to G.h5")


def test_weights_only_file_is_a_clear_error(tmp_path, tiny_generator):
    """A Keras 3 weights file: the network it fits cannot be told (it is not loaded into a guess)."""
    path = tmp_path / "generator.weights.h5"
    tiny_generator.save_weights(path)
    _assert_clear_error(
        load_generator, path, "weights only", "deblurgan.generator_model(...)", "load_weights", "save_model"
    )


def _keras_2_weights_file(model, path):
    """``model``'s weights as Keras 2's ``save_weights`` wrote them (the Sicara port's checkpoints:
    layers in order, no architecture), through Keras' own writer of that format."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def test_a_sicara_weights_only_checkpoint_loads_into_the_sicara_networks_and_scripts_take_it(
    tmp_path, randomize_weights, caplog
):
    """A Sicara user's generator_49_123.h5 and discriminator_49.h5 (weights only) were refused by
    every script with advice to write Python."""
    generator = randomize_weights(generator_model(), seed=1)
    critic = randomize_weights(discriminator_model(), seed=2)
    g_file = _keras_2_weights_file(generator, tmp_path / "generator_49_123.h5")
    d_file = _keras_2_weights_file(critic, tmp_path / "discriminator_49.h5")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    with caplog.at_level("WARNING", logger="deblurgan.checkpoints"):
        loaded = load_generator(g_file)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), generator.predict(x, verbose=0))
    assert "loaded into deblurgan.generator_model(), the Sicara generator" in caplog.text
    image = np.random.default_rng(1).uniform(-1, 1, (1, 256, 256, 3)).astype("float32")
    np.testing.assert_array_equal(
        load_critic(d_file).predict(image, verbose=0), critic.predict(image, verbose=0)
    )
    # another network's weights: one line, with the builder that fits and how to save it whole
    _assert_clear_error(
        load_critic, g_file, "not those of the Sicara critic", "discriminator_model(...)", "save_model"
    )
    _assert_clear_error(load_generator, d_file, "not those of the Sicara generator", "generator_model(...)")

    photo = tmp_path / "in" / "p.png"
    photo.parent.mkdir()
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(photo)
    result = invoke_script("deblur", "--weight_path", str(g_file), "--input_dir", str(photo.parent),
                           "--output_dir", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "p.png").is_file()


def test_unknown_extension_is_a_clear_error(tmp_path, tiny_generator):
    with pytest.raises(DeblurGANError, match="generator.pt"):
        save_model(tiny_generator, tmp_path / "generator.pt")
    assert list(tmp_path.iterdir()) == []


class _FailingModel:
    """Writes part of a file, then fails, as a save interrupted by a full disk would."""

    layers = []  # no layer computes in another dtype: save_model saves this model itself

    def save(self, path):
        with open(path, "wb") as f:
            f.write(b"\x89HDF partial")
        raise OSError("No space left on device")


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "generator_49.h5"
    path.write_bytes(b"previous checkpoint")

    with pytest.raises(OSError, match="No space"):
        save_model(_FailingModel(), path)

    assert path.read_bytes() == b"previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["generator_49.h5"]


def test_save_replaces_an_existing_file(tmp_path, tiny_generator):
    path = tmp_path / "generator.h5"
    path.write_bytes(b"old")
    save_model(tiny_generator, path)
    assert deblurgan.load_generator(path).count_params() == tiny_generator.count_params()
    assert [p.name for p in tmp_path.iterdir()] == ["generator.h5"]
