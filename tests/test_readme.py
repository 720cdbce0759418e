"""The README's examples run as written (issue 19).

Every ```python block of README.md (and of the docs pages whose examples use only the sample data)
runs in a fresh folder that holds the checkout's sample_meshes/; the `shapeot register` command
runs end to end there. Every other command line of the README (templates, FreeSurfer subjects, the
app) is parsed by the real argument parsers: their options exist and take those values. The
FreeSurfer commands run end to end in tests/freesurfer/test_cli_workflow.py on subject folders
made there, the template command in tests/templates/test_cli.py.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: docs pages whose Python examples use only the sample data (the others show user paths)
RUNNABLE_DOCS = ("docs/registration.md", "docs/shapes.md")


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def _commands(block: str) -> list[str]:
    """The command lines of a bash block: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "sample_meshes").symlink_to(ROOT / "sample_meshes", target_is_directory=True)
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _python_examples():
    out = [("README.md", i, b) for i, b in enumerate(_blocks(ROOT / "README.md", "python"))]
    for page in RUNNABLE_DOCS:
        out += [(page, i, b) for i, b in enumerate(_blocks(ROOT / page, "python"))]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("page,index,code", _python_examples(), ids=lambda v: str(v)[:24])
def test_python_examples_run_without_warnings(workdir, page, index, code):
    from shapeot.ot.diagnostics import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # an example shows a converged plan
        exec(compile(code, f"{page} block {index}", "exec"), {"__name__": "readme_example"})


def _readme_commands() -> list[list[str]]:
    cmds = []
    for block in _blocks(ROOT / "README.md", "bash"):
        for line in _commands(block):
            if line.startswith(".venv/bin/"):
                line = re.sub(r"\[[^\]]*\]", "", line)  # optional parts in brackets: shown, not typed
                cmds.append(shlex.split(line))
    return cmds


def test_the_readme_shows_commands():
    progs = [c[0] for c in _readme_commands()]
    assert progs.count(".venv/bin/shapeot") >= 4 and ".venv/bin/shapeot-gui" in progs


def test_every_readme_command_parses():
    from shapeot.ui.app import build_parser as gui_parser

    from shapeot.cli import build_parser

    for cmd in _readme_commands():
        prog, args = Path(cmd[0]).name, cmd[1:]
        if prog == "shapeot-gui" and "SOURCE" in args:
            args = ["a.vtp", "b.vtp"] + args[2:]
        parser = build_parser() if prog == "shapeot" else gui_parser()
        try:
            parser.parse_args(args)
        except SystemExit as exc:  # argparse's error exit
            pytest.fail(f"README command does not parse: {' '.join(cmd)} (exit {exc.code})")


@pytest.mark.slow
def test_the_readme_register_command_runs(workdir):
    (cmd,) = [c for c in _readme_commands() if c[:2] == [".venv/bin/shapeot", "register"] and "sample_meshes" in c[2]]
    run = subprocess.run([sys.executable, "-m", "shapeot", *cmd[1:]], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Warning" not in run.stderr, run.stderr[-2000:]
    import json

    import shapeot

    summary = json.loads((workdir / "out" / "summary.json").read_text())
    warped = shapeot.load(workdir / "out" / "warped.vtp")
    assert warped.n_points == shapeot.load("sample_meshes/fsaverage5_lh_pial.gii").n_points
    assert summary["metrics"]["after"]["chamfer_surface"] < 0.5 * summary["metrics"]["before"]["chamfer_surface"]
