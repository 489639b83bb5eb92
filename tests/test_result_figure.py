"""benchmarks/make_result_figure.py: the README's figure never overwrites the photos it shows."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figure():
    return load_script("make_result_figure", "benchmarks").main


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("demo/chelsea_00.png", "is one of the input photos; write the figure elsewhere"),  # overwrote it
        ("figure.txt", "give a .png file"),
        ("demo/chelsea_00.png/figure.png", "cannot write there"),
        ("figure.png", "already exists; choose another name, or pass --overwrite to replace it"),
    ],
)
def test_a_bad_output_is_one_line_and_the_photos_stay(figure, tmp_path, output, message):
    for folder in ("demo", "demo_sharp"):
        shutil.copytree(REPO / "images" / folder, tmp_path / folder)
    before = (tmp_path / "demo" / "chelsea_00.png").read_bytes()
    (tmp_path / "figure.png").write_bytes(before)  # a file of the user's at the figure's name
    args = [
        "--demo_dir",
        tmp_path / "demo",
        "--sharp_dir",
        tmp_path / "demo_sharp",
        "--output",
        tmp_path / output,
    ]
    result = CliRunner().invoke(figure, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: --output ") and message in line, line
    assert (tmp_path / "demo" / "chelsea_00.png").read_bytes() == before


def test_photos_of_two_sizes_are_refused_before_any_work(figure, tmp_path):
    shutil.copytree(REPO / "images" / "demo", tmp_path / "demo")
    (tmp_path / "demo_sharp").mkdir()
    shutil.copy(REPO / "images" / "test" / "B" / "coins_00.png", tmp_path / "demo_sharp" / "coins_00.png")
    args = [
        "--demo_dir",
        tmp_path / "demo",
        "--sharp_dir",
        tmp_path / "demo_sharp",
        "--names",
        "coins_00.png",
    ]
    result = CliRunner().invoke(figure, [str(a) for a in [*args, "--output", tmp_path / "f.png"]])
    assert result.exit_code == 2, result.output
    assert "a blurred/sharp pair must have the same size" in result.output
    assert not (tmp_path / "f.png").exists()
