"""The page every folium map is built on: the vendored assets, the basemap, the hand-off of
options and data to ``cardiomapa.js``, and the file to share.

Every script and style sheet a page needs is served from ``static_url`` (``geo/render/static/``:
our own files and the libraries vendored from npm, see ``scripts/vendor-assets.sh``), so pages
work on a closed network; :func:`self_contained` inlines them for a file to share. Only the
basemap tiles come from outside, from the configurable :class:`Basemap`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
from branca.element import Element, Figure, MacroElement
from folium.template import Template

from geo.city import CityProfile
from geo.render.map_text import inert
from geo.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
WGS84 = "EPSG:4326"
#: (name, path under ``static_url``), in loading order.
SCRIPTS = (
    ("leaflet", "vendor/leaflet/leaflet.js"),
    ("markercluster", "vendor/leaflet.markercluster/leaflet.markercluster.js"),
    ("cardiomapa", "cardiomapa.js"),
)
STYLES = (
    ("leaflet_css", "vendor/leaflet/leaflet.css"),
    ("markercluster_css", "vendor/leaflet.markercluster/MarkerCluster.css"),
    ("markercluster_default_css", "vendor/leaflet.markercluster/MarkerCluster.Default.css"),
    ("cardiomapa_css", "cardiomapa.css"),
)
FAVICON = "favicon.svg"


@dataclass(frozen=True)
class Basemap:
    """Where tiles come from: an XYZ URL template (``{z}/{x}/{y}``) or ``None`` for none."""

    url: str | None
    attribution: str = ""
    max_zoom: int = 19


def basemap_of(settings: Settings) -> Basemap:
    """The basemap the settings configure (none when ``tile_url`` is empty)."""
    return Basemap(settings.tile_url or None, settings.tile_attribution, settings.tile_max_zoom)


def base_map(
    city: CityProfile,
    basemap: Basemap,
    static_url: str,
    title: str,
    *,
    extent: gpd.GeoDataFrame | None = None,
) -> tuple[folium.Map, list[list[float]]]:
    """A map with the vendored assets and the basemap (if any), and the bounds to fit: those of
    ``extent`` (the CEAS zones: where people live) or else of the municipality."""
    area = city.boundary
    if extent is not None and len(extent):
        area = extent.to_crs(WGS84).union_all()
    minx, miny, maxx, maxy = area.bounds
    centre = area.centroid
    fmap = folium.Map(
        location=[centre.y, centre.x],
        zoom_start=13,
        tiles=None,
        max_zoom=basemap.max_zoom,
        control_scale=False,  # cardiomapa.js adds a metric-only scale
        prefer_canvas=False,
    )
    fmap.options["maxZoom"] = basemap.max_zoom  # folium gives it to tiles only; clusters need it
    # Instance lists: folium's are class-level and shared (never mutate them).
    fmap.default_js = [(name, f"{static_url}/{path}") for name, path in SCRIPTS]
    fmap.default_css = [(name, f"{static_url}/{path}") for name, path in STYLES]
    if basemap.url:
        folium.TileLayer(
            tiles=basemap.url,
            attr=basemap.attribution or "mapa base",
            name="Mapa base",
            max_zoom=basemap.max_zoom,
            max_native_zoom=min(basemap.max_zoom, 19),
        ).add_to(fmap)
    # Not folium's fit_bounds: with a centre and zoom given, Leaflet animates it, and a view set
    # while that animation runs (a lookup right after loading) is undone when it ends.
    # cardiomapa.js fits these bounds at once, unanimated.
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(f"<title>{inert(escape(title))}</title>"), name="title")
    icon = f'<link rel="icon" href="{static_url}/{FAVICON}" type="image/svg+xml"/>'
    root.header.add_child(Element(icon), name="favicon")
    return fmap, [[miny, minx], [maxy, maxx]]


def installable(fmap: folium.Map, static_url: str) -> None:
    """Link the web app manifest (``/manifest.webmanifest``) and its icons: a served page can
    be installed on a phone's home screen and opened without a network."""
    root = fmap.get_root()
    assert isinstance(root, Figure)
    links = (
        '<link rel="manifest" href="/manifest.webmanifest"/>'
        '<meta name="theme-color" content="#0a8f3c"/>'
        f'<link rel="apple-touch-icon" href="{static_url}/icons/icon-192.png"/>'
    )
    root.header.add_child(Element(links), name="installable")


def outline(fmap: folium.Map, city: CityProfile) -> None:
    """The municipal boundary, dashed, as context (not listed in the layer control)."""
    folium.GeoJson(
        {"type": "Feature", "properties": {}, "geometry": city.boundary.__geo_interface__},
        name="Término municipal",
        style_function=lambda _f: {
            "color": "#333",
            "weight": 2,
            "dashArray": "6 4",
            "fill": False,
        },
        interactive=False,
        control=False,
    ).add_to(fmap)


class Page(MacroElement):
    """Hands the map, its options and its data to ``cardiomapa.js`` (``citizen`` / ``planner``).

    The JSON goes into the page only after folium has rendered it (:func:`page_html`): branca
    compiles every rendered fragment again as a Jinja template, so text such as ``{{ … }}`` in a
    device's name would otherwise be evaluated on the server.
    """

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <script type="application/json" id="cm-options">{{ this.token("options") }}</script>
        <script type="application/json" id="cm-data">{{ this.token("data") }}</script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        cardiomapa.{{ this.kind }}({{ this.map_name }},
            JSON.parse(document.getElementById("cm-options").textContent),
            JSON.parse(document.getElementById("cm-data").textContent));
        {% endmacro %}
        """
    )

    def __init__(
        self, kind: str, fmap: folium.Map, options: dict[str, Any], data: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self._name = "CardiomapaPage"
        self.kind = kind
        self.map_name = fmap.get_name()
        self.documents = {"options": _script_json(options), "data": _script_json(data)}

    def token(self, part: str) -> str:
        return f"@@{self.get_name()}:{part}@@"


def _script_json(document: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` can close it early)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_html(fmap: folium.Map, page: Page) -> str:
    """The rendered page, with ``page``'s options and data put in, zoomable and in Spanish."""
    html = fmap.get_root().render()
    for part, document in page.documents.items():
        html = html.replace(page.token(part), document, 1)
    # folium's viewport forbids zooming the page (maximum-scale=1, user-scalable=no): people who
    # need larger text could not enlarge the panel or the popups (WCAG 1.4.4; axe meta-viewport).
    html = _FOLIUM_VIEWPORT.sub(_VIEWPORT, html, count=1)
    return html.replace("<html>", '<html lang="es">', 1)


_FOLIUM_VIEWPORT = re.compile(r'<meta name="viewport" content="[^"]*maximum-scale[^"]*"\s*/>')
_VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1"/>'

# --- a file to share ---------------------------------------------------------------------------

_CSS_URL = re.compile(r"url\((['\"]?)(images/[^)'\"]+)\1\)")


def self_contained(html: str, *, static_url: str = "/static") -> str:
    """``html`` with every local script and style sheet inlined (images as ``data:`` URIs).

    The result opens from a file or an e-mail with no server: only the basemap tiles, if any,
    are fetched from outside.
    """
    for _name, path in SCRIPTS:
        code = (STATIC_DIR / path).read_text(encoding="utf-8").replace("</script", "<\\/script")
        tag = f'<script src="{static_url}/{path}"></script>'
        html = _replace_once(html, tag, f"<script>\n{code}\n</script>")
    for _name, path in STYLES:
        css = _inline_css_images((STATIC_DIR / path).read_text(encoding="utf-8"), path)
        tag = f'<link rel="stylesheet" href="{static_url}/{path}"/>'
        html = _replace_once(html, tag, f"<style>\n{css}\n</style>")
    icon = base64.b64encode((STATIC_DIR / FAVICON).read_bytes()).decode("ascii")
    return html.replace(
        f'href="{static_url}/{FAVICON}"', f'href="data:image/svg+xml;base64,{icon}"'
    )


def _replace_once(html: str, tag: str, replacement: str) -> str:
    if tag not in html:
        msg = f"the page does not load {tag!r}: cannot inline it"
        raise ValueError(msg)
    return html.replace(tag, replacement, 1)


def _inline_css_images(css: str, path: str) -> str:
    folder = (STATIC_DIR / path).parent

    def data_uri(match: re.Match[str]) -> str:
        image = folder / match.group(2)
        if not image.is_file():
            return match.group(0)
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{encoded})"

    return _CSS_URL.sub(data_uri, css)
