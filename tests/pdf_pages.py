"""How full each page of a printed PDF is, read with poppler's ``pdftotext -bbox-layout``.

``pdftotext -bbox-layout`` writes every text block of every page with its box in points (origin
at the top left). A page's *fill* is how far down its text reaches: the bottom of its lowest
block, measured from the top of the content area, as a share of the content area's height (the
page less its ``@page`` margins, where the running header and footer sit and are left out).
Charts and maps carry their labels as paths, not text, but each figure ends with its caption, so
the caption marks how far the figure reaches.

Run it on a PDF to print one line per page: ``python -m tests.pdf_pages informe.pdf``.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

MM_PT = 72 / 25.4
#: The report's ``@page`` margins (report.html.j2: 17 mm top, 16 mm bottom), in points.
TOP_PT = 17 * MM_PT
BOTTOM_PT = 16 * MM_PT
XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass(frozen=True)
class Block:
    """One text block: its text (words joined by spaces) and its vertical extent, in points."""

    text: str
    top_pt: float
    bottom_pt: float


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
            blocks.append(Block(" ".join(words), top, bottom))
        blocks.sort(key=lambda block: (block.bottom_pt, block.top_pt))
        pages.append(Page(number, height, tuple(blocks)))
    return pages


def main(argv: list[str]) -> None:
    pages = read_pages(Path(argv[1]))
    for page in pages:
        last = page.blocks[-1].text[:70] if page.blocks else ""
        print(f"page {page.number:2d}: {page.fill:5.0%} full, {len(page.blocks):3d} blocks · {last}")


if __name__ == "__main__":
    main(sys.argv)
