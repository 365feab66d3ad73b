"""A tiny document model rendered twice: Markdown and one self-contained HTML file.

The report is built once as a list of blocks; ``to_markdown`` links figures by relative
path, ``to_html`` embeds them as base64 PNG data URIs so the HTML needs no other file and
loads nothing from the network. Both renderings open with the title, any :class:`Summary`
blocks (wherever they were added) and a table of contents built from the headings, whose
links point at explicit anchors (GitHub's slug rule, so they also match GitHub's own).

Inline markup, the same subset in both renderings (HTML turns it into tags, never leaves it
literal): ``**bold**``, ``*italic*``, ```code``` and ``[text](url)``.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

SUMMARY_TITLE = "What this study found"
TOC_TITLE = "Contents"
TOC_DEPTH = 2            # headings of level <= this are listed in the table of contents


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
class Badge:
    """A verdict word as a table cell (or anywhere a cell goes): coloured in HTML, bold in
    Markdown; ``href`` (e.g. ``#verdict-1-same-path``) makes it a link."""
    outcome: str
    href: str = ""

    def __str__(self) -> str:  # so code that joins cells as text still reads it
        return self.outcome


@dataclass
class Table:
    header: list[str]
    rows: list[list]     # cells: str, or Badge
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
class Details:
    """Blocks folded away behind a one-line summary (``<details>`` in both renderings), e.g.
    a long config dump."""
    summary: str
    blocks: list = field(default_factory=list)


@dataclass
class Verdict:
    """A claim's verdict: ``outcome`` is ``supported`` / ``not supported`` / anything else
    (read as inconclusive), ``text`` the reason, ``rule`` the stated rule. Rendered as a
    coloured box in HTML (green / red / amber), with the anchor ``verdict_anchor(claim)``."""
    claim: str
    outcome: str
    text: str = ""
    rule: str = ""


@dataclass
class Summary:
    """The one-paragraph answer a reader wants first; rendered right after the title."""
    text: str
    title: str = SUMMARY_TITLE


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> "Document":
        self.blocks.extend(blocks)
        return self


# ---------------------------------------------------------------------------- shared
def outcome_class(outcome: str) -> str:
    """CSS class of a verdict: ``supported``, ``not-supported`` or ``inconclusive``."""
    o = str(outcome).strip().lower()
    if o.startswith(("not supported", "refuted", "contradicted")):
        return "not-supported"
    if o.startswith("supported"):
        return "supported"
    return "inconclusive"


# one pattern for the inline subset: code first, so markup inside code stays literal
_INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|(?<![\w*])\*(?=\w)(?P<em>[^*\n]*?\w)\*(?![\w*])"   # *word...word*, not analysis/*.json
    r"|\[(?P<label>[^\]]+)\]\((?P<url>[^)\s]+)\)")


def plain(text: str) -> str:
    """``text`` without its inline markup (for slugs, alt text, the page title)."""
    def sub(m: re.Match) -> str:
        return m.group("code") or plain(m.group("bold") or m.group("em") or m.group("label") or "")
    return _INLINE.sub(sub, str(text))


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[^\w\- ]", "", plain(text).strip().lower())
    return s.replace(" ", "-")


def verdict_anchor(claim: str) -> str:
    return "verdict-" + slug(claim)


def _anchors(doc: Document) -> list[tuple[Heading, str]]:
    """Each heading with its unique anchor (repeats get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {slug(doc.title): 1, slug(TOC_TITLE): 1}
    seen.update({slug(b.title): 1 for b in doc.blocks if isinstance(b, Summary)})
    out = []
    for b in _walk(doc.blocks):
        if isinstance(b, Heading):
            base = slug(b.text) or "section"
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append((b, base if n == 0 else f"{base}-{n}"))
    return out


def _walk(blocks):
    for b in blocks:
        yield b
        if isinstance(b, Details):
            yield from _walk(b.blocks)


def _toc_entries(doc: Document) -> list[tuple[int, str, str]]:
    return [(h.level, h.text, a) for h, a in _anchors(doc) if h.level <= TOC_DEPTH]


# ---------------------------------------------------------------------------- markdown
def _md_cell(cell) -> str:
    if isinstance(cell, Badge):
        word = f"**{cell.outcome}**"
        return f"[{word}]({cell.href})" if cell.href else word
    return str(cell).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, base: Path) -> str:
    """Render ``doc``; figure links are relative to ``base`` (the report's folder)."""
    out = [f"# {doc.title}", ""]
    for s in (b for b in doc.blocks if isinstance(b, Summary)):
        out += [f"## {s.title}", "", "> " + s.text.replace("\n", "\n> "), ""]
    toc = _toc_entries(doc)
    if toc:
        top = min(level for level, _, _ in toc)
        out += [f"## {TOC_TITLE}", ""]
        out += [f"{'  ' * (level - top)}- [{plain(text)}](#{a})" for level, text, a in toc]
        out.append("")
    anchors = {id(h): a for h, a in _anchors(doc)}
    _md_blocks(doc.blocks, base, anchors, out)
    return "\n".join(out).rstrip() + "\n"


def _md_blocks(blocks, base: Path, anchors: dict, out: list[str]) -> None:
    for b in blocks:
        if isinstance(b, Summary):
            continue  # rendered after the title
        if isinstance(b, Heading):
            out += [f'<a id="{anchors[id(b)]}"></a>', "", f"{'#' * (b.level + 1)} {b.text}", ""]
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
            out += [f"![{plain(b.caption)}]({rel})", "", f"*{b.caption}*", ""]
        elif isinstance(b, Code):
            out += [f"```{b.lang}", b.text.rstrip("\n"), "```", ""]
        elif isinstance(b, Details):
            # GitHub renders Markdown inside <details> when blank lines surround it; <summary>
            # itself is HTML
            out += [f"<details><summary>{_inline(b.summary)}</summary>", ""]
            _md_blocks(b.blocks, base, anchors, out)
            out += ["</details>", ""]
        elif isinstance(b, Verdict):
            out += [f'<a id="{verdict_anchor(b.claim)}"></a>', "",
                    f"**Verdict: {b.outcome}.** {b.text}".rstrip(), ""]
            if b.rule:
                out += [f"Rule: {b.rule}", ""]
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown block {b!r}")


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
nav.toc{background:#fafafa;border:1px solid #ddd;padding:.4em 1.2em;margin:1em 0}
nav.toc ul{margin:.2em 0;padding-left:1.2em}
section.summary{background:#eef3fb;border-left:6px solid #4477aa;padding:.3em 1em;margin:1em 0}
section.summary p{font-size:1.05em}
div.verdict{border-left:6px solid;padding:.2em .9em;margin:.8em 0}
div.verdict p.rule{color:#444;font-size:.9em}
.supported{border-color:#2e7d32;background:#e8f5e9}
.not-supported{border-color:#c62828;background:#ffebee}
.inconclusive{border-color:#e0a100;background:#fff6dc}
span.badge{padding:.05em .45em;border-radius:.3em;border:1px solid;font-weight:600;white-space:nowrap}
span.badge.supported{color:#1b5e20} span.badge.not-supported{color:#b71c1c}
span.badge.inconclusive{color:#7a5800}
details{margin:.6em 0} summary{cursor:pointer;color:#333}
"""


def _inline(text: str) -> str:
    """Escape ``text`` and turn the inline markup into tags (nothing of it stays literal)."""
    text, out, pos = str(text), [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        if m.group("code") is not None:
            out.append(f"<code>{html.escape(m.group('code'))}</code>")
        elif m.group("bold") is not None:
            out.append(f"<strong>{_inline(m.group('bold'))}</strong>")
        elif m.group("em") is not None:
            out.append(f"<em>{_inline(m.group('em'))}</em>")
        else:
            out.append(f"<a href=\"{html.escape(m.group('url'))}\">{_inline(m.group('label'))}</a>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _html_cell(cell) -> str:
    if isinstance(cell, Badge):
        span = f'<span class="badge {outcome_class(cell.outcome)}">{html.escape(cell.outcome)}</span>'
        return f'<a href="{html.escape(cell.href)}">{span}</a>' if cell.href else span
    return _inline(cell)


def to_html(doc: Document) -> str:
    """Render ``doc`` as one HTML page; figures are embedded as base64 data URIs."""
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(plain(doc.title))}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_inline(doc.title)}</h1>"]
    for s in (b for b in doc.blocks if isinstance(b, Summary)):
        out.append(f'<section class="summary"><h2 id="{slug(s.title)}">{_inline(s.title)}</h2>'
                   f"<p>{_inline(s.text)}</p></section>")
    toc = _toc_entries(doc)
    if toc:
        out.append(f'<nav class="toc"><h2 id="{slug(TOC_TITLE)}">{TOC_TITLE}</h2>{_toc_html(toc)}</nav>')
    anchors = {id(h): a for h, a in _anchors(doc)}
    _html_blocks(doc.blocks, anchors, out)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _toc_html(toc: list[tuple[int, str, str]]) -> str:
    """Nested lists: a deeper heading opens a sub-list inside the previous item."""
    top = min(level for level, _, _ in toc)
    parts, depth = [], 0
    for level, text, a in toc:
        want = min(level - top + 1, depth + 1)  # never skip a level of nesting
        if want > depth:
            parts.append("<ul>" * (want - depth))
        else:
            parts.append("</li>" + "</ul></li>" * (depth - want))
        depth = want
        parts.append(f'<li><a href="#{a}">{_inline(text)}</a>')
    parts.append("</li>" + "</ul></li>" * (depth - 1) + "</ul>")
    return "".join(parts)


def _html_blocks(blocks, anchors: dict, out: list[str]) -> None:
    for b in blocks:
        if isinstance(b, Summary):
            continue  # rendered after the title
        if isinstance(b, Heading):
            lvl = min(b.level + 1, 6)
            out.append(f'<h{lvl} id="{anchors[id(b)]}">{_inline(b.text)}</h{lvl}>')
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            cap = f"<caption>{_inline(b.caption)}</caption>" if b.caption else ""
            head = "".join(f"<th>{_html_cell(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            out.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            out.append(f"<figure><img alt=\"{html.escape(plain(b.caption))}\" "
                       f"src=\"data:image/png;base64,{data}\"><figcaption>{_inline(b.caption)}"
                       f"</figcaption></figure>")
        elif isinstance(b, Code):
            out.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif isinstance(b, Details):
            out.append(f"<details><summary>{_inline(b.summary)}</summary>")
            _html_blocks(b.blocks, anchors, out)
            out.append("</details>")
        elif isinstance(b, Verdict):
            rule = f'<p class="rule">Rule: {_inline(b.rule)}</p>' if b.rule else ""
            out.append(f'<div class="verdict {outcome_class(b.outcome)}" '
                       f'id="{verdict_anchor(b.claim)}" data-claim="{html.escape(b.claim)}">'
                       f"<p><strong>Verdict: {html.escape(b.outcome)}.</strong> {_inline(b.text)}"
                       f"</p>{rule}</div>")
        else:  # pragma: no cover
            raise TypeError(f"unknown block {b!r}")
