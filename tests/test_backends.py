"""The same saved weights give the same outputs on the TensorFlow, JAX and PyTorch backends."""

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

BACKENDS = ("tensorflow", "jax", "torch")
MISSING = [name for name in ("jax", "torch") if importlib.util.find_spec(name) is None]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"not installed: {MISSING}; pip install -e '.[jax,torch]'"),
]

# Tiny but non-trivial networks: two residual blocks, and every weight (BN moving statistics
# included) randomised, so a weight that one backend loads wrongly or ignores shows up.
SAVE_MODELS = """
import numpy as np
import deblurgan
from deblurgan.model import discriminator_model, generator_model, patchgan_critic_model
from conftest import randomize_weights

models = {
    "generator": generator_model(n_filters=8, n_blocks=2),
    "generator_paper": generator_model(n_filters=8, n_blocks=2, preset="paper"),
    "critic_sicara": discriminator_model(input_shape=(64, 64, 3), n_filters=8),
    "critic_patchgan": patchgan_critic_model(n_filters=8),
}
for seed, (name, model) in enumerate(models.items()):
    deblurgan.save_model(randomize_weights(model, seed=seed), name + ".h5")
np.save("x.npy", np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32"))
"""

PREDICT = """
import keras
import numpy as np
import deblurgan

x = np.load("x.npy")
outputs = {}
for name in ("generator", "generator_paper"):
    outputs[name] = deblurgan.load_generator(name + ".h5").predict(x, verbose=0)
for name in ("critic_sicara", "critic_patchgan"):
    outputs[name] = deblurgan.load_critic(name + ".h5").predict(x, verbose=0)
np.savez("outputs_" + keras.backend.backend() + ".npz", **outputs)
print(keras.backend.backend())
"""


def test_same_weights_same_outputs_on_every_backend(tmp_path, run_python):
    tests_dir = str(Path(__file__).parent)  # the child imports randomize_weights from conftest
    save = f"import sys; sys.path.insert(0, {tests_dir!r})\n" + SAVE_MODELS
    outputs = {}
    for backend in BACKENDS:  # TensorFlow saves the files, then loads them like the others
        reported = run_python(
            save + PREDICT if backend == "tensorflow" else PREDICT, backend, cwd=tmp_path
        ).split()
        assert reported == [backend]  # the child really ran on the requested backend
        outputs[backend] = np.load(tmp_path / f"outputs_{backend}.npz")

    for name in ("generator", "generator_paper", "critic_sicara", "critic_patchgan"):
        expected_shape = {
            "critic_sicara": (2, 1),
            "critic_patchgan": (2, 4, 4, 1),
        }.get(name, (2, 64, 64, 3))
        assert outputs["tensorflow"][name].shape == expected_shape
        assert np.ptp(outputs["tensorflow"][name]) > 1e-3, f"{name}: constant output, weak comparison"
        for a, b in itertools.combinations(BACKENDS, 2):
            difference = np.max(np.abs(outputs[a][name] - outputs[b][name]))
            assert difference <= 1e-4, f"{name}: {a} vs {b} differ by {difference:.2e}"
