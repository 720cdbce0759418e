"""The command line's shared options: one device default and one backend list everywhere, global
options after the sub-command, ``--print-config`` that prints and exits, help without doubled
defaults. Parsed by the real parser; the printed configurations read back through the library."""
from __future__ import annotations

import argparse
import tomllib

import pytest

from shapeot.cli import build_parser, main

REGISTERING = ("register", "register-many", "template")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(sub: argparse.ArgumentParser, flag: str):
    return next((a for a in sub._actions if flag in a.option_strings), None)


def test_every_registering_command_has_the_same_options():
    from shapeot.cli.common import BACKENDS

    subs = _subparsers(build_parser())
    for name in REGISTERING:
        for flag in ("--config", "--print-config", "--json", "--device", "--backend"):
            assert _option(subs[name], flag) is not None, f"{name} lacks {flag}"
        assert _option(subs[name], "--device").default is None  # the configuration's: auto
        assert tuple(_option(subs[name], "--backend").choices) == tuple(BACKENDS)
    for name in ("register", "register-many"):
        for flag in ("--itk-transform", "--itk-inverse", "--ants", "--reference"):
            assert _option(subs[name], flag) is not None, f"{name} lacks {flag}"
    assert "triton" in BACKENDS and tuple(_option(subs["match"], "--backend").choices) == tuple(BACKENDS)


def test_help_never_doubles_a_default():
    subs = _subparsers(build_parser())
    for name, sub in subs.items():
        text = " ".join(sub.format_help().split())
        assert "(default: None)" not in text, name
        for action in sub._actions:
            assert (action.help or "").count("default") <= 1, (name, action.option_strings)


@pytest.mark.parametrize("argv", [["--quiet", "--threads", "1", "register", "a", "b"],
                                  ["register", "a", "b", "--quiet", "--threads", "1"],
                                  ["register", "--quiet", "a", "b", "--threads", "1"]])
def test_global_options_before_or_after_the_sub_command(argv):
    args = build_parser().parse_args(argv)
    assert args.quiet is True and args.threads == 1 and args.command == "register"


def test_global_options_keep_their_defaults_when_absent():
    args = build_parser().parse_args(["register", "a", "b"])
    assert args.quiet is False and args.threads is None


def test_print_config_prints_and_exits_without_output_or_inputs(tmp_path, capsys):
    from shapeot.registration import RegistrationConfig
    from shapeot.templates import TemplateConfig

    config = tmp_path / "c.toml"
    config.write_text("working_points = 700\n[prealign]\nstarts = 2\n")
    for argv, cls in ((["register", "nowhere_a.vtp", "nowhere_b.vtp", "--config", str(config)], RegistrationConfig),
                      (["register-many", "nowhere", "nowhere.vtp", "--config", str(config)], RegistrationConfig)):
        assert main([*argv, "--print-config"]) == 0
        printed = capsys.readouterr().out
        back = cls.from_dict(tomllib.loads(printed.split("\n", 1)[1] if printed.startswith("#") else printed))
        assert back.working_points == 700 and back.prealign.starts == 2
    assert main(["template", "nowhere", "--print-config", "--preset", "nonrigid"]) == 0
    printed = capsys.readouterr().out
    tpl = TemplateConfig.from_dict(tomllib.loads(printed))
    assert tpl == TemplateConfig.from_dict(tpl.to_dict()) and tpl.registration.preset == "nonrigid"
    assert list(tmp_path.iterdir()) == [config]


def test_output_is_required_without_print_config(tmp_path, capsys):
    assert main(["register", str(tmp_path / "a.vtp"), str(tmp_path / "b.vtp")]) == 2
    assert "-o/--output is required" in capsys.readouterr().err


def test_template_config_from_a_file(tmp_path, capsys):
    from shapeot.templates import TemplateConfig

    config = tmp_path / "t.toml"
    config.write_text("iterations = 2\n[registration]\nworking_points = 900\n[registration.prealign]\nstarts = 3\n")
    assert main(["template", "nowhere", "--config", str(config), "--print-config"]) == 0
    tpl = TemplateConfig.from_dict(tomllib.loads(capsys.readouterr().out))
    assert tpl.iterations == 2 and tpl.registration.working_points == 900 and tpl.registration.prealign.starts == 3
    config.write_text("iterations = \"two\"\n")
    assert main(["template", "nowhere", "--config", str(config), "--print-config"]) == 2
    assert "iterations" in capsys.readouterr().err
