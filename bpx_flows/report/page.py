"""The report as one self-contained HTML file: plotly.js inline, figures as JSON.

No network is needed to view it. A small script draws every figure and writes on
``<body>`` how many it drew (``data-drawn`` of ``data-charts``) and how many script
errors it saw (``data-errors``): the browser test reads them, and so can anyone
opening the developer tools.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Section", "render"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 12px 0; }
td, th { padding: 3px 12px; border-bottom: 1px solid #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.chart { width: 100%; } nav a { margin-right: 12px; }
"""

_RUNNER = """
(function () {
  const body = document.body, errors = [];
  const note = (e) => { errors.push(String(e)); body.dataset.errors = errors.length; };
  window.addEventListener("error", (e) => note(e.message));
  window.addEventListener("unhandledrejection", (e) => note(e.reason));
  body.dataset.errors = 0;
  const specs = Array.from(document.querySelectorAll("script.bpx-figure"));
  body.dataset.charts = specs.length;
  Promise.all(specs.map((s) => {
    const f = JSON.parse(s.textContent);
    const config = {responsive: true, displaylogo: false};
    const div = document.getElementById(s.dataset.target);
    return Plotly.newPlot(div, f.data, f.layout, config);
  })).then((divs) => {
    body.dataset.drawn = divs.filter(
      (d) => d.querySelector(".main-svg") && d._fullData && d._fullData.length
    ).length;
  }).catch(note);
})();
"""


@dataclass(frozen=True)
class Section:
    """One market: its heading and its figures."""

    title: str
    anchor: str
    figures: Sequence[Any]


def _json(fig: Any) -> str:
    # Inside <script>, "</" would end the element early.
    return str(fig.to_json()).replace("</", "<\\/")


def render(
    title: str, summary: list[tuple[str, str]], counts: dict[str, int],
    sections: Sequence[Section], plotly_js: str,
) -> str:  # fmt: skip
    """The whole page."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>",
        f"<script>{plotly_js}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<table>",
        *(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in summary
        ),
        "</table><h3>Records by kind</h3><table>",
        *(
            f"<tr><td>{html.escape(kind)}</td><td class='n'>{n:,}</td></tr>"
            for kind, n in counts.items()
        ),
        "</table><nav>",
        *(f"<a href='#{s.anchor}'>{html.escape(s.title)}</a>" for s in sections),
        "</nav>",
    ]
    number = 0
    for section in sections:
        parts.append(f"<h2 id='{section.anchor}'>{html.escape(section.title)}</h2>")
        for fig in section.figures:
            target = f"chart-{number}"
            number += 1
            parts.append(f"<div class='chart' id='{target}'></div>")
            parts.append(
                f"<script type='application/json' class='bpx-figure' "
                f"data-target='{target}'>{_json(fig)}</script>"
            )
    parts.append(f"<script>{_RUNNER}</script></body></html>")
    return "\n".join(parts)
