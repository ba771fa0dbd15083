"""How full each page of a printed PDF is, read with poppler's ``pdftotext -bbox-layout``.

``pdftotext -bbox-layout`` writes every text block of every page with its box in points (origin
at the top left). A page's *fill* is how far down its text reaches: the bottom of its lowest
block, measured from the top of the content area, as a share of the content area's height (the
page less its ``@page`` margins, where the running header and footer sit and are left out).
Charts and maps carry their labels as paths, not text, but each figure ends with its caption, so
the caption marks how far the figure reaches.

Run it on a PDF to print one line per page, and with the HTML it was printed from, the headings
left without their content: ``python -m tests.pdf_pages informe.pdf [informe.html]``.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

MM_PT = 72 / 25.4
#: The report's ``@page`` margins (report.html.j2: 17 mm top, 16 mm bottom), in points.
TOP_PT = 17 * MM_PT
BOTTOM_PT = 16 * MM_PT
XHTML = "{http://www.w3.org/1999/xhtml}"


#: A line at least this tall (points) is set in a heading's type: the report's h3 (11 pt) makes
#: 12.8 pt lines, its body text (10 pt) 11.6 pt and its tables (8.5 pt) 9.9 pt.
HEADING_LINE_PT = 12.2


@dataclass(frozen=True)
class Block:
    """One text block: its text (words joined by spaces), its vertical extent and the height of
    its first line (which grows with the type size), in points."""

    text: str
    top_pt: float
    bottom_pt: float
    line_pt: float

    @property
    def heading_type(self) -> bool:
        return self.line_pt >= HEADING_LINE_PT


@dataclass(frozen=True)
class Page:
    """One page's text blocks inside the content area, top to bottom."""

    number: int
    height_pt: float
    blocks: tuple[Block, ...]

    @property
    def content_pt(self) -> float:
        return self.height_pt - TOP_PT - BOTTOM_PT

    @property
    def fill(self) -> float:
        """How far down the text reaches, as a share of the content area (0 for a blank page)."""
        if not self.blocks:
            return 0.0
        return (self.blocks[-1].bottom_pt - TOP_PT) / self.content_pt

    @property
    def text_starts(self) -> float:
        """Where the first text begins, as a share of the content area (1 for a blank page): a
        page that starts low opens with a figure (its caption is the first text)."""
        if not self.blocks:
            return 1.0
        return (min(block.top_pt for block in self.blocks) - TOP_PT) / self.content_pt

    def lines(self) -> list[str]:
        return [block.text for block in self.blocks]


def read_pages(pdf: Path) -> list[Page]:
    """Every page of ``pdf`` with its text blocks (the running header and footer left out)."""
    done = subprocess.run(
        ["pdftotext", "-bbox-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    root = ET.fromstring(done.stdout)
    pages = []
    for number, page in enumerate(root.iter(f"{XHTML}page"), start=1):
        height = float(page.attrib["height"])
        blocks = []
        for block in page.iter(f"{XHTML}block"):
            top, bottom = float(block.attrib["yMin"]), float(block.attrib["yMax"])
            if bottom <= TOP_PT or top >= height - BOTTOM_PT:
                continue  # the running header or footer, in the page margins
            words = [word.text or "" for word in block.iter(f"{XHTML}word")]
            line = next(block.iter(f"{XHTML}line"))
            line_pt = float(line.attrib["yMax"]) - float(line.attrib["yMin"])
            blocks.append(Block(" ".join(words), top, bottom, line_pt))
        blocks.sort(key=lambda block: (block.bottom_pt, block.top_pt))
        pages.append(Page(number, height, tuple(blocks)))
    return pages


def short_pages(pages: list[Page], *, min_fill: float, figure_page: float = 0.75) -> list[str]:
    """The pages less than ``min_fill`` full, but the last one and those followed by a page that
    a figure opens (its first text, the caption, starts below ``figure_page`` of the page)."""
    return [
        f"página {page.number}: {page.fill:.0%}"
        for page, after in itertools.pairwise(pages)
        if page.fill < min_fill and after.text_starts < figure_page
    ]


def stranded_headings(
    pages: list[Page], headings: set[str], *, min_follow: float
) -> tuple[list[str], set[str]]:
    """The headings followed on their page by less than ``min_follow`` of a page (their content
    went on to the next page), and the headings found in the PDF.

    A heading is a block whose text is one of ``headings`` set in a heading's type (a table cell
    with the same words is smaller).
    """
    stranded, found = [], set()
    for page in pages:
        end = page.blocks[-1].bottom_pt if page.blocks else 0.0
        for block in page.blocks:
            if block.text in headings and block.heading_type:
                found.add(block.text)
                follow = (end - block.bottom_pt) / page.content_pt
                if follow < min_follow:
                    stranded.append(f"página {page.number}: «{block.text}» ({follow:.0%})")
    return stranded, found


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: str | None = None
        self.parts: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("h1", "h2", "h3"):
            self.open, self.parts = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self.open:
            self.texts.append(" ".join("".join(self.parts).split()))
            self.open = None

    def handle_data(self, data: str) -> None:
        if self.open:
            self.parts.append(data)


def heading_texts(html: str) -> set[str]:
    """The text of every h1, h2 and h3 of ``html``, with its spaces collapsed."""
    parser = _Headings()
    parser.feed(html)
    return set(parser.texts)


def main(argv: list[str]) -> None:
    pages = read_pages(Path(argv[1]))
    for page in pages:
        last = page.blocks[-1].text[:70] if page.blocks else ""
        print(f"page {page.number:2d}: {page.fill:4.0%} full, {len(page.blocks):3d} blocks: {last}")
    if len(argv) > 2:
        headings = heading_texts(Path(argv[2]).read_text(encoding="utf-8"))
        print(stranded_headings(pages, headings, min_follow=0.1)[0])


if __name__ == "__main__":
    main(sys.argv)
