"""The `vov3d` command: verbs from one list, a user's mistake is one line and exit status 2."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import vov3d.cli
from vov3d.cli import build_parser, main
from vov3d.cli.main import VERB_MODULES

SRC = Path(vov3d.cli.__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    """`vov3d ...` in a real process."""
    return subprocess.run([sys.executable, "-m", "vov3d.cli", *args], capture_output=True, text=True, timeout=120)


def test_every_listed_verb_is_registered_and_in_the_help():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(subparsers.choices) == list(VERB_MODULES) == [
        "run", "train", "test", "predict", "export", "explain", "bench", "models", "flops", "data"
    ]
    data = next(a for a in subparsers.choices["data"]._actions if a.dest == "data_command")
    assert list(data.choices) == ["synth", "check"]
    result = _run("--help")
    assert result.returncode == 0
    for verb in VERB_MODULES:
        assert f"    {verb} " in result.stdout


def test_the_console_script_is_this_main():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "vov3d"]
    assert script.value == "vov3d.cli:main" and script.load() is main


@pytest.mark.parametrize(
    "args, message",
    [
        (["flops", "vov3d_xxl"], "vov3d flops: error: unknown model 'vov3d_xxl'; available models: vov3d_l,"),
        (["data", "check", "{tmp}/none"], "vov3d data check: error: {tmp}/none/train.csv: annotation file not found"),
        (["data", "check", "{tmp}", "--format", "ssv2"], "vov3d data check: error: {tmp}/something-something-v2-labels.json"),
        (["data", "synth", "--out", "{tmp}", "--num-train", "-1"], "vov3d data synth: error: num_train must be a non-negative integer, got -1"),
    ],
)
def test_a_users_mistake_is_one_line_on_stderr_and_exit_status_2(tmp_path, args, message):
    result = _run(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    assert result.stderr.startswith(message.format(tmp=tmp_path))
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_usage_errors_are_argparses(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check"])  # the folder is required
    assert exit_.value.code == 2
    assert "the following arguments are required: data_dir" in capsys.readouterr().err


def test_a_key_error_is_shown_without_quotes(capsys, monkeypatch):
    import vov3d.cli.models as models_verb

    def run(args):
        raise KeyError("no class list: CLASS_NAMES")

    monkeypatch.setattr(models_verb, "run", run)
    assert main(["models"]) == 2
    assert capsys.readouterr().err == "vov3d models: error: no class list: CLASS_NAMES\n"


def test_a_bug_is_not_disguised_as_a_users_mistake(monkeypatch):
    import vov3d.cli.models as models_verb

    def run(args):
        raise TypeError("a programming error")

    monkeypatch.setattr(models_verb, "run", run)
    with pytest.raises(TypeError):
        main(["models"])


def test_nothing_outside_the_cli_imports_it():
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.parent.name == "cli" and path.parent.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(SRC)}: {n}" for n in names if n == "vov3d.cli" or n.startswith("vov3d.cli.")]
    assert offenders == []


@pytest.mark.parametrize(
    "verb, entry",
    [
        ("run", "vov3d.engine.commands:run_main"),
        ("train", "vov3d.engine.commands:train_main"),
        ("test", "vov3d.engine.commands:test_main"),
        ("predict", "vov3d.engine.predict:main"),
        ("export", "vov3d.engine.export:main"),
        ("explain", "vov3d.engine.explain:main"),
        ("bench", "vov3d.engine.bench:main"),
    ],
)
def test_an_engine_verb_hands_the_rest_of_the_command_line_to_its_main(verb, entry, capsys):
    module = importlib.import_module(f"vov3d.cli.{verb}")
    assert module.ENTRY == entry
    try:
        status = main([verb, "--help"])
    except SystemExit as stop:  # argparse's --help, where the verb's main lets it through
        status = stop.code
    assert status == 0
    assert f"usage: vov3d {verb}" in capsys.readouterr().out


def test_run_with_a_missing_config_file_names_it_and_exits_2(tmp_path, capsys):
    missing = tmp_path / "no_such.yaml"
    assert main(["run", "--cfg", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err


def test_models_pretrained_lists_the_released_weights_with_their_licence(capsys):
    assert main(["models", "--pretrained"]) == 0
    out = capsys.readouterr().out
    for tag in ("k400", "ssv2_f32_finetune"):
        assert f"\n{tag} " in out
    assert "CC-BY-NC 4.0" in out
