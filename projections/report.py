"""Outputs of a comparison beyond the terminal: Parquet, a chart (PNG), a self-contained HTML page.

The chart shows the difference (alt − base: for historical vs parity, the cost of the SNP
exclusion) per association and month. Matplotlib draws it (Agg backend, no display needed); the
HTML page embeds the PNG and the table, so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb

from projections.compare import CompareResult


def write_parquet(result: CompareResult, path: Path) -> Path:
    """The comparison's rows as Parquet (money as DECIMAL(14,2), exact)."""
    keys = list(result.by)
    columns = [*(f"{k} VARCHAR" for k in keys), "encounters BIGINT", "base_total DECIMAL(14,2)",
               "alt_total DECIMAL(14,2)", "difference DECIMAL(14,2)"]
    with duckdb.connect() as duck:
        duck.execute(f"CREATE TABLE rows ({', '.join(columns)})")
        if result.rows:
            duck.executemany(
                f"INSERT INTO rows VALUES ({', '.join('?' * (len(keys) + 4))})",
                [[*(r[k] for k in keys), r["encounters"], r["base_total"], r["alt_total"],
                  r["difference"]] for r in result.rows])
        duck.execute(f"COPY rows TO '{path}' (FORMAT parquet)")
    return path


def write_chart(result: CompareResult, path: Path) -> Path:
    """A PNG: total difference per association, and the difference per month and association.

    Args:
        result: a comparison grouped by association and month.
        path: where to write the PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if set(result.by) != {"association", "month"}:
        raise ValueError("the chart needs a comparison grouped by association and month")
    months = sorted({r["month"] for r in result.rows})
    series: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for r in result.rows:
        series[r["association"]][r["month"]] = r["difference"]
    totals = {a: sum(v.values(), Decimal(0)) for a, v in series.items()}
    order = sorted(totals, key=lambda a: -totals[a])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1, 2]})
    left.barh(order[::-1], [float(totals[a]) for a in order[::-1]], color="#c0392b")
    left.set_xlabel("€ over the period")
    left.set_title(f"{result.alt} − {result.base}, per association")
    for a in order[:12]:
        right.plot(months, [float(series[a].get(m, 0)) for m in months], marker="o", label=a)
    right.set_title("per month (12 largest associations)")
    right.set_ylabel("€ per month")
    right.tick_params(axis="x", rotation=60)
    if order:
        right.legend(fontsize=8, ncol=2)
    when = f" — facts as of {result.as_of:%Y-%m-%d %H:%M}" if result.as_of else ""
    fig.suptitle(f"Cost of the SNP exclusion: {result.alt} minus {result.base}{when}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_html(result: CompareResult, chart_png: Path, path: Path) -> Path:
    """A self-contained HTML report: the chart (embedded) and the table of rows."""
    image = base64.b64encode(chart_png.read_bytes()).decode("ascii")
    head = [*result.by, "encounters", f"{result.base} €", f"{result.alt} €", "difference €"]
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in result.by)
        + f"<td class=n>{r['encounters']}</td>"
        + "".join(f"<td class=n>{r[k]:.2f}</td>" for k in ("base_total", "alt_total",
                                                             "difference")) + "</tr>"
        for r in result.rows)
    t = result.totals
    page = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<title>Coût de l'exclusion SNP — {html.escape(result.alt)} vs {html.escape(result.base)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}</style></head><body>
<h1>Cost of the SNP exclusion</h1>
<p>Regulated fees granted under <b>{html.escape(result.alt)}</b> minus those under
<b>{html.escape(result.base)}</b>, per association and month
{f"(facts as known at {html.escape(result.as_of.isoformat())})" if result.as_of else ""}.
Total: <b>{t['difference']:.2f} €</b> over {t['encounters']} encounters.</p>
<img alt="chart" src="data:image/png;base64,{image}" style="max-width:100%">
<table><thead><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
