"""Figures an experiment's card can show at the page's width, legibly.

Every experiment figure is at most ``WIDTH_IN`` inches wide and saved at ``DPI``, so it is about
1200 px wide and the report shows it at its own size (the card is wider); every piece of text is at
least ``MIN_FONT_PT`` points, about 12 px on the page.

>>> fig, axes = subplots(1, 2)
>>> fig.get_size_inches().tolist()
[12.0, 4.2]
>>> finish(fig) is fig
True
>>> table_figure(["a", "b"], [["1", "2"]], "a title").get_size_inches().tolist()
[12.0, 1.0]
"""

from __future__ import annotations

from typing import Any

WIDTH_IN = 12.0
DPI = 100
MIN_FONT_PT = 9.0


def subplots(nrows: int = 1, ncols: int = 1, height: float = 4.2, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots`` on the Agg backend at the card's width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(WIDTH_IN, height), **kwargs)


def text_sizes(figure: Any) -> list[float]:
    """The font size in points of every visible, non-empty text in ``figure``."""
    from matplotlib.text import Text

    return [
        text.get_fontsize() for text in figure.findobj(Text) if text.get_visible() and text.get_text().strip()
    ]


def finish(figure: Any) -> Any:
    """Raise every text below ``MIN_FONT_PT`` to it and lay the figure out again; return it."""
    from matplotlib.text import Text

    for text in figure.findobj(Text):
        if text.get_fontsize() < MIN_FONT_PT:
            text.set_fontsize(MIN_FONT_PT)
    figure.tight_layout()
    return figure


def table_figure(
    header: list[str], cells: list[list[str]], title: str, row_height: float = 0.25, margin: float = 0.5
) -> Any:
    """A figure that is only a table: ``header`` over the rows ``cells`` at 9 pt, each column as wide
    as its text, under ``title``; ``margin + row_height * (rows + 1)`` inches high."""
    fig, ax = subplots(1, 1, height=margin + row_height * (len(cells) + 1))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.auto_set_column_width(list(range(len(header))))
    ax.set_title(title, fontsize=10)
    return finish(fig)
