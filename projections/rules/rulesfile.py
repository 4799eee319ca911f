"""Reading ``rules.yaml``: a base rule set's rules and groups, or an overlay's modifications.

Errors are collected as ``RuleFileError`` values (see ``params.Errors``); nothing is raised.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import date
from itertools import pairwise
from typing import Any

from projections.rules.calendar import parse_hhmm
from projections.rules.conditions import CONDITIONS
from projections.rules.model import ExclusiveGroup, Rule, RuleSet
from projections.rules.params import Errors, check_keys, parse_date
from projections.rules.yamlsrc import LineDict, LineList, line_of

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
BASE_KEYS = {"name", "description", "options", "rules", "exclusive_groups"}
OVERLAY_KEYS = {"name", "description", "base", "modifications"}
RULE_KEYS = {"id", "code", "why", "from", "until", "when", "weekly_cap", "note"}
GROUP_KEYS = {"id", "description", "rules"}
OPTION_KEYS = {"saturday_afternoon_pdsa_from"}
MOD_KEYS = {"rule", "add_to", "remove_from", "set", "unset", "values", "value", "set_option", "note",
            "why"}
MOD_ACTIONS = ("add_to", "remove_from", "set", "unset", "set_option")


def header(doc: Any, errors: Errors, overlay: bool) -> tuple[str, str]:
    """Check the top-level keys; return the rule set's name and description."""
    keys = OVERLAY_KEYS if overlay else BASE_KEYS
    required = {"name", "description", "base", "modifications"} if overlay else {
        "name", "description", "rules"}
    if not check_keys(doc, keys, errors, "rules.yaml", required):
        return "", ""
    name, description = doc.get("name"), doc.get("description")
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.add(line_of(doc, "name"), f"name {name!r} must be lower-case letters, digits, - or _")
        name = ""
    if not isinstance(description, str) or not description.strip():
        errors.add(line_of(doc, "description"), "description must be a non-empty text")
        description = ""
    return name, description


def parse_options(node: Any, errors: Errors) -> dict[str, Any]:
    """The rule-set options (all keys present, None when off)."""
    options: dict[str, Any] = dict.fromkeys(sorted(OPTION_KEYS))
    if node is None or not check_keys(node, OPTION_KEYS, errors, "options"):
        return options
    for key, value in node.items():
        if key == "saturday_afternoon_pdsa_from" and value is not None:
            try:
                parse_hhmm(str(value))
            except ValueError as exc:
                errors.add(line_of(node, key), f"options.{key}: {exc}")
                continue
        options[key] = value
    return options


def parse_conditions(node: Any, errors: Errors, what: str) -> tuple[tuple[str, Any], ...]:
    """A rule's ``when:`` mapping checked against the closed condition language."""
    if not check_keys(node, set(CONDITIONS), errors, f"{what} when"):
        return ()
    out = []
    for key, value in node.items():
        if key not in CONDITIONS:
            continue
        try:
            out.append((key, CONDITIONS[key].parse(value)))
        except ValueError as exc:
            errors.add(line_of(node, key), f"{what} when.{key}: {exc}")
    return tuple(out)


def parse_rules(doc: LineDict, codes: set[str], errors: Errors) -> tuple[list[Rule], list[int]]:
    """The rules of a base ``rules.yaml`` and the line of each."""
    node = doc.get("rules")
    rules: list[Rule] = []
    lines: list[int] = []
    if not isinstance(node, LineList) or not node:
        errors.add(line_of(doc, "rules"), "rules must be a non-empty list")
        return rules, lines
    for i, item in enumerate(node):
        line = line_of(node, i)
        if not check_keys(item, RULE_KEYS, errors, f"rule #{i + 1}", {"id", "code", "why", "when"}):
            continue
        rid, code, why = item.get("id"), item.get("code"), item.get("why")
        what = f"rule {rid}"
        if not isinstance(rid, str) or not NAME_RE.match(rid):
            errors.add(line_of(item, "id"), f"rule id {rid!r} must be lower-case letters, digits, - or _")
            continue
        if code not in codes:
            errors.add(line_of(item, "code"), f"{what}: unknown parameter {code!r}")
        if not isinstance(why, str) or not why.strip():
            errors.add(line_of(item, "why"), f"{what}: why must be a non-empty text")
        start = (parse_date(item["from"], errors, line_of(item, "from"), f"{what} from")
                 if "from" in item else None)
        end = (parse_date(item["until"], errors, line_of(item, "until"), f"{what} until")
               if "until" in item else None)
        if start and end and end < start:
            errors.add(line_of(item, "until"), f"{what}: until {end} is before from {start}")
        cap = item.get("weekly_cap")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            errors.add(line_of(item, "weekly_cap"), f"{what}: weekly_cap must be a positive integer")
            cap = None
        note = item.get("note")
        conditions = parse_conditions(item.get("when"), errors, what)
        rules.append(Rule(rid, str(code), str(why), conditions, start, end, cap,
                          note if isinstance(note, str) else None))
        lines.append(line)
    return rules, lines


def parse_groups(doc: LineDict, errors: Errors) -> tuple[list[ExclusiveGroup], list[int]]:
    """The exclusivity groups of a base ``rules.yaml`` and the line of each."""
    node = doc.get("exclusive_groups")
    groups: list[ExclusiveGroup] = []
    lines: list[int] = []
    if node is None:
        return groups, lines
    if not isinstance(node, LineList):
        errors.add(line_of(doc, "exclusive_groups"), "exclusive_groups must be a list")
        return groups, lines
    for i, item in enumerate(node):
        if not check_keys(item, GROUP_KEYS, errors, f"group #{i + 1}", GROUP_KEYS):
            continue
        members = item.get("rules")
        if not isinstance(members, list) or len(members) < 2 or not all(
                isinstance(m, str) for m in members):
            errors.add(line_of(item, "rules"), "a group lists at least two rule ids")
            continue
        groups.append(ExclusiveGroup(str(item.get("id")), str(item.get("description")),
                                     tuple(members)))
        lines.append(line_of(node, i))
    return groups, lines


def validate(rules: Sequence[Rule], lines: Sequence[int], groups: Sequence[ExclusiveGroup],
             group_lines: Sequence[int], errors: Errors) -> None:
    """Cross-checks: disjoint periods per rule id, groups naming known, uncapped rules once."""
    by_id: dict[str, list[tuple[Rule, int]]] = {}
    for rule, line in zip(rules, lines, strict=True):
        by_id.setdefault(rule.id, []).append((rule, line))
    for rid, versions in by_id.items():
        if len({r.weekly_cap for r, _ in versions}) > 1:
            errors.add(versions[-1][1], f"rule {rid}: every version must have the same weekly_cap")
        ordered = sorted(versions, key=lambda v: (v[0].valid_from or date.min, v[1]))
        for (a, line_a), (b, line_b) in pairwise(ordered):
            if a.valid_until is None or (b.valid_from or date.min) <= a.valid_until:
                errors.add(line_b, f"rule {rid}: period {b.period_text()} overlaps the version at "
                                   f"line {line_a} ({a.period_text()})")
    seen: dict[str, str] = {}
    for group, line in zip(groups, group_lines, strict=True):
        for member in group.rules:
            if member not in by_id:
                errors.add(line, f"group {group.id}: unknown rule {member!r}")
            elif member in seen:
                errors.add(line, f"group {group.id}: rule {member} is already in group {seen[member]}")
            elif by_id[member][0][0].weekly_cap is not None:
                errors.add(line, f"group {group.id}: capped rule {member} cannot be in a group")
            seen.setdefault(member, group.id)


def apply_modifications(base: RuleSet, node: Any, errors: Errors,
                        ) -> tuple[list[Rule], dict[str, Any], list[dict[str, Any]]]:
    """Apply an overlay's modifications to a copy of its base's rules and options.

    Args:
        base: the resolved base rule set (left unchanged).
        node: the overlay's ``modifications`` list.
        errors: where problems are recorded.

    Returns:
        The modified rules, the modified options and the modifications as plain JSON.
    """
    rules = list(base.rules)
    options = dict(base.options)
    done: list[dict[str, Any]] = []
    if not isinstance(node, LineList) or not node:
        errors.add(line_of(node), "modifications must be a non-empty list")
        return rules, options, done
    for i, mod in enumerate(node):
        line = line_of(node, i)
        if not check_keys(mod, MOD_KEYS, errors, f"modification #{i + 1}"):
            continue
        actions = [a for a in MOD_ACTIONS if a in mod]
        if len(actions) != 1:
            errors.add(line, f"modification #{i + 1} needs exactly one of {', '.join(MOD_ACTIONS)}")
            continue
        action = actions[0]
        if action == "set_option":
            key = mod["set_option"]
            opt_errors = Errors(errors.file)
            parsed = parse_options(_one({key: mod.get("value")}, line), opt_errors)
            errors.extend(opt_errors)
            if not opt_errors:
                options.update(parsed)
        else:
            rules = _modify_rule(rules, mod, action, line, errors)
        done.append({k: _plain(v) for k, v in mod.items()})
    return rules, options, done


def _modify_rule(rules: list[Rule], mod: LineDict, action: str, line: int,
                 errors: Errors) -> list[Rule]:
    rid, key = mod.get("rule"), mod.get(action)
    why = mod.get("why")
    if why is not None and (not isinstance(why, str) or not why.strip()):
        errors.add(line, "why must be a non-empty text (the modified rule's new reason)")
        return rules
    if key not in CONDITIONS:
        errors.add(line, f"{action}: unknown condition {key!r}")
        return rules
    if not any(r.id == rid for r in rules):
        errors.add(line, f"modification of unknown rule {rid!r}")
        return rules
    out = []
    for rule in rules:
        if rule.id != rid:
            out.append(rule)
            continue
        when = dict(rule.conditions)
        if why is not None:  # what the explanations say the modified rule grants for
            rule = dataclasses.replace(rule, why=why.strip())
        if action in ("add_to", "remove_from"):
            values = mod.get("values")
            if key not in when or not isinstance(values, list):
                errors.add(line, f"{action}: rule {rid} ({rule.period_text()}) has no list "
                                 f"condition {key!r}, or values is not a list")
                return rules
            current = list(when[key])
            new = (current + [v for v in values if v not in current] if action == "add_to"
                   else [v for v in current if v not in values])
            raw: Any = new
        elif action == "set":
            raw = mod.get("value")
        else:
            when.pop(key, None)
            out.append(dataclasses.replace(rule, conditions=tuple(when.items())))
            continue
        try:
            when[key] = CONDITIONS[key].parse(_plain(raw))
        except ValueError as exc:
            errors.add(line, f"rule {rid} when.{key}: {exc}")
            return rules
        out.append(dataclasses.replace(rule, conditions=tuple(when.items())))
    return out


def _one(mapping: dict[str, Any], line: int) -> LineDict:
    node = LineDict(mapping)
    node.line = line
    node.lines = dict.fromkeys(mapping, line)
    return node


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
