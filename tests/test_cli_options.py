"""One typed path from an option to the stage: declared once, parsed once, each default written once.

The command line and the Python API take the same options, with the same defaults, parsed by the same parser;
the configs receive the parsed values unchanged; a wrong type or value from Python is one UsageError naming
the keyword, before any work.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import typer

import pipeline
from edge_runtime.choices import IoType, Precision
from pipeline.surface.cli.app import app
from pipeline.surface.keywords import bind, cli_options, command_options
from pipeline.surface.options import COMMANDS, FUNCTIONS
from pipeline.surface.parsing import NOTHING, field_default, text_of
from pipeline.surface.stage_configs import benchmark_config, convert_config
from tests.conftest import ROOT

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
# The API functions that together take a command's options (evaluate --on HOST is evaluate_on in Python).
FACES = {
    "evaluate": ("evaluate", "evaluate_on"),
    "benchmark": ("benchmark", "benchmark_on"),
    "import": ("import_model",),
}
ELSEWHERE = {"on", "emulate"}  # positional `hosts`/`cpus` of evaluate_on, benchmark_on, benchmark_emulated


def test_every_default_has_one_source() -> None:
    """An option reads its default from the config fields it feeds (which agree), or declares one; never both."""
    checked = 0
    for name in FUNCTIONS:
        for keyword, option in command_options(name).items():
            if option.opt.feeds:
                assert option.opt.default is NOTHING, f"{name}.{keyword}: a default beside its config field's"
                defaults = {repr(field_default(*feed)) for feed in option.opt.feeds}
                assert len(defaults) == 1, f"{name}.{keyword}: the fields it feeds disagree: {defaults}"
            checked += 1
    assert checked > 100


def test_no_help_text_writes_a_default_of_its_own() -> None:
    """The CLI and help() show each default from its source; what `unset` means is interpolated from its constant."""
    tree = ast.parse((ROOT / "pipeline" / "surface" / "options.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Opt" and node.args:
            help_node = node.args[0]
            if isinstance(help_node, ast.Constant):
                text = help_node.value
                assert not re.search(r"\(default|default:", text), text
                assert not re.search(r"unset: \d", text), f"a number written beside its constant: {text}"


def test_the_cli_and_the_api_take_the_same_options_with_the_same_defaults() -> None:
    group = typer.main.get_command(app)
    for command in COMMANDS:
        cli = {p.name: p for p in group.commands[command].params if p.name not in ("model_dir", "folders", "source")}
        assert set(cli) == set(cli_options(command)), command
        faces = FACES.get(command, (command,))
        api = {k for face in faces for k in inspect.signature(getattr(pipeline, face)).parameters}
        assert set(cli) - ELSEWHERE <= api, (command, set(cli) - ELSEWHERE - api)
        for face in faces:
            signature = inspect.signature(getattr(pipeline, face))
            for keyword, option in command_options(face).items():
                default = option.opt.default_value()
                assert signature.parameters[keyword].default == default, (face, keyword)
                assert signature.parameters[keyword].annotation == option.type, (face, keyword)
                shown = cli[keyword].default
                if default not in (None, (), False, True):
                    expected = [text_of(v) for v in default] if isinstance(shown, list) else text_of(default)
                    assert shown == expected, (command, keyword, shown)
        assert signature.return_annotation not in (inspect.Signature.empty, "Any"), command
        assert "Raises:" in (getattr(pipeline, faces[0]).__doc__ or ""), command


def test_calibration_samples_and_threads_reach_the_stage_as_one_type() -> None:
    """Python or command line, the stage's config holds the very tuple the parser made: no coercion in between."""
    from_python = bind("convert", {"calibration_samples": [100, 300], "precision": ["int8", "mixed"]})
    from_cli = bind("convert", {"calibration_samples": "100,300", "precision": ["int8,mixed"]}, cli=True)
    for values in (from_python, from_cli):
        config = convert_config(SHIPPED, "convert", values)
        assert config.calibration_samples == (100, 300) and type(config.calibration_samples) is tuple
        assert config.precisions == (Precision.INT8, Precision.MIXED) and config.io_type is IoType.INT8
    for values in (bind("benchmark", {"threads": 2}), bind("benchmark", {"threads": "2"}, cli=True)):
        assert benchmark_config(SHIPPED, "benchmark", values).threads == (2,)
    assert dataclasses.fields(type(convert_config(SHIPPED, "convert", from_python)))  # a plain dataclass, typed


FOLDER = str(SHIPPED)
WRONG = [
    (lambda: pipeline.convert(FOLDER, precision=123), "precision"),
    (lambda: pipeline.convert(FOLDER, precision="int4"), "precision"),
    (lambda: pipeline.convert(FOLDER, calibration_samples=5), "calibration_samples must be between 10"),
    (lambda: pipeline.convert(FOLDER, calibration_samples=[100, "x"]), "calibration_samples wants a whole number"),
    (lambda: pipeline.convert(FOLDER, io_type="int4"), "io_type 'int4' is not one of"),
    (lambda: pipeline.convert(FOLDER, target_runtime=2.14), "target_runtime wants text"),
    (lambda: pipeline.convert(FOLDER, min_agreement=0), "min_agreement must be above 0 and at most 100"),
    (lambda: pipeline.convert(123), "model_dir wants a path"),
    (lambda: pipeline.evaluate(FOLDER, max_drop="2"), "max_drop wants a number"),
    (lambda: pipeline.evaluate(FOLDER, max_drop=-1), "max_drop must be between 0 and 100"),
    (lambda: pipeline.evaluate(FOLDER, threads="1; rm -rf /"), "threads wants a whole number"),
    (lambda: pipeline.evaluate(FOLDER, threads=True), "threads wants a whole number"),
    (lambda: pipeline.evaluate_on(FOLDER), "hosts wants one or more"),
    (lambda: pipeline.benchmark(FOLDER, threads=100_000), "threads must be between 1 and 64"),
    (lambda: pipeline.benchmark(FOLDER, threads=[1, 0]), "threads must be between 1 and 64"),
    (lambda: pipeline.benchmark(FOLDER, runs=10**9), "runs must be between 1 and 100000"),
    (lambda: pipeline.benchmark(FOLDER, warmup=-1), "warmup must be between 0"),
    (lambda: pipeline.benchmark_on(FOLDER, "pi@host", runs=0), "runs must be between 1"),
    (lambda: pipeline.train(epochs=0), "epochs must be between 1"),
    (lambda: pipeline.train(epochs=1.5), "epochs wants a whole number"),
    (lambda: pipeline.train(batch_size="64"), "batch_size wants a whole number"),
    (lambda: pipeline.train(validation_split=0.7), "validation_split must be above 0 and below 0.5"),
    (lambda: pipeline.train(limit=5), "limit must be at least 20"),
    (lambda: pipeline.train(learning_rate=2), "learning_rate must be above 0 and below 1"),
    (lambda: pipeline.train(seed=-1), "seed must be between 0"),
    (lambda: pipeline.train(epoch=3), "train() has no option epoch; did you mean epochs?"),
    (lambda: pipeline.train(distribute="everywhere"), "distribute 'everywhere' is not one of"),
    (lambda: pipeline.run(epochs="3"), "epochs wants a whole number"),
    (lambda: pipeline.report(FOLDER, samples=1000), "samples must be between 0 and 200"),
    (lambda: pipeline.compare(FOLDER, baseline=123), "baseline wants a path"),
    (lambda: pipeline.deploy(FOLDER, to="pi@host", timeout=-5), "timeout must be above 0"),
    (lambda: pipeline.import_model(FOLDER, std=0), "std must be above 0"),
    (lambda: pipeline.import_model(FOLDER, mean="imagenet"), "mean wants a number"),
    (lambda: pipeline.import_model(FOLDER, output_index=-1), "output_index must be between 0 and 1000"),
    (lambda: pipeline.import_model(FOLDER), "is a model folder already"),
    (lambda: pipeline.import_model(SHIPPED / "labels.txt"), "not a model import takes"),
    (lambda: pipeline.ModelFolder(FOLDER).predict(SHIPPED / "samples", top_k=0), "top_k wants a whole number"),
]


@pytest.mark.parametrize(("call", "message"), WRONG, ids=[m.split()[0] for _, m in WRONG])
def test_a_wrong_type_or_value_from_python_is_a_usage_error_naming_the_keyword(call, message: str) -> None:
    with pytest.raises(pipeline.UsageError) as raised:
        call()
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_one_except_catches_every_error_of_a_notebook_session(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    attempts = [
        lambda: pipeline.ModelFolder(tmp_path / "missing"),
        lambda: pipeline.ModelFolder(SHIPPED).predict(tmp_path / "photos"),
        lambda: pipeline.ModelFolder(SHIPPED).predict(tmp_path / "nowhere.png"),
        lambda: pipeline.ModelFolder(SHIPPED).predict([SHIPPED / "samples" / "bag.jpg", 42]),
        lambda: pipeline.ModelFolder(SHIPPED).predict(SHIPPED / "samples", variant="int4"),
        lambda: pipeline.convert(tmp_path / "missing"),
    ]
    caught = []
    for attempt in attempts:
        try:
            attempt()
        except pipeline.PipelineError as error:
            caught.append(type(error).__name__)
    assert len(caught) == len(attempts), caught
    assert {"FolderError", "ImageError", "UsageError"} <= set(caught)


def test_predict_takes_paths_folders_lists_and_pil_images_with_one_decode_path() -> None:
    from PIL import Image

    folder = pipeline.ModelFolder(SHIPPED)
    bag = SHIPPED / "samples" / "bag.jpg"
    by_path, by_image = folder.predict(bag, top_k=3), folder.predict(Image.open(bag), top_k=3)
    assert [c.score for c in by_path[0].top] == [c.score for c in by_image[0].top]  # the same pixels, exactly
    everything = folder.predict([SHIPPED / "samples", str(bag)], top_k=1)
    assert len(everything) == len(list((SHIPPED / "samples").iterdir())) + 1
    assert all(p.label for p in everything) and everything[-1].label == by_path[0].label
    assert isinstance(folder.variants, list) and folder.variant(folder.variants[0].precision)
