"""Tariff rule sets as data, and two evaluators with one meaning (see ``docs.md``).

- ``loader``: ``load_rule_set``, ``check_path``, ``list_rule_sets``, ``RuleSetError``;
- ``interpreter``: ``explain_many`` (per-encounter explanations, for audits);
- ``batch``: ``payout_lines_sql`` / ``payout_sql`` (one DuckDB query, for replays).
"""
