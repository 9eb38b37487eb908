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
    # HTML only: per cell, the frame's shape, 0 (blue: at the best reference) .. 1 (orange: at the worst); NaN: no
    # colour. ``legend`` says what the colours mean.
    scores: pd.DataFrame | None = None
    legend: str = ""


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

    def cell(value) -> str:  # no raw HTML, and no link, from a value that came from outside
        return str(value).replace("|", "\\|").replace("\n", " ").replace("<", "\\<").replace("](", "\\](")

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


CODE_SPAN = re.compile(r"(`[^`]*`)")
MARKUP = re.compile(r"([\\`*_\[\]<>|])")  # what Markdown or HTML would read as markup, within a line
ESCAPED = re.compile(r"\\([\\`*_\[\]<>|#+\-.!()~=])")


def literal(text) -> str:
    """Text from outside (a suite's description, a store's failure reason or commit tag) as Markdown that shows it
    as written and can add nothing to the page: one paragraph (line breaks become spaces, so no heading, list,
    table or code block can start), and outside its `code` spans every character Markdown or HTML reads as markup
    backslash-escaped (no tag, link, image or emphasis); :func:`inline_html` shows the same text.

    >>> print(literal("# Owned\\n<script>x</script> [a](javascript:b), `a<b`"))
    \\# Owned \\<script\\>x\\</script\\> \\[a\\](javascript:b), `a<b`
    """
    parts = CODE_SPAN.split(" ".join(str(text).split()))
    escaped = "".join(part if i % 2 else MARKUP.sub(r"\\\1", part) for i, part in enumerate(parts))
    if re.match(r"[#>+\-=~]|\d+[.)]", escaped):  # would start a heading, quote, list or rule
        escaped = re.sub(r"^(\d*)", r"\1\\", escaped, count=1)
    return escaped


def inline_html(text: str) -> str:
    """Escaped text with `code` spans as ``<code>``, and Markdown's backslash escapes (:func:`literal`) read as
    Markdown reads them.

    >>> inline_html("mark `1+` < 0.5")
    'mark <code>1+</code> &lt; 0.5'
    >>> inline_html(literal("# x <b>"))
    '# x &lt;b&gt;'
    """
    parts = CODE_SPAN.split(text)
    return "".join(f"<code>{html.escape(part[1:-1], quote=False)}</code>" if i % 2 else
                   html.escape(ESCAPED.sub(r"\1", part), quote=False) for i, part in enumerate(parts))


STYLE = r"""body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222;
line-height:1.4}p,li{overflow-wrap:break-word}code{background:#f3f3f3;padding:0 3px}
img{max-width:100%;display:block;margin:1em 0}
.scroll{overflow:auto;max-width:100%;max-height:85vh;width:fit-content;border:1px solid #ccc;margin:.5em 0 1.5em}
table{border-collapse:separate;border-spacing:0;font-size:13px}
th,td{border:solid #ddd;border-width:0 1px 1px 0;padding:3px 6px;text-align:left;vertical-align:top}
th{white-space:nowrap}td{min-width:6em}
td{font-variant-numeric:tabular-nums}thead th{position:sticky;top:0;z-index:2;background:#eaeaea;cursor:pointer;
user-select:none}thead th:first-child{left:0;z-index:3}tbody th{position:sticky;left:0;z-index:1;background:#f6f6f6;
font-weight:normal}tbody tr:nth-child(even) td{background:#fafafa}thead th::after{content:" \2195";color:#aaa}
thead th[aria-sort=ascending]::after{content:" \25B2";color:#222}
thead th[aria-sort=descending]::after{content:" \25BC";color:#222}
.legend{font-size:13px;margin:.5em 0}.ramp{display:inline-block;width:120px;height:12px;vertical-align:middle;
margin-right:.5em;border:1px solid #ccc;background:linear-gradient(to right,rgb(146,197,222),rgb(247,247,247),
rgb(244,165,130))}"""

# Click a column's header to sort the rows by it (again: the other way). Entries sort by their number: the one
# after a leading mark like "[2] " ("[2] 0.4561 [0.4540, 0.4582] (n=3)" sorts as 0.4561), thousands separators ignored,
# "a/b" as the fraction; rows without a number come last, in text order.
SCRIPT = r"""function sortKey(text){var t=text.replace(/^\s*\[[^\]]*\]\s*/,"").replace(/,/g,"");
var f=t.match(/^\s*(\d+)\s*\/\s*(\d+)/);if(f)return f[2]>0?f[1]/f[2]:null;var v=parseFloat(t);return isNaN(v)?null:v}
function sortBy(table,column,header){var body=table.tBodies[0],up=header.getAttribute("aria-sort")!=="ascending";
table.querySelectorAll("thead th").forEach(function(h){h.removeAttribute("aria-sort")});
header.setAttribute("aria-sort",up?"ascending":"descending");var sign=up?1:-1;
var rows=Array.from(body.rows).map(function(r,i){var text=r.cells[column].textContent.trim();
return{row:r,i:i,text:text,key:sortKey(text)}});rows.sort(function(a,b){
if(a.key!==null&&b.key!==null)return sign*(a.key-b.key)||a.i-b.i;if(a.key!==null)return -1;if(b.key!==null)return 1;
if(!a.text!==!b.text)return a.text?-1:1;return sign*a.text.localeCompare(b.text,undefined,{numeric:true})||a.i-b.i});
rows.forEach(function(r){body.appendChild(r.row)})}
document.querySelectorAll("table.sortable").forEach(function(table){
table.querySelectorAll("thead th").forEach(function(header,column){header.title="sort by this column";
header.tabIndex=0;header.addEventListener("click",function(){sortBy(table,column,header)});
header.addEventListener("keydown",function(e){if(e.key==="Enter")sortBy(table,column,header)})})});"""


# Pale blue (good) through near-white to pale orange (bad): ColorBrewer's RdBu ends, which readers with a red-green
# colour deficiency tell apart (a green-to-red ramp they do not).
GOOD, MIDDLE, BAD = (146, 197, 222), (247, 247, 247), (244, 165, 130)


def score_colour(score: float) -> str:
    """A pale background from blue (0) through near-white to orange (1).

    >>> score_colour(0.0), score_colour(0.5), score_colour(1.0)
    ('rgb(146,197,222)', 'rgb(247,247,247)', 'rgb(244,165,130)')
    """
    low, high, t = (GOOD, MIDDLE, score * 2) if score <= 0.5 else (MIDDLE, BAD, score * 2 - 1)
    return "rgb({},{},{})".format(*(round(a + (b - a) * t) for a, b in zip(low, high)))


def unbroken(text: str) -> str:
    """An escaped table entry whose interval ``[low, high]`` and phrases like ``not converged`` never break
    across lines, so that a narrow column wraps between its parts only.

    >>> unbroken("[2] 0.4561 [0.4540, 0.4582] (n=3), 1 not converged")
    '[2]&nbsp;0.4561 [0.4540,&nbsp;0.4582] (n=3), 1&nbsp;not&nbsp;converged'
    """
    text = re.sub(r"\[([^\]\s]*), ", r"[\1,&nbsp;", text)
    text = re.sub(r"^(\[[^\]]*\]) ", r"\1&nbsp;", text)
    return re.sub(r"(\d+) not converged", r"\1&nbsp;not&nbsp;converged", text)


def html_table(block: Table) -> str:
    """A sortable table in its own scrolling box: the header row and the first column stay in view; cells
    coloured by ``block.scores``, with the legend above."""
    frame, scores = block.frame, block.scores
    head = "".join(f"<th scope='col'>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i in range(len(frame)):
        cells = []
        for j, value in enumerate(frame.iloc[i]):
            text = unbroken(html.escape("" if pd.isna(value) else str(value)))
            score = scores.iat[i, j] if scores is not None else float("nan")
            style = f" style='background:{score_colour(score)}'" if pd.notna(score) else ""
            cells.append(f"<th scope='row'{style}>{text}</th>" if j == 0 else f"<td{style}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = (f"<div class='legend'><span class='ramp'></span>{inline_html(block.legend)}</div>"
              if block.legend else "")
    return (f"{legend}<div class='scroll'><table class='sortable'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def to_html(blocks: list[Block], title: str, images_dir: Path) -> str:
    """One HTML page with every image embedded (base64) and no external style, script or font, so it can be
    mailed or opened anywhere."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{inline_html(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{inline_html(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            parts.append(html_table(block))
        else:
            data = base64.b64encode((images_dir / block.file).read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(block.alt)}' src='data:image/png;base64,{data}'>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)
