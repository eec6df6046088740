"""Rules as data: strict, every error naming the rule and the field; presets for every kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.files import load_rules
from alerting.rules import RuleError, parse_duration, parse_rules
from devices.catalogue import KIND_NAMES

GOOD = """
rules:
  - name: ph-high
    severity: minor
    summary_zh: pH 高
    summary_en: pH high
    select: {kind: water_quality, metric: ph}
    condition: {threshold: {above: 8.5, for: 15m}}
"""


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace("severity: minor", "severity: huge"), "rule ph-high: severity:"),
    (GOOD.replace("above: 8.5", "abve: 8.5"), "rule ph-high: condition.threshold.abve: Extra inputs"),
    (GOOD.replace("above: 8.5, ", ""), "rule ph-high: condition.threshold: Value error, give exactly one"),
    (GOOD.replace("for: 15m", "for: soon"), "rule ph-high: condition.threshold.for: Value error, not a duration"),
    (GOOD.replace("threshold:", "treshold:"), "rule ph-high: condition.treshold: unknown condition"),
    (GOOD.replace("metric: ph", "metric: colour"), "rule ph-high: select.metric: kind water_quality has no metric"),
    (GOOD.replace("kind: water_quality", "kind: toaster"), "rule ph-high: select.kind: Value error, unknown kind"),
    (GOOD.replace("    select:", "    selct:"), "rule ph-high: selct: Extra inputs"),
    (GOOD + GOOD.replace("rules:\n", ""), "rule ph-high: name: defined twice"),
    ("rules: 3", "rules: must be a list"),
    ("rulez: []", "the file must hold one key"),
    ("rules: [", "not valid YAML"),
])
def test_every_error_names_the_rule_and_the_field(text, message):
    with pytest.raises(RuleError) as error:
        parse_rules(text, "site.yaml")
    assert str(error.value).startswith("site.yaml: ")
    assert message in str(error.value)


@pytest.mark.parametrize(("text", "seconds"), [(90, 90.0), ("30s", 30.0), ("10m", 600.0),
                                               ("2h", 7200.0), ("1d", 86400.0), ("1.5h", 5400.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_presets_cover_every_kind_and_a_file_replaces_or_disables_them(tmp_path: Path):
    presets = load_rules([])
    assert {r.select.kind for r in presets} >= set(KIND_NAMES)
    assert all(r.condition_type != "stopped" or r.select.kind for r in presets)
    site = tmp_path / "site.yaml"
    site.write_text(GOOD.replace("ph-high", "wq-ph-minor").replace("8.5", "8.2")
                    + "  - name: cam-stopped\n    enabled: false\n    severity: major\n"
                      "    summary_zh: x\n    summary_en: x\n    condition: {stopped: {}}\n")
    rules = {r.name: r for r in load_rules([str(site)])}
    assert rules["wq-ph-minor"].condition.above == 8.2
    assert "cam-stopped" not in rules
    assert len(rules) == len(presets) - 1
