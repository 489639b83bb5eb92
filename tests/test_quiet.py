"""Quiet start-up (deblurgan/quiet.py) on every backend, and checkpoints saved without Keras' .h5 notice."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from infer_helpers import tiny_generator

from deblurgan.checkpoints import save_model

REPO = Path(__file__).resolve().parents[1]
# TensorFlow's start-up lines on a machine without a GPU (absl writes them before any setting is read)
CHATTER = ("absl::InitializeLog", "cuda drivers", "cuInit", "oneDNN custom operations")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_importing_tensorflow_on_another_backend_is_quiet_too(backend, tmp_path):
    # Keras imports TensorFlow, where installed, to read an .h5 file on any backend
    weights = save_model(tiny_generator(), tmp_path / "g.h5")
    code = (
        "import sys, deblurgan\n"
        f"deblurgan.load_generator({str(weights)!r})\n"
        "print('tensorflow' in sys.modules)\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DEBLURGAN_VERBOSE_STARTUP")
    }
    env.update(KERAS_BACKEND=backend, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True"]  # TensorFlow was imported, so its lines were due
    assert not [line for line in result.stderr.splitlines() if any(c in line for c in CHATTER)], result.stderr


def test_an_h5_checkpoint_is_saved_without_the_legacy_notice(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        save_model(tiny_generator(), tmp_path / "g.h5")
        logging.getLogger("absl").warning("This file format is considered legacy, outside save_model")
    assert [r.getMessage() for r in caplog.records if "considered legacy" in r.getMessage()] == [
        "This file format is considered legacy, outside save_model"
    ]
