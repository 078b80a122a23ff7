import json

import pytest

from edge_deeplab.errors import ConfigError, UnknownChoiceError
from edge_deeplab.models import BACKBONES, HEADS, ModelConfig
from edge_deeplab.zoo import ZOO


@pytest.mark.parametrize("name", ZOO.names())
def test_zoo_configs_round_trip_json_and_yaml(name, tmp_path):
    config = ZOO.load(name)
    assert ModelConfig.from_json(config.to_json()) == config
    assert ModelConfig.from_yaml(config.to_yaml()) == config
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"c{suffix}"
        config.save(path)
        assert ModelConfig.load(path) == config


def test_json_lists_become_tuples():
    config = ModelConfig.from_dict({"aspp_rates": [12, 24, 36], "input_size": [128, 96],
                                    "output_stride": 8, "width": 1})
    assert config.aspp_rates == (12, 24, 36) and config.input_size == (128, 96)
    assert isinstance(config.width, float)
    assert json.loads(config.to_json())["aspp_rates"] == [12, 24, 36]


def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(UnknownChoiceError) as err:
        ModelConfig.from_dict({"outputstride": 16})
    message = str(err.value)
    assert "'output_stride'" in message and "head_channels" in message


@pytest.mark.parametrize("field,value,registry", [("backbone", "resnet50", BACKBONES),
                                                  ("head", "psp", HEADS)])
def test_unknown_registry_value_lists_choices(field, value, registry):
    with pytest.raises(UnknownChoiceError) as err:
        ModelConfig(**{field: value})
    assert all(name in str(err.value) for name in registry.names())


@pytest.mark.parametrize("changes,fragment", [
    ({"output_stride": 4}, "output_stride"),
    ({"width": 2.0}, "width of mobilenet_v2"),
    ({"num_classes": 1}, "num_classes"),
    ({"num_classes": 3, "labels": ("a", "b")}, "labels"),
    ({"input_size": (100, 100)}, "multiples of output_stride"),
    ({"aspp_rates": (6, 0)}, "aspp_rates"),
])
def test_invalid_values_are_rejected_with_reason(changes, fragment):
    with pytest.raises((ConfigError, UnknownChoiceError), match=fragment):
        ModelConfig(**changes)


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match="output_stride must be int"):
        ModelConfig.from_dict({"output_stride": "16"})


def test_config_is_frozen():
    config = ModelConfig()
    with pytest.raises(AttributeError):
        config.width = 0.5  # type: ignore[misc]
    assert config.replace(width=0.5).width == 0.5


def test_bad_files_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        ModelConfig.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.load(bad)
