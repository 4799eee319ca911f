"""The strict loader: every error kind is reported as a value with its file and line."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from projections.rules.loader import (
    RuleSetError,
    check_path,
    list_rule_sets,
    load_rule_set,
)

G_YAML = """\
description: GP consultation
metadata:
  unit: EUR
  reference:
    2017-05-01: {title: "Tariff sheet 2017", href: "https://example.org/g2017"}
    2023-11-01: {title: "Tariff news 2023", href: "https://example.org/g2023"}
values:
  2017-05-01: {value: "25.00"}
  2023-11-01: {value: "26.50"}
"""
SNP_YAML = """\
description: SNP
metadata:
  unit: EUR
  reference:
    2022-07-13: {title: "Arrêté 2022", href: "https://example.org/snp"}
values:
  2022-07-13: {value: "15.00", confirmed: false, note: "amount to confirm"}
"""
RULES_YAML = """\
name: base
description: a small base
rules:
  - id: consultation
    code: G
    why: consultation
    when: {act_in: [consultation]}
  - id: snp
    code: SNP
    why: snp
    from: 2022-07-13
    until: 2023-05-14
    weekly_cap: 20
    when: {origin_in: [SAS]}
  - id: snp
    code: SNP
    why: snp
    from: 2023-05-15
    weekly_cap: 20
    when: {origin_in: [SAS, C15]}
"""
OVERLAY_YAML = """\
name: alt
description: an overlay
base: base
modifications:
  - {rule: snp, add_to: origin_in, values: [SOS]}
"""


def make(root: Path, files: dict[str, str]) -> Path:
    """Write a base rule set ``base`` (and ``alt``) with some files replaced."""
    default = {"base/rules.yaml": RULES_YAML, "base/parameters/G.yaml": G_YAML,
               "base/parameters/SNP.yaml": SNP_YAML, "alt/rules.yaml": OVERLAY_YAML}
    for rel, text in {**default, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def errors_of(root: Path, name: str = "base") -> list[tuple[str, int, str]]:
    with pytest.raises(RuleSetError) as info:
        load_rule_set(root / name)
    return [(Path(e.file).name, e.line, e.message) for e in info.value.errors]


def test_valid_base_and_overlay(tmp_path: Path) -> None:
    root = make(tmp_path, {})
    base, alt = load_rule_set(root / "base"), load_rule_set(root / "alt")
    assert base.value_at("G", date(2023, 10, 31)).value == Decimal("25.00")
    assert base.value_at("G", date(2023, 11, 1)).effective_from == date(2023, 11, 1)
    snp = [dict(r.conditions)["origin_in"] for r in alt.rules if r.id == "snp"]
    assert snp == [("SAS", "SOS"), ("SAS", "C15", "SOS")]
    assert next(dict(r.conditions)["origin_in"] for r in base.rules if r.id == "snp") == ("SAS",)
    assert alt.base == "base" and alt.content_hash != base.content_hash
    assert check_path(root) == []
    assert [n for n, _ in list_rule_sets(root)] == ["alt", "base"]


def test_content_hash_is_stable_and_canonical(tmp_path: Path) -> None:
    root = make(tmp_path, {})
    one, two = load_rule_set(root / "base"), load_rule_set(root / "base")
    assert one.content_hash == two.content_hash
    import hashlib
    assert hashlib.sha256(one.to_canonical_json().encode()).hexdigest() == one.content_hash
    packaged = load_rule_set("historical")
    assert packaged.content_hash == load_rule_set("historical").content_hash


def test_value_before_first_date_raises(tmp_path: Path) -> None:
    base = load_rule_set(make(tmp_path, {}) / "base")
    with pytest.raises(LookupError):
        base.value_at("G", date(2017, 4, 30))


@pytest.mark.parametrize(("text", "line", "fragment"), [
    (G_YAML.replace("  2023-11-01: {value: \"26.50\"}", "  2017-05-01: {value: \"26.50\"}"),
     9, "duplicate key '2017-05-01' (first at line 8)"),
    (G_YAML.replace("{value: \"25.00\"}", "{value: 25.00}"), 8, "quoted decimal string"),
    (G_YAML.replace("{value: \"25.00\"}", "{value: \"25\"}"), 8, "two decimals"),
    (G_YAML.replace("values:\n  2017-05-01", "values:\n  2017-02-30"), 8, "not a valid date"),
    (G_YAML.replace("values:\n  2017-05-01", "values:\n  1 May 2017"), 8, "not a date YYYY-MM-DD"),
    (G_YAML.replace("  unit: EUR", "  unit: EUR\n  colour: blue"), 4, "unknown key 'colour'"),
    (G_YAML.replace("    2023-11-01: {title: \"Tariff news 2023\", href: \"https://example.org/g2023\"}\n",
                    ""), 8, "value of 2023-11-01 has no reference"),
    (G_YAML.replace("{value: \"25.00\"}", "{value: \"25.00\", confirmed: false}"), 8,
     "a note must say what is unconfirmed"),
    (G_YAML.replace("href: \"https://example.org/g2017\"", "href: \"\""), 5, "href must be"),
    (G_YAML + "  2024-01-01: {value: \"27.00\", extra: 1}\n", 10, "unknown key 'extra'"),
])
def test_parameter_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    root = make(tmp_path, {"base/parameters/G.yaml": text})
    found = errors_of(root)
    assert any(f == "G.yaml" and ln == line and fragment in msg for f, ln, msg in found), found


@pytest.mark.parametrize(("old", "new", "line", "fragment"), [
    ("    code: G\n", "    code: GX\n", 5, "unknown parameter 'GX'"),
    ("from: 2023-05-15", "from: 2023-05-14", 15, "overlaps the version at line 8"),
    ("    when: {act_in: [consultation]}", "    when: {act_in: [surgery]}", 7, "unknown value(s)"),
    ("    when: {act_in: [consultation]}", "    when: {weather: sunny}", 7,
     "unknown key 'weather'"),
    ("    why: consultation\n", "    why: consultation\n    colour: red\n", 7,
     "unknown key 'colour'"),
    ("until: 2023-05-14", "until: 2023-13-14", 12, "not a valid date"),
    ("    weekly_cap: 20\n    when: {origin_in: [SAS, C15]}",
     "    weekly_cap: 19\n    when: {origin_in: [SAS, C15]}", 15, "same weekly_cap"),
    ("name: base", "name: other", 1, "differs from the folder name"),
    ("  - id: consultation\n", "  - id: consultation\n    id: again\n", 5, "duplicate key 'id'"),
])
def test_rules_errors(tmp_path: Path, old: str, new: str, line: int, fragment: str) -> None:
    assert old in RULES_YAML
    root = make(tmp_path, {"base/rules.yaml": RULES_YAML.replace(old, new)})
    found = errors_of(root)
    assert any(f == "rules.yaml" and ln == line and fragment in msg for f, ln, msg in found), found


def test_groups_are_checked(tmp_path: Path) -> None:
    text = RULES_YAML + ("exclusive_groups:\n  - id: g\n    description: d\n"
                         "    rules: [consultation, nothing]\n")
    found = errors_of(make(tmp_path, {"base/rules.yaml": text}))
    assert ("rules.yaml", 22, "group g: unknown rule 'nothing'") in found


@pytest.mark.parametrize(("text", "fragment"), [
    (OVERLAY_YAML.replace("rule: snp", "rule: nope"), "unknown rule 'nope'"),
    (OVERLAY_YAML.replace("values: [SOS]", "values: [MARS]"), "unknown value(s) ['MARS']"),
    (OVERLAY_YAML.replace("base: base", "base: missing"), "not a sibling rule-set folder"),
    (OVERLAY_YAML.replace("values: [SOS]", "values: [SOS], why: ' '"), "why must be a non-empty"),
])
def test_overlay_errors(tmp_path: Path, text: str, fragment: str) -> None:
    found = errors_of(make(tmp_path, {"alt/rules.yaml": text}), "alt")
    assert any(fragment in msg for _, _, msg in found), found


def test_errors_are_collected_not_raised_one_by_one(tmp_path: Path) -> None:
    bad_g = G_YAML.replace("{value: \"25.00\"}", "{value: 25.00}").replace("unit: EUR",
                                                                             "unit: EUR\n  x: 1")
    bad_rules = RULES_YAML.replace("code: G", "code: GX")
    errors = check_path(make(tmp_path, {"base/parameters/G.yaml": bad_g,
                                        "base/rules.yaml": bad_rules}) / "base")
    assert len(errors) >= 3
    assert {Path(e.file).name for e in errors} == {"G.yaml", "rules.yaml"}
    assert all(str(e).count(":") >= 2 for e in errors)


def test_invalid_yaml_and_single_file(tmp_path: Path) -> None:
    root = make(tmp_path, {"base/parameters/G.yaml": "description: [unclosed\n"})
    found = check_path(root / "base" / "parameters" / "G.yaml")
    assert found and found[0].line >= 1 and "invalid YAML" in found[0].message


def test_packaged_rule_sets_are_valid() -> None:
    from projections.rules.loader import DATA_DIR

    assert check_path(DATA_DIR) == []
    names = dict(list_rule_sets())
    assert {"historical", "parity"} <= set(names)


def test_an_overlay_gives_the_rules_it_widens_their_new_reason(tmp_path: Path) -> None:
    text = OVERLAY_YAML.replace("values: [SOS]", "values: [SOS], why: 'snp, SOS included'")
    alt = load_rule_set(make(tmp_path, {"alt/rules.yaml": text}) / "alt")
    assert {r.why for r in alt.rules if r.id == "snp"} == {"snp, SOS included"}
    assert {r.why for r in load_rule_set(tmp_path / "base").rules if r.id == "snp"} == {"snp"}
    # The packaged parity no longer says "SAS or Centre 15" where SOS regulation grants the SNP.
    assert {r.why for r in load_rule_set("parity").rules if r.id == "snp"} == {
        "regulated non-scheduled care (SAS, Centre 15 or SOS Médecins), within 48 h, outside "
        "PDSA hours"}
