"""Exports (scripts/export.py in a fresh process) reproduce the Keras generator within 1e-3."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_script
from infer_helpers import tiny_generator

from deblurgan.checkpoints import save_model
from deblurgan.errors import DeblurGANError
from deblurgan.export import export_generator

REPO = Path(__file__).resolve().parents[1]
# Loads each export where deblurgan cannot be imported (None in sys.modules makes import fail).
LOADERS = {
    "saved_model": """
        import tensorflow as tf
        model = tf.saved_model.load(path)
        out = model.signatures["serving_default"](blurred=tf.constant(x))["output_0"].numpy()
    """,
    "onnx": """
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
    """,
    "openvino": """
        import openvino
        # f32 explicitly: OpenVINO's CPU default is bf16 where the CPU has avx512_bf16 or AMX
        out = openvino.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    """,
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A tiny generator saved as .h5, a 336x520 input in [-1, 1] and the Keras output on it."""
    folder = tmp_path_factory.mktemp("export")
    generator = tiny_generator(seed=3)
    weights = save_model(generator, folder / "generator.h5")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 336, 520, 3)).astype(np.float32)
    np.save(folder / "x.npy", x)
    np.save(folder / "keras.npy", np.asarray(generator.predict_on_batch(x)))
    return folder, weights


def _export(weights, fmt, output):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "scripts" / "export.py"), "--weight_path", str(weights)]
    return subprocess.run(
        command + ["--format", fmt, "--output", str(output)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("fmt, name", [("saved_model", "sm"), ("onnx", "g.onnx"), ("openvino", "g.xml")])
def test_export_matches_keras_in_a_process_without_deblurgan(reference, fmt, name, run_python):
    folder, weights = reference
    result = _export(weights, fmt, folder / name)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"as {fmt} to" in result.stdout
    if fmt == "openvino":
        assert (folder / "g.bin").is_file()
    header = f"""
import sys
sys.modules["deblurgan"] = None
import numpy as np
path, x = {str(folder / name)!r}, np.load({str(folder / "x.npy")!r})
"""
    footer = f"np.save({str(folder / (fmt + '.npy'))!r}, out)\n"
    run_python(header + textwrap.dedent(LOADERS[fmt]) + footer)
    out, want = np.load(folder / f"{fmt}.npy"), np.load(folder / "keras.npy")
    assert out.shape == want.shape == (1, 336, 520, 3)
    assert np.abs(out - want).max() < 1e-3
    assert np.abs(want).mean() > 0.05  # a real image, not an all-zero output


@pytest.mark.slow
def test_keras_export_reloads_with_the_same_outputs(reference, run_python):
    folder, weights = reference
    assert _export(weights, "keras", folder / "g.keras").returncode == 0
    run_python(f"""
        import numpy as np, keras, deblurgan
        model = keras.models.load_model({str(folder / "g.keras")!r})
        x = np.load({str(folder / "x.npy")!r})
        np.save({str(folder / "keras_file.npy")!r}, model.predict_on_batch(x))
    """)
    assert np.abs(np.load(folder / "keras_file.npy") - np.load(folder / "keras.npy")).max() < 1e-3


def test_bad_format_and_suffix_name_the_option(tmp_path):
    generator = tiny_generator()
    with pytest.raises(DeblurGANError, match="format='tflite' is not one of keras, saved_model"):
        export_generator(generator, tmp_path / "g.tflite", format="tflite")
    with pytest.raises(DeblurGANError, match=r"output=.*g\.ir: an OpenVINO IR is a \.xml file"):
        export_generator(generator, tmp_path / "g.ir", format="openvino")
    with pytest.raises(DeblurGANError, match=r"output=.*g\.h5: the keras format is a \.keras file"):
        export_generator(generator, tmp_path / "g.h5", format="keras")
    with pytest.raises(DeblurGANError, match=r"output=.*g\.xml: the onnx format is a \.onnx file"):
        export_generator(generator, tmp_path / "g.xml", format="onnx")  # wrote ONNX as g.xml before
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("fmt", "output", "kind"),
    [("onnx", "photos.onnx", "a folder"), ("saved_model", "photos.onnx", "a folder"),
     ("saved_model", "photos.onnx/a.png", "a file")],
)  # fmt: skip
def test_a_user_folder_or_file_at_the_output_is_never_replaced(tmp_path, fmt, output, kind):
    """export.py --output photos (a folder of the user's) deleted the folder and wrote the export."""
    (tmp_path / "photos.onnx").mkdir()
    (tmp_path / "photos.onnx" / "a.png").write_bytes(b"precious")
    with pytest.raises(
        DeblurGANError, match=f"output=.*{output}: {kind} that is not an earlier {fmt} export"
    ):
        export_generator(tiny_generator(), tmp_path / output, format=fmt, overwrite=True)
    assert (tmp_path / "photos.onnx" / "a.png").read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("fmt", "output", "other"),
    [("onnx", "g.onnx", None), ("keras", "g.keras", None), ("openvino", "g.xml", None),
     ("openvino", "g.xml", "g.bin")],
)  # fmt: skip
def test_a_user_file_at_the_output_is_never_replaced(tmp_path, fmt, output, other):
    """Only the suffix was checked: a file of the user's named g.onnx (or g.bin) was replaced."""
    precious = tmp_path / (other or output)
    precious.write_bytes(b"precious")
    beside = "g.bin beside it is " if other else ""
    with pytest.raises(DeblurGANError, match=f"{output}: {beside}a file that is not an earlier {fmt} export"):
        export_generator(tiny_generator(), tmp_path / output, format=fmt, overwrite=True)
    assert precious.read_bytes() == b"precious" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.slow
def test_an_earlier_export_of_each_file_format_is_replaced_only_with_overwrite(tmp_path):
    for fmt, output in (("keras", "g.keras"), ("onnx", "g.onnx"), ("openvino", "g.xml")):
        export_generator(tiny_generator(), tmp_path / output, format=fmt)
        first = (tmp_path / output).stat().st_mtime_ns
        with pytest.raises(DeblurGANError, match=f"{output}: already exists; .* pass overwrite=True"):
            export_generator(tiny_generator(), tmp_path / output, format=fmt)  # a .keras model was lost
        export_generator(tiny_generator(), tmp_path / output, format=fmt, overwrite=True)
        assert (tmp_path / output).stat().st_mtime_ns != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.bin", "g.keras", "g.onnx", "g.xml"]


def test_missing_weights_is_one_line(tmp_path):
    options = ["--format", "onnx", "--output", tmp_path / "g.onnx"]
    result = invoke_script("export", "--weight_path", tmp_path / "missing.h5", *options)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "missing.h5" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "g.onnx").exists()


def test_a_failed_export_keeps_the_previous_folder_and_leaves_no_temporary(tmp_path, monkeypatch):
    generator = tiny_generator()
    old = tmp_path / "sm"
    old.mkdir()
    (old / "saved_model.pb").write_text("previous export")

    def broken_export(*args, **kwargs):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(type(generator), "export", broken_export)
    with pytest.raises(RuntimeError):
        export_generator(generator, old, format="saved_model", overwrite=True)
    assert (old / "saved_model.pb").read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


@pytest.mark.parametrize(
    ("fmt", "output"),
    [("keras", "g.keras"), ("onnx", "g.h5"), ("saved_model", "."), ("saved_model", "g.h5")],
    ids=["keras", "onnx", "saved_model-folder", "saved_model"],
)
def test_an_output_that_would_overwrite_the_input_is_refused(tmp_path, fmt, output):
    weights = save_model(tiny_generator(), tmp_path / ("g.keras" if fmt == "keras" else "g.h5"))
    before = weights.read_bytes()
    result = invoke_script("export", "--weight_path", weights, "--format", fmt, "--output", tmp_path / output)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "write the exported generator to a new" in result.stderr
    assert weights.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [weights.name]


def test_the_script_keeps_a_users_model_at_the_output(tmp_path):
    """export.py replaced any .keras model there, average_weights.py's output included."""
    weights = save_model(tiny_generator(), tmp_path / "g.h5")
    mine = save_model(tiny_generator(), tmp_path / "mine.keras")
    before = mine.read_bytes()
    result = invoke_script("export", "--weight_path", weights, "--format", "keras", "--output", mine)
    assert result.returncode == 2 and mine.read_bytes() == before
    assert result.stderr == (
        f"error: --output {mine}: already exists; choose another path, or pass --overwrite to replace an "
        "earlier export\n"
    )
