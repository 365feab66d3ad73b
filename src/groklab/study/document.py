"""A tiny document model rendered twice: Markdown and one self-contained HTML file.

The report is built once as a list of blocks; ``to_markdown`` links figures by relative
path, ``to_html`` embeds them as base64 PNG data URIs so the HTML needs no other file and
loads nothing from the network. Inline markup: ``**bold**`` and ```code```.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    path: Path           # PNG file; relative links are made against the report's folder
    caption: str


@dataclass
class Code:
    text: str
    lang: str = ""


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> "Document":
        self.blocks.extend(blocks)
        return self


# ---------------------------------------------------------------------------- markdown
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, base: Path) -> str:
    """Render ``doc``; figure links are relative to ``base`` (the report's folder)."""
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += [f"{'#' * (b.level + 1)} {b.text}", ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            if b.caption:
                out += [b.caption, ""]
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Figure):
            rel = Path(b.path).resolve().relative_to(base.resolve()).as_posix()
            out += [f"![{b.caption}]({rel})", "", f"*{b.caption}*", ""]
        elif isinstance(b, Code):
            out += [f"```{b.lang}", b.text.rstrip("\n"), "```", ""]
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown block {b!r}")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0 1.4em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f0f0f0} caption{caption-side:top;text-align:left;padding:.3em 0;color:#444}
code,pre{background:#f6f6f6;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}
pre{padding:.7em;overflow-x:auto} figure{margin:1em 0} img{max-width:100%}
figcaption{color:#555;font-size:.9em}
"""


def _inline(text: str) -> str:
    s = html.escape(str(text))
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
    return s


def to_html(doc: Document) -> str:
    """Render ``doc`` as one HTML page; figures are embedded as base64 data URIs."""
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(doc.title)}</h1>"]
    for b in doc.blocks:
        if isinstance(b, Heading):
            lvl = min(b.level + 1, 6)
            out.append(f"<h{lvl}>{_inline(b.text)}</h{lvl}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            cap = f"<caption>{_inline(b.caption)}</caption>" if b.caption else ""
            head = "".join(f"<th>{_inline(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            out.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            out.append(f"<figure><img alt=\"{html.escape(b.caption)}\" "
                       f"src=\"data:image/png;base64,{data}\"><figcaption>{_inline(b.caption)}"
                       f"</figcaption></figure>")
        elif isinstance(b, Code):
            out.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        else:  # pragma: no cover
            raise TypeError(f"unknown block {b!r}")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
