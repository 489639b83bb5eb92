"""--engine (ONNX Runtime, OpenVINO with a cached export) and --precision auto."""

import logging

import numpy as np
import pytest
from conftest import invoke_script
from infer_helpers import random_photo, tiny_generator
from PIL import Image

from deblurgan import engines, precision
from deblurgan.checkpoints import save_model
from deblurgan.cli import flag_message
from deblurgan.errors import DeblurGANError
from deblurgan.inference import deblur_array, with_precision


@pytest.fixture
def fake_cpu(monkeypatch):
    """Sets the CPU flags and GPU presence :mod:`deblurgan.precision` sees."""

    def fake(flags, gpu=False):
        monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(precision, "has_gpu", lambda: gpu)

    return fake


@pytest.mark.backend
def test_auto_is_fp32_without_native_bf16_and_bf16_with_it(fake_cpu):
    fake_cpu({"avx2", "fma", "avx512f"})
    assert precision.resolve_precision("auto") == "fp32"
    generator = tiny_generator()
    assert with_precision(generator, "auto") is generator
    fake_cpu({"avx2", "avx512f", "avx512_bf16"})  # bf16 dot products, but slower than fp32 (benchmarks)
    assert precision.resolve_precision("auto") == "fp32"
    fake_cpu({"avx2", "avx512_bf16", "amx_bf16", "amx_tile"})
    assert precision.resolve_precision("auto") == "bf16"
    fake_cpu({"avx2"}, gpu=True)
    assert precision.resolve_precision("auto") == "bf16"
    assert with_precision(generator, "auto").layers[1].compute_dtype == "bfloat16"
    assert precision.resolve_precision("fp16") == "fp16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert precision.cpu_flags.__wrapped__(str(cpuinfo)) == {"fpu", "sse2", "avx2", "fma"}
    assert precision.cpu_flags.__wrapped__(str(tmp_path / "missing")) == frozenset()


@pytest.fixture
def weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURGAN_CACHE", str(tmp_path / "cache"))
    return save_model(tiny_generator(seed=1), tmp_path / "generator.h5")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_engine_matches_keras_and_exports_once_per_weight_file(weights, engine, tmp_path, monkeypatch):
    keras_engine = engines.load_engine(weights, "keras")
    photo = random_photo(61, 83)  # padded to 64x84, and tiled below
    want = deblur_array(keras_engine, photo, precision="fp32")
    runner = engines.load_engine(weights, engine)
    cached = sorted((tmp_path / "cache").iterdir())
    assert len(cached) == (1 if engine == "onnxruntime" else 2)  # .xml + .bin
    assert engines.weights_hash(weights) in cached[0].name
    np.testing.assert_allclose(deblur_array(runner, photo, precision="fp32"), want, atol=1e-4)
    # "auto" is bf16 on CPUs with AMX, except on ONNX Runtime, which runs fp32 (or int8 when asked)
    expected_auto = "fp32" if engine == "onnxruntime" else precision.resolve_precision("auto")
    assert runner.with_precision("auto").precision == expected_auto
    tiled = deblur_array(runner, photo, tile_size=48, overlap=8, precision="fp32")
    want_tiled = deblur_array(keras_engine, photo, tile_size=48, overlap=8, precision="fp32")
    np.testing.assert_allclose(tiled, want_tiled, atol=1e-4)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the weights did not change")

    monkeypatch.setattr(engines, "export_generator", no_export)
    engines.load_engine(weights, engine)
    save_model(tiny_generator(seed=2), weights)  # new weights: a new export
    monkeypatch.undo()
    monkeypatch.setenv("DEBLURGAN_CACHE", str(tmp_path / "cache"))
    engines.load_engine(weights, engine)
    assert len(list((tmp_path / "cache").iterdir())) == 2 * len(cached)
    # a damaged export in the cache (an interrupted write): one line that says what to delete
    export = engines.cached_export(weights, engine)
    damaged = export.with_suffix(".bin") if engine == "openvino" else export
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(DeblurGANError, match=f"{export}: {engine} cannot load this export .*; delete it"):
        engines.load_engine(weights, engine)


def test_onnxruntime_refuses_reduced_precision_and_unknown_engines(weights):
    with pytest.raises(DeblurGANError, match="engine='tensorrt' is not one of keras, onnxruntime, openvino"):
        engines.load_engine(weights, "tensorrt")
    runner = engines.load_engine(weights, "onnxruntime")
    with pytest.raises(DeblurGANError, match="precision=bf16: the onnxruntime engine runs") as error:
        with_precision(runner, "bf16")
    assert str(error.value).endswith("use engine=openvino or engine=keras for bf16/fp16")  # parameters
    assert flag_message(error.value) == (
        "--precision bf16: the onnxruntime engine runs fp32 or int8; use --engine openvino or --engine keras "
        "for bf16/fp16"
    )


@pytest.mark.slow
def test_deblur_script_takes_the_engine_option(weights, tmp_path):
    from PIL import Image

    from deblurgan.io import read_image

    photo = (random_photo(40, 52) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    outputs = {}
    for engine in ("keras", "onnxruntime"):
        args = ["--weight_path", str(weights), "--engine", engine, "--input_dir", str(tmp_path / "photo.png")]
        result = invoke_script("deblur", *args, "--output_dir", str(tmp_path / engine))
        assert result.returncode == 0, result.stderr
        outputs[engine] = read_image(tmp_path / engine / "photo.png").pixels
    assert np.abs(outputs["keras"] - outputs["onnxruntime"]).max() <= 1 / 255 + 1e-6
    assert any(p.suffix == ".onnx" for p in (tmp_path / "cache").iterdir())


def test_ctrl_c_still_works_after_two_openvino_engines_were_freed(weights, run_python):
    """OpenVINO's CPU plugin swaps the thread's signal stack while compiling; freeing two compiled
    models in creation order left it unmapped, and the next Ctrl-C was a segmentation fault."""
    stdout = run_python(f"""
        import gc, os, signal
        from deblurgan import engines
        first = engines.load_engine({str(weights)!r}, "openvino")
        second = engines.load_engine({str(weights)!r}, "openvino")
        del first
        gc.collect()
        del second
        gc.collect()
        signal.signal(signal.SIGINT, lambda *args: print("interrupt handled"))
        os.kill(os.getpid(), signal.SIGINT)
    """)
    assert stdout.strip().endswith("interrupt handled")


@pytest.mark.slow
def test_int8_is_a_quantised_export_made_once_and_close_to_fp32(weights, tmp_path, monkeypatch, caplog):
    import onnx

    from deblurgan import quantize

    runner = engines.load_engine(weights, "onnxruntime")
    photo = random_photo(61, 83)
    fp32 = deblur_array(runner, photo, precision="fp32")
    with caplog.at_level(logging.WARNING):
        int8 = deblur_array(runner, photo, precision="int8")
    # ONNX Runtime's advice to pre-process reached every user of test.py --precision int8
    assert "pre-processing" not in caplog.text and "quantising" in caplog.text
    (path,) = (tmp_path / "cache").glob("*.int8.onnx")
    kinds = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= kinds
    assert not np.array_equal(int8, fp32)
    psnr = 10 * np.log10(1.0 / np.mean((int8 - fp32) ** 2))
    assert psnr > 35, psnr  # rounding, not a different network

    def fail(*args):
        raise AssertionError("quantised again")

    monkeypatch.setattr(quantize, "quantize_onnx", fail)
    again = with_precision(engines.load_engine(weights, "onnxruntime"), "int8")
    np.testing.assert_array_equal(deblur_array(again, photo, precision="int8"), int8)


def test_int8_elsewhere_and_calibration_without_photos_are_one_line_errors(tmp_path):
    from deblurgan import quantize

    only = "precision=int8: runs on the onnxruntime engine only, not"
    with pytest.raises(DeblurGANError, match=f"{only} keras"):
        with_precision(tiny_generator(), "int8")
    with pytest.raises(DeblurGANError, match=f"{only} openvino"):
        engines.ExportedGenerator(tiny_generator(), tmp_path / "g.xml", "openvino", "int8")
    with pytest.raises(DeblurGANError, match=f"no usable calibration photos in {tmp_path}"):
        quantize.calibration_crops(tmp_path)
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")  # a 0-pixel crop: an ONNX Runtime traceback
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DeblurGANError, match="of at least 32x32 pixels; point DEBLURGAN_CALIBRATION_DIR"):
        quantize.calibration_crops(tmp_path)
    Image.new("RGB", (40, 36)).save(tmp_path / "small.png")
    assert [crop.shape for crop in quantize.calibration_crops(tmp_path, n_crops=2)] == [(1, 36, 36, 3)] * 2
    crops = quantize.calibration_crops(quantize.DEFAULT_CALIBRATION_DIR, n_crops=3)
    assert [crop.shape for crop in crops] == [(1, 128, 128, 3)] * 3
    assert all(-1 <= crop.min() and crop.max() <= 1 for crop in crops)
