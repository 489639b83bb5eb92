"""Tests for deblurgan.interpolation, scripts/interpolate_weights.py (ESRGAN's network interpolation)
and scripts/average_weights.py (checkpoint averaging)."""

import re

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import load_script, randomize_weights

import deblurgan
from deblurgan.errors import DeblurGANError


def tiny(seed, **options):
    options = {"n_filters": 8, "n_blocks": 1, **options}
    return randomize_weights(deblurgan.generator_model(**options), seed=seed)


@pytest.fixture(scope="module")
def script():
    return load_script("interpolate_weights").main


@pytest.fixture(scope="module")
def average_script():
    return load_script("average_weights").main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interp")
    a, b = tiny(1), tiny(2)
    deblurgan.save_model(a, folder / "a.h5")
    deblurgan.save_model(b, folder / "b.h5")
    deblurgan.save_model(tiny(4), folder / "c.h5")
    deblurgan.save_model(tiny(3, n_blocks=2), folder / "other.h5")
    deblurgan.save_model(deblurgan.patchgan_critic_model(n_filters=8, n_layers=1), folder / "critic.h5")
    return folder, a, b


def bits(weights):
    return [np.asarray(w).view(np.uint32) for w in weights]


@pytest.mark.backend
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_0_and_1_give_the_end_networks_bit_for_bit(alpha):
    a, b = tiny(1), tiny(2)
    # a negative zero survives too: (1 - 0) * a + 0 * b would turn it into +0
    weights = a.get_weights()
    weights[0].flat[0] = -0.0
    a.set_weights(weights)
    c = deblurgan.interpolate_generators(a, b, alpha)
    expected = a if alpha == 0.0 else b
    for got, want in zip(bits(c.get_weights()), bits(expected.get_weights()), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.backend
def test_every_weight_is_the_affine_blend_and_inputs_are_untouched():
    a, b = tiny(1), tiny(2)
    before_a, before_b = a.get_weights(), b.get_weights()
    c = deblurgan.interpolate_generators(a, b, 0.8)
    assert len(c.get_weights()) == len(before_a) == 44  # conv kernels, biases and BN statistics
    for wc, wa, wb in zip(c.get_weights(), before_a, before_b, strict=True):
        np.testing.assert_allclose(wc, 0.2 * wa + 0.8 * wb, rtol=1e-6, atol=1e-7)
        assert not np.array_equal(wc, wa) and not np.array_equal(wc, wb)
    for now, then in zip(a.get_weights() + b.get_weights(), before_a + before_b, strict=True):
        np.testing.assert_array_equal(now, then)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    assert c.predict(x, verbose=0).shape == (1, 32, 32, 3)


def test_multiscale_generators_interpolate_too():
    a, b = (
        randomize_weights(deblurgan.multiscale_generator_model(n_blocks=1, n_filters=4), s) for s in (1, 2)
    )
    c = deblurgan.interpolate_generators(a, b, 0.5)
    for wc, wa, wb in zip(c.get_weights(), a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wc, (wa + wb) / 2, rtol=1e-6, atol=1e-7)
    assert len(c.outputs) == 3


def test_different_architectures_and_bad_alpha_are_refused_in_one_line():
    with pytest.raises(DeblurGANError, match="'generator' and model 'other': the networks have different"):
        deblurgan.interpolate_generators(tiny(1), tiny(2, n_blocks=2, name="other"), 0.5)
    # the same weights, another output mode: the blend had taken the first's mode in silence
    clip = tiny(2, output_mode="clip", name="clip")
    with pytest.raises(DeblurGANError) as error:
        deblurgan.interpolate_generators(tiny(1), clip, 1.0)
    assert str(error.value) == (
        "model 'generator' and model 'clip': the networks differ (GlobalSkip mode 'average' vs 'clip'); "
        "blend generators built with the same options"
    )
    with pytest.raises(DeblurGANError, match="differ .Dropout rate 0.5 vs 0.2."):
        deblurgan.average_generators([tiny(1), tiny(2, dropout_rate=0.2)])
    with pytest.raises(DeblurGANError, match=r"alpha=1.5: must lie in \[0, 1\]") as error:
        deblurgan.interpolate_generators(tiny(1), tiny(2), 1.5)
    assert error.value.parameter == "alpha"


def test_script_writes_the_blend_and_keeps_inputs(files, script, tmp_path):
    folder, a, b = files
    before = (folder / "a.h5").read_bytes(), (folder / "b.h5").read_bytes()
    out = tmp_path / "c.h5"
    args = ["--from_weights", folder / "a.h5", "--to_weights", folder / "b.h5", "--alpha", "0.25"]
    result = CliRunner().invoke(script, [str(x) for x in args] + ["--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    c = deblurgan.load_generator(out)
    for wc, wa, wb in zip(c.get_weights(), a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wc, 0.75 * wa + 0.25 * wb, rtol=1e-6, atol=1e-7)
    assert ((folder / "a.h5").read_bytes(), (folder / "b.h5").read_bytes()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.h5"]  # no temporary file left
    _replaced_only_with_overwrite(script, [*map(str, args), "--alpha", "1"], out)


def _replaced_only_with_overwrite(script, args, out):
    """An existing output (it may be a run's only copy of a generator) is kept unless asked; ``args``
    write another generator than the one at ``out``."""
    written = out.read_bytes()
    result = CliRunner().invoke(script, [*args, "--output", str(out)])
    assert result.exit_code == 2 and out.read_bytes() == written
    assert result.output == (
        f"error: --output {out}: already exists; choose another name, or pass --overwrite to replace it\n"
    )
    result = CliRunner().invoke(script, [*args, "--output", str(out), "--overwrite"])
    assert result.exit_code == 0 and out.read_bytes() != written


@pytest.mark.parametrize(
    ("to_file", "alpha", "output", "message"),
    [
        ("other.h5", "0.5", "n.h5", "a.h5 and .*other.h5: the networks have different architectures"),
        ("critic.h5", "0.5", "n.h5", "critic.h5: this is a critic"),
        ("b.h5", "-0.1", "n.h5", r"--alpha -0.1: must lie in \[0, 1\]"),
        ("b.h5", "0.5", "c.h5", "--output .*c.h5: already exists; choose another name, or pass --overwrite"),
        ("b.h5", "0.5", "b.h5", "b.h5: is also an input file"),
        (
            "b.h5",
            "0.5",
            "a.h5/c.h5",
            r"--output .*a.h5: cannot write there \(is a file\)",
        ),  # traceback before
        ("b.h5", "0.5", "c.txt", "--output .*c.txt: model files must end in .h5 or .keras"),
    ],
)
def test_script_user_errors_are_one_line_exit_2(files, script, to_file, alpha, output, message):
    folder = files[0]
    args = ["--from_weights", str(folder / "a.h5"), "--to_weights", str(folder / to_file)]
    before = (folder / to_file).read_bytes()
    result = CliRunner().invoke(script, args + ["--alpha", alpha, "--output", str(folder / output)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert re.search(message, lines[0]), lines[0]
    assert (folder / to_file).read_bytes() == before


@pytest.mark.backend
def test_the_average_is_the_float64_mean_of_every_weight_rounded_once_and_inputs_are_untouched(caplog):
    generators = [tiny(seed) for seed in (1, 2, 3)]
    before = [g.get_weights() for g in generators]
    with caplog.at_level("WARNING", logger="deblurgan.interpolation"):
        mean = deblurgan.average_generators(generators)
    assert "batch-normalization statistics" in caplog.text  # the tiny generator has BN layers
    for got, *inputs in zip(mean.get_weights(), *before, strict=True):
        want = (sum(w.astype(np.float64) for w in inputs) / 3).astype(np.float32)
        np.testing.assert_array_max_ulp(got, want, maxulp=1)  # sum(w / 3) and sum(w) / 3 in float64
        assert not any(np.array_equal(got, w) for w in inputs)
    for g, then in zip(generators, before, strict=True):
        for now, was in zip(g.get_weights(), then, strict=True):
            np.testing.assert_array_equal(now, was)


def test_the_average_of_two_is_their_interpolation_at_one_half():
    a, b = tiny(1), tiny(2)
    mean, half = deblurgan.average_generators([a, b]), deblurgan.interpolate_generators(a, b, 0.5)
    for got, want in zip(bits(mean.get_weights()), bits(half.get_weights()), strict=True):
        np.testing.assert_array_equal(got, want)


def test_averaging_one_generator_or_different_architectures_is_refused_in_one_line():
    with pytest.raises(DeblurGANError, match="generators: got 1; averaging needs two or more") as error:
        deblurgan.average_generators([tiny(1)])
    assert error.value.parameter == "generators"
    odd = tiny(3, n_blocks=2, name="odd")
    with pytest.raises(DeblurGANError, match="'generator' and model 'odd': the networks have different"):
        deblurgan.average_generators([tiny(1), tiny(2), odd])


def test_average_script_writes_the_mean_and_keeps_inputs(files, average_script, tmp_path):
    folder = files[0]
    inputs = [folder / name for name in ("a.h5", "b.h5", "c.h5")]
    before = [p.read_bytes() for p in inputs]
    out = tmp_path / "mean.h5"
    result = CliRunner().invoke(average_script, [*map(str, inputs), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "the mean of 3 generators" in result.output
    written = deblurgan.load_generator(out).get_weights()
    expected = deblurgan.average_generators(inputs).get_weights()
    for got, want in zip(bits(written), bits(expected), strict=True):
        np.testing.assert_array_equal(got, want)
    assert [p.read_bytes() for p in inputs] == before
    assert [p.name for p in tmp_path.iterdir()] == ["mean.h5"]  # no temporary file left
    _replaced_only_with_overwrite(average_script, list(map(str, inputs[:2])), out)


@pytest.mark.parametrize(
    ("inputs", "output", "message"),
    [
        (["a.h5"], "m.h5", "generators: got 1; averaging needs two or more checkpoints"),
        (["a.h5", "other.h5"], "m.h5", "a.h5 and .*other.h5: the networks have different architectures"),
        (["a.h5", "critic.h5"], "m.h5", "critic.h5: this is a critic"),
        (["a.h5", "b.h5", "a.h5"], "m.h5", "a.h5: given twice; each checkpoint counts once in the mean"),
        (["a.h5", "b.h5"], "b.h5", "b.h5: is also an input file; write the averaged generator"),
        (["a.h5", "b.h5"], "a.h5/m.h5", r"--output .*a.h5: cannot write there \(is a file\)"),
        (
            ["a.h5", "b.h5"],
            "m.txt",
            "--output .*m.txt: model files must end in .h5 or .keras",
        ),  # before the work
    ],
)
def test_average_script_user_errors_are_one_line_exit_2(files, average_script, inputs, output, message):
    folder = files[0]
    before = [(folder / name).read_bytes() for name in inputs]
    args = [str(folder / name) for name in inputs] + ["--output", str(folder / output)]
    result = CliRunner().invoke(average_script, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert re.search(message, lines[0]), lines[0]
    assert [(folder / name).read_bytes() for name in inputs] == before
    assert not (folder / "m.h5").exists()
