"""Reading alerting's configuration files (adapter): the shipped rule presets, the county's
rule files and its routing file. What they say is checked by `rules` and `routing` (pure)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from alerting.routing import CONSOLE_ONLY, Routing, RoutingError, build_routing
from alerting.rules import Rule, parse_rules


def preset_texts() -> dict[str, str]:
    """The shipped preset files, by name."""
    folder = resources.files("alerting") / "presets"
    return {entry.name: entry.read_text(encoding="utf-8")
            for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def load_rules(files: list[str], presets: bool = True) -> list[Rule]:
    """The active rules: presets, then files in order; a same-named rule replaces it."""
    by_name: dict[str, Rule] = {}
    sources = sorted(preset_texts().items()) if presets else []
    sources += [(path, Path(path).read_text(encoding="utf-8")) for path in files]
    for source, text in sources:
        for rule in parse_rules(text, source):
            by_name[rule.name] = rule
    return [rule for rule in by_name.values() if rule.enabled]


def load_routing(path: str | None) -> Routing:
    """The routing file, or the local default: everything printed on the console."""
    if path is None:
        return build_routing(CONSOLE_ONLY, "default routing")
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RoutingError(f"{path}: not valid YAML: {exc}") from None
    return build_routing(document, path)


