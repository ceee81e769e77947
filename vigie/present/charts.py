"""Charts for the report and the view, drawn by matplotlib and inlined as SVG.

Figures are built with matplotlib's object API (``Figure`` and its own canvas), never
``pyplot``, whose global state is not thread-safe: the view draws charts in a thread pool."""

from __future__ import annotations

import io
from datetime import date

from babel.dates import format_date

from vigie.present.i18n import gettext

# One colour per family of rules, the same in every chart (colour-blind safe, Okabe-Ito).
FAMILY_COLOURS = {"RET": "#D55E00", "ACC": "#0072B2", "PUR": "#E69F00", "AUT": "#009E73",
                  "PRO": "#CC79A7", "LOG": "#56B4E9"}
FAMILY_NAMES = {"RET": "Retention", "ACC": "Access", "PUR": "Purpose", "AUT": "Authorisation",
                "PRO": "Prohibited processing", "LOG": "Logging"}


def trend_svg(weeks: list[date], trend: dict[str, list[int]], lang: str) -> str:
    """Findings per week by family, stacked bars; an SVG element to inline in HTML."""
    import matplotlib
    from matplotlib.figure import Figure

    _ = gettext(lang)
    # Set once and never restored (an rc_context restoring defaults while another thread
    # draws would change its fonts): the same values every time, so setting them is idempotent.
    matplotlib.rcParams.update({"svg.hashsalt": "vigie", "svg.fonttype": "none", "font.size": 9,
                                "font.family": "DejaVu Sans"})
    fig = Figure(figsize=(9, 3.2))
    ax = fig.subplots()
    x = list(range(len(weeks)))
    bottom = [0] * len(weeks)
    for fam, colour in FAMILY_COLOURS.items():
        counts = trend.get(fam)
        if not counts:
            continue
        ax.bar(x, counts, bottom=bottom, color=colour, label=_(FAMILY_NAMES[fam]), width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts)]
    step = max(1, -(-len(weeks) // 10))  # at most ten labels
    ax.set_xticks(x[::step], [format_date(w, "d MMM yy", locale=lang) for w in weeks[::step]])
    ax.set_xlabel(_("week starting"))
    ax.set_ylabel(_("findings per week"))
    ax.spines[["top", "right"]].set_visible(False)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if any(trend.values()):
        ax.legend(frameon=False, ncols=3, loc="upper left", bbox_to_anchor=(0, 1.18))
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prologue and DOCTYPE: inlined in HTML
