"""Render the web app's icons (api/static/icons/) from geo/render/static/favicon.svg.

Run by hand after changing the favicon (headless Chromium through Playwright, as the tests use);
the PNGs are committed, so neither the server nor CI needs this script. The "maskable" icon keeps
the symbol inside the safe zone (the inner 80 %) on a full-bleed background, as Android crops it.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SVG = (ROOT / "geo" / "render" / "static" / "favicon.svg").read_text(encoding="utf-8")
OUT = ROOT / "api" / "static" / "icons"
PLAIN = "<html><body style='margin:0;background:transparent'>{svg}</body></html>"
MASKABLE = (
    "<html><body style='margin:0;background:#0a8f3c;display:flex;align-items:center;"
    "justify-content:center;width:{size}px;height:{size}px'>{svg}</body></html>"
)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        for size in (192, 512):
            kinds = (("icon", PLAIN, size), ("maskable", MASKABLE, size * 0.7))
            for kind, template, inner in kinds:
                page = browser.new_page(viewport={"width": size, "height": size})
                svg = SVG.replace("<svg ", f'<svg width="{inner:.0f}" height="{inner:.0f}" ', 1)
                page.set_content(template.format(svg=svg, size=size))
                page.screenshot(
                    path=str(OUT / f"{kind}-{size}.png"), omit_background=kind == "icon"
                )
                page.close()
        browser.close()


if __name__ == "__main__":
    main()
