"""The CLI contract: every command answers --help; `models --json` lists the registries."""
import json

import pytest
from click.testing import CliRunner

from edge_deeplab.cli import main
from edge_deeplab.converters import FORMATS
from edge_deeplab.models import BACKBONES, HEADS
from edge_deeplab.runtimes import RUNTIMES
from edge_deeplab.zoo import ZOO

COMMANDS = ["segment", "benchmark", "evaluate", "export", "train", "search", "models"]


def test_contract_commands_exist():
    assert set(COMMANDS) <= set(main.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_models_json_lists_every_registry():
    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["zoo"] == ZOO.names()
    assert info["backbones"] == BACKBONES.names()
    assert info["heads"] == HEADS.names()
    assert info["formats"] == FORMATS.names()
    assert [r["name"] for r in info["runtimes"]] == RUNTIMES.names()
    for row in info["runtimes"]:
        assert isinstance(row["available"], bool)
        assert row["available"] or row["reason"]
    assert {r["name"]: r["available"] for r in info["runtimes"]}["litert"] is True


def test_models_table_names_unavailable_runtimes_with_reason():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    for entry in RUNTIMES:
        assert entry.name in result.output
    assert "portrait" in result.output


def test_usage_error_exits_2():
    result = CliRunner().invoke(main, ["segment"])
    assert result.exit_code == 2
