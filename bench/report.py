"""A report as a list of blocks, rendered as Markdown (README-ready) or as one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str  # `code` spans allowed


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame


@dataclass
class Image:
    file: str  # a PNG beside the report
    alt: str


Block = Heading | Text | Bullets | Table | Image


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; ``|`` inside cells escaped.

    >>> print(markdown_table(pd.DataFrame({"cell": ["lstm"], "T=2": ["0.5 | 0.6"]})))
    | cell | T=2 |
    | --- | --- |
    | lstm | 0.5 \\| 0.6 |
    """

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as Markdown; images linked by file name, so the page works beside them."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text)
        elif isinstance(block, Text):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            parts.append(markdown_table(block.frame))
        else:
            parts.append(f"![{block.alt}]({block.file})")
    return "\n\n".join(parts) + "\n"


def inline_html(text: str) -> str:
    """Escaped text with `code` spans as ``<code>``.

    >>> inline_html("mark `1+` < 0.5")
    'mark <code>1+</code> &lt; 0.5'
    """
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text, quote=False))


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:left;white-space:nowrap}th{background:#f0f0f0}tr:nth-child(even){background:#fafafa}
code{background:#f3f3f3;padding:0 3px}img{max-width:100%;display:block;margin:1em 0}"""


def to_html(blocks: list[Block], title: str, images_dir: Path) -> str:
    """One HTML page with every image embedded (base64), so it can be mailed or opened anywhere."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{inline_html(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{inline_html(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            parts.append(block.frame.to_html(index=False, border=0))
        else:
            data = base64.b64encode((images_dir / block.file).read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(block.alt)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
