"""The report's document model: table of contents, anchors, verdict boxes, folded blocks, the
summary and inline markup, checked on the rendered Markdown and HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
from PIL import Image

from groklab.study import document as D, figures


class _Page(HTMLParser):
    """Ids, in-page links, the classes of verdict boxes and the text outside code/style."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.verdicts, self.text, self._skip = [], [], [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        if tag == "div" and "verdict" in (a.get("class") or "").split():
            self.verdicts.append(a["class"].split()[1])
        if tag in ("pre", "code", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("pre", "code", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _doc() -> D.Document:
    return D.Document("Report").add(
        D.Heading(1, "Verdicts"),
        D.Table(["claim", "verdict"], [["1 same path", D.Badge("supported", "#verdict-1-same-path")],
                                       ["2 fake", D.Badge("not supported")]]),
        D.Heading(1, "Claim 1: the *same* path?"),
        D.Heading(2, "Details of `lens`"),
        D.Para("see **this**, *that*, `code **not bold**` and [the verdict](#verdict-1-same-path)"),
        D.Verdict("1 same path", "supported", "(a), (b) and (c) all met.", "rule **one**"),
        D.Heading(1, "Claim 2"),
        D.Verdict("2 fake", "not supported", "no run came apart."),
        D.Heading(1, "Claim 2"),                       # a repeated heading gets its own anchor
        D.Verdict("3 transfer", "inconclusive at this scale", "too few runs."),
        D.Details("`run/config.yaml`", [D.Code("optim:\n  lr: 0.001  # `x` **y**\n", "yaml")]),
        D.Summary("Of three claims, one is **supported**."),
    )


def test_toc_links_match_heading_anchors_in_both_renderings(tmp_path):
    doc = _doc()
    html = D.to_html(doc)
    page = parse(html)
    toc = re.search(r'<nav class="toc">(.*?)</nav>', html, re.S).group(1)
    toc_links = re.findall(r'href="#([^"]+)"', toc)
    assert toc_links == ["verdicts", "claim-1-the-same-path", "details-of-lens", "claim-2",
                         "claim-2-1"]
    assert set(toc_links) <= set(page.ids) and len(page.ids) == len(set(page.ids))
    assert "<li><a href=\"#claim-1-the-same-path\">Claim 1: the <em>same</em> path?</a><ul><li>" in toc
    # every in-page link (TOC, badge, inline link) lands on an id of the page
    assert set(page.links) <= set(page.ids)

    md = D.to_markdown(doc, tmp_path)
    md_links = re.findall(r"\]\(#([^)]+)\)", md.split("<a id=", 1)[0])  # the TOC part
    assert md_links == toc_links
    md_ids = re.findall(r'<a id="([^"]+)"></a>', md)
    assert set(md_links) <= set(md_ids) and "verdict-1-same-path" in md_ids
    assert "  - [Details of lens](#details-of-lens)" in md      # level 2 is nested


def test_verdicts_are_coloured_by_outcome_and_summary_comes_first(tmp_path):
    md = D.to_markdown(_doc(), tmp_path)
    assert md.startswith("# Report\n\n## What this study found\n\n> Of three claims, one is "
                         "**supported**.\n\n## Contents\n")
    assert "**Verdict: not supported.** no run came apart." in md
    html = D.to_html(_doc())
    page = parse(html)
    assert page.verdicts == ["supported", "not-supported", "inconclusive"]
    assert '<span class="badge supported">supported</span>' in html
    assert '<span class="badge not-supported">not supported</span>' in html
    assert D.outcome_class("inconclusive at this scale") == "inconclusive"
    # the summary is right after the title, before the table of contents and the first section
    i_title, i_sum = html.index("<h1>"), html.index('<section class="summary">')
    assert i_title < i_sum < html.index('<nav class="toc">') < html.index('id="verdicts"')
    assert "What this study found" in html and "one is <strong>supported</strong>" in html


def test_html_has_no_literal_markdown_and_code_stays_literal():
    html = D.to_html(_doc())
    text = "".join(parse(html).text)
    assert "**" not in text and "`" not in text and "](" not in text
    assert not re.search(r"(?<!\w)\*\w", text)
    assert "<code>code **not bold**</code>" in html            # markup inside code is not parsed
    assert '<a href="#verdict-1-same-path">the verdict</a>' in html
    assert "<p class=\"rule\">Rule: rule <strong>one</strong></p>" in html
    assert "2 * 3 = 6" in D._inline("2 * 3 = 6")                 # a lone star is not emphasis
    assert D._inline("runs/*.json and *these* runs") == "runs/*.json and <em>these</em> runs"


def test_config_dumps_fold_into_details(tmp_path):
    doc = _doc()
    html = D.to_html(doc)
    assert "<details><summary><code>run/config.yaml</code></summary>" in html
    assert re.search(r"<details>.*<pre><code>optim:\n  lr: 0.001  # `x` \*\*y\*\*\n</code></pre>"
                     r"\n</details>", html, re.S)
    md = D.to_markdown(doc, tmp_path)
    assert "<details><summary><code>run/config.yaml</code></summary>\n\n```yaml\noptim:" in md
    assert md.rstrip().endswith("</details>")


def _capture(monkeypatch) -> list:
    """The figures ``figures`` saves, inspected before they are closed."""
    seen, real = [], figures._save

    def save(fig, path):
        seen.append([{"ylabel": ax.get_ylabel(), "texts": [t.get_text() for t in ax.texts],
                      "yticks": [t.get_text() for t in ax.get_yticklabels()]} for ax in fig.axes])
        return real(fig, path)
    monkeypatch.setattr(figures, "_save", save)
    return seen


def test_path_heatmap_annotates_cells_with_short_stage_labels(tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    grid = np.array([[0.1, 0.25, 0.9], [0.0, 0.5, 1.0]])
    stages = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    path = figures.heatmaps(tmp_path / "p.png", "paths", {"a": (grid, stages, ["h", "r1", "r2"]),
                                                         "b": (grid[::-1], stages, ["h", "r1", "r2"])})
    a, b = seen[0][:2]                                         # the two panels (then the colorbar)
    assert a["yticks"] == b["yticks"] == ["b0.post", "b1.post"]
    assert a["texts"] == [f"{v:.2f}" for v in grid.ravel()]
    assert b["texts"] == [f"{v:.2f}" for v in grid[::-1].ravel()]
    assert a["ylabel"] and Image.open(path).size[0] > 100


def test_curves_label_the_y_axis(tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    panels = {f"r{i}": {"train acc": ([0, 10], [0.1, 0.9])} for i in range(4)}   # 2 rows x 3
    figures.curves(tmp_path / "c.png", "t", panels, ylabel="accuracy")
    assert [ax["ylabel"] for ax in seen[0][:4]] == ["accuracy", "", "", "accuracy"]
