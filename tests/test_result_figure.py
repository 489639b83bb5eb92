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
    ],
)
def test_a_bad_output_is_one_line_and_the_photos_stay(figure, tmp_path, output, message):
    for folder in ("demo", "demo_sharp"):
        shutil.copytree(REPO / "images" / folder, tmp_path / folder)
    before = (tmp_path / "demo" / "chelsea_00.png").read_bytes()
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
