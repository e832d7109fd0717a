"""The report's ``index.html``: one self-contained page (no external files, scripts or fonts needed).

Images are embedded as base64 ``data:image/png`` URIs, and each is also linked to its PNG file in the report
folder. Embedding makes the page complete on its own: it still shows everything when copied out of the
folder, attached to a mail or a ticket, or published as a CI/Prefect artifact without its siblings; the
PNG files stay for reuse (slides, papers) and ``metrics.json`` for machines.

A few lines of inline JavaScript count the images that decoded once the page has loaded and write
``data-images-loaded="<ok>/<total>"`` on ``<body>`` (and show a warning if one failed), so a browser check
of the page needs no more than ``chromium --headless --dump-dom``.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.io import atomic_path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1150px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.note { color: #555; font-size: 0.9em; } .warning { color: #a00; font-weight: bold; }
"""

IMAGE_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (im) { return im.complete && im.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", ok + "/" + images.length);
  if (ok < images.length) {
    var p = document.createElement("p");
    p.className = "warning";
    p.textContent = (images.length - ok) + " image(s) of this report could not be shown.";
    document.body.insertBefore(p, document.body.firstChild);
  }
});
"""


def esc(value: Any) -> str:
    """HTML-escaped text of a value (floats with 4 significant digits)."""
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape(str(value))


def table_html(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A ``<table>`` with one header row; every cell escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def png_data_uri(path: str | os.PathLike) -> str:
    """``data:image/png;base64,...`` of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure_html(path: str | os.PathLike, caption: str) -> str:
    """A ``<figure>`` with the PNG embedded, linked to the file of the same name in the report folder."""
    name = Path(path).name
    return (
        f'<figure><a href="{html.escape(name)}"><img src="{png_data_uri(path)}" alt="{esc(caption)}" '
        f'data-file="{html.escape(name)}"></a><figcaption>{esc(caption)}</figcaption></figure>'
    )


def page_html(title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> str:
    """The full page: ``sections`` are ``(heading, body html)`` pairs, ``intro`` html under the title."""
    parts = [f"<h2>{esc(heading)}</h2>\n{body}" for heading, body in sections]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style><script>{IMAGE_CHECK}</script></head>\n"
        f"<body><h1>{esc(title)}</h1>\n{intro}\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write_index(
    out_dir: str | os.PathLike, title: str, sections: Sequence[tuple[str, str]], intro: str = ""
) -> Path:
    """Write ``out_dir/index.html`` and return its path."""
    path = Path(out_dir) / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page_html(title, sections, intro), encoding="utf-8")
    return path
