"""benchmarks/plot_training_curve.py: steps and CPU-hours continue across a branched run."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
HEADER = "epoch,val/psnr,steps,cpu_seconds\n"


@pytest.fixture(scope="module")
def curve():
    return load_script("plot_training_curve", "benchmarks")


def test_a_branched_run_continues_the_steps_and_cpu_time_of_its_start_epoch(curve, tmp_path):
    (tmp_path / "first.csv").write_text(HEADER + "0,24.0,100,1800\n1,24.5,200,3600\n2,24.4,300,3600\n")
    (tmp_path / "second.csv").write_text(HEADER + "0,24.9,50,720\n")
    segments = curve.read_segments([f"a={tmp_path}/first.csv", f"b={tmp_path}/second.csv@1"])

    first, second = (rows for _, rows in segments)
    assert [(r["total_steps"], round(r["cpu_hours"], 6)) for r in first] == [
        (100, 0.5),
        (200, 1.5),
        (300, 2.5),
    ]
    assert [(r["total_steps"], round(r["cpu_hours"], 6)) for r in second] == [(250, 1.7)]  # from epoch 1


def test_the_script_writes_the_figure_and_a_row_per_epoch(curve, tmp_path):
    run = tmp_path / "exp@2" / "run.csv"  # an @ in a folder's name is no @EPOCH
    run.parent.mkdir()
    run.write_text(HEADER + "0,24.0,100,1800\n1,24.5,200,3600\n2,,300,3600\n")  # 2: resumed unvalidated
    for extra in ([], ["--blurred", "23.5", "--shipped", "24.2"]):
        output = tmp_path / f"curve{len(extra)}.png"
        result = CliRunner().invoke(curve.main, ["--run", f"a={run}", "--output", str(output), *extra])
        assert result.exit_code == 0, result.output
        assert "| a | 1 | 200 | 1.50 | 24.50 |\n| a | 2 | 300 | 2.50 | - |" in result.output
        assert output.read_bytes().startswith(b"\x89PNG")
    again = CliRunner().invoke(curve.main, ["--run", f"a={run}", "--output", str(output), "--overwrite"])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(
    ("runs", "output", "message"),
    [
        (["{d}/missing.csv"], "c.png", "--run {d}/missing.csv: give LABEL=LOSSES_CSV"),
        (["a={d}/missing.csv"], "c.png", "--run a={d}/missing.csv: {d}/missing.csv is not a file"),
        (["a={d}/run.csv@1"], "c.png", "@EPOCH continues an earlier --run; give that run first"),
        (["a={d}/run.csv", "b={d}/run.csv@5"], "c.png", "a has no epoch '5' (it has 0 to 1)"),
        (["a={d}/noval.csv"], "c.png", "noval.csv has no val/psnr column"),
        (["a={d}/run.csv"], "c.txt", "--output c.txt: give a .png file"),
        (["a={d}/run.csv"], "run.csv/c.png", "--output {d}/run.csv: cannot write there (is a file)"),
        (["a={d}/binary.csv"], "c.png", "--run a={d}/binary.csv: {d}/binary.csv is not a CSV file"),
        (
            ["a={d}/run.csv"],
            "taken.png",
            "--output {d}/taken.png: already exists; choose another name, or pass --overwrite to replace it",
        ),
    ],
)
def test_bad_input_is_one_line(curve, tmp_path, runs, output, message):
    """Each was a traceback (FileNotFoundError, IndexError, KeyError, NotADirectoryError)."""
    (tmp_path / "run.csv").write_text(HEADER + "0,24.0,100,1800\n1,24.5,200,3600\n")
    (tmp_path / "noval.csv").write_text("epoch,steps,cpu_seconds\n0,100,1800\n")
    (tmp_path / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    (tmp_path / "taken.png").write_bytes(b"the user's")
    args = [a for run in runs for a in ("--run", run.format(d=tmp_path))]
    output = output if output.startswith("c.") else f"{tmp_path}/{output}"
    result = CliRunner().invoke(curve.main, [*args, "--output", output])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and message.format(d=tmp_path) in line, line
