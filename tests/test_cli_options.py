"""Every CLI default is its stage config's default (one place), and choices are validated by Typer."""

from __future__ import annotations

import dataclasses
import keyword

import typer

from edge_runtime.choices import IoType, Precision, Route
from pipeline.conversion.stage import ConvertConfig
from pipeline.surface.cli.app import app
from pipeline.surface.options import OPTIONS
from pipeline.training.stage import HyperParams

COMMANDS = ("train", "convert", "evaluate", "benchmark", "deploy", "report", "run")


def _field_default(cls: type, name: str) -> object:
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def test_every_registered_cli_default_equals_its_config_default() -> None:
    group = typer.main.get_command(app)
    checked = 0
    for command in COMMANDS:
        for param in group.commands[command].params:
            option = OPTIONS[param.name]
            if option.source is None:
                continue
            expected = _field_default(*option.source)
            if param.name == "threads":
                expected = ",".join(map(str, expected))
            assert param.default == expected, f"{command} {param.name}: CLI {param.default!r}, config {expected!r}"
            checked += 1
    assert checked > 60  # every command's options, run's included
    # the values the configs' own defaults are written as, once
    assert HyperParams().epochs == 12 and HyperParams().seed == 42 and OPTIONS["epochs"].value == 12
    assert ConvertConfig.io_type is IoType.INT8 and ConvertConfig.route is Route.AUTO


def test_precision_default_means_every_precision() -> None:
    from pipeline.surface.stage_configs import precisions

    assert OPTIONS["precision"].value is None and precisions(None) == tuple(Precision) == ConvertConfig.precisions
    assert precisions([Precision.INT8, Precision("float16")]) == (Precision.INT8, Precision.FLOAT16)


def test_configs_accept_spellings_and_refuse_unknown_ones(tmp_path: object) -> None:
    import pytest

    from pipeline.errors import UsageError

    config = ConvertConfig(folder=tmp_path, precisions=("int8", "float16"), io_type="uint8", route="saved-model")
    assert config.precisions == (Precision.INT8, Precision.FLOAT16) and config.io_type is IoType.UINT8
    with pytest.raises(UsageError, match="unknown precision 'int4'"):
        ConvertConfig(folder=tmp_path, precisions=("int4",))
    with pytest.raises(UsageError, match="--route 'fast' is not one of auto, saved-model, keras-litert"):
        ConvertConfig(folder=tmp_path, route="fast")


def test_the_python_api_takes_the_cli_options_with_the_same_defaults() -> None:
    """One table, two faces: each API function's keywords are its command's flags, defaults included."""
    import inspect

    import pipeline
    from pipeline.surface.keywords import api_name

    group = typer.main.get_command(app)
    for command in COMMANDS:
        cli = {param.name: param for param in group.commands[command].params}
        api = inspect.signature(getattr(pipeline, command)).parameters
        assert set(api) - {"progress", "reporter"} == {api_name(key) for key in cli}, command
        for key, param in cli.items():
            flag = next((o for o in param.opts if o.startswith("--")), None)
            spelled = flag.removeprefix("--").replace("-", "_") if flag else None
            assert flag is None or spelled == api_name(key) or keyword.iskeyword(spelled), (command, key)
            if param.default is not None and not param.required:
                assert api[api_name(key)].default == param.default, (command, key)
        assert pipeline.__doc__ and getattr(pipeline, command).__doc__.count("\n    ") >= len(cli), command
