"""configs/ holds YAML that mirrors the config dataclasses; it must load strictly and stay in sync."""

from pathlib import Path

import yaml

from openhuman.config import PipelineConfig, load_config, to_dict

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_default_yaml_is_the_default_config():
    cfg = load_config(CONFIGS / "default.yaml", PipelineConfig)
    assert cfg == PipelineConfig(), "configs/default.yaml is stale: regenerate it with `openhuman config`"


def test_default_yaml_names_every_field():
    data = yaml.safe_load((CONFIGS / "default.yaml").read_text())

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(data) == keys(to_dict(PipelineConfig()))
