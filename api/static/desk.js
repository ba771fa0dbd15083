/* cardiomapa — the staff desk (/gestion): one small map of the pending devices.
   Only an enhancement: every position is also written in its card, and the page works
   without this script. Positions come from the page's JSON block (no inline script).
   Names are as the entities typed them: they reach the map only as text nodes, never as HTML
   (Leaflet reads a string given to bindTooltip as HTML). */
(function () {
  "use strict";
  /** A tooltip's content as an element holding ``text`` as text. */
  function asText(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }
  var box = document.getElementById("desk-map");
  var data = document.getElementById("desk-map-data");
  if (!box || !data || typeof L === "undefined") { return; }
  var points = JSON.parse(data.textContent || "[]");
  if (!points.length) { return; }
  box.hidden = false;
  var map = L.map(box, { zoomControl: false, scrollWheelZoom: false });
  L.control.zoom({ zoomInTitle: "Acercar", zoomOutTitle: "Alejar" }).addTo(map);
  map.attributionControl.setPrefix(false);
  var tiles = box.getAttribute("data-tiles");
  if (tiles) {
    L.tileLayer(tiles, { attribution: box.getAttribute("data-attribution") || "" }).addTo(map);
  }
  // The municipality, its CEAS zones and the devices already on the citizens' map
  // (map-context.js): bearings even without tiles, and neighbours to compare the pins with.
  if (typeof window.cardiomapaContext === "function") {
    window.cardiomapaContext(map, box.getAttribute("data-context-url"));
  }
  var bounds = [];
  points.forEach(function (p) {
    var here = [p.lat, p.lon];
    bounds.push(here);
    if (p.old) {
      var before = [p.old[1], p.old[0]];
      bounds.push(before);
      L.polyline([before, here], { color: "#8a4b00", weight: 2, dashArray: "4 4", interactive: false }).addTo(map);
      L.circleMarker(before, { className: "cm-desk-old", radius: 7, color: "#5f6368", weight: 2, fillColor: "#fff", fillOpacity: 1 })
        .bindTooltip(asText(p.n + ". " + p.name + " (posición anterior)")).addTo(map);
    }
    L.circleMarker(here, { className: "cm-desk-new", radius: 9, color: "#8a4b00", weight: 2, fillColor: "#ffb300", fillOpacity: 0.9 })
      .bindTooltip(asText(String(p.n)), { permanent: true, direction: "right", className: "cm-desk-label" })
      .on("click", function () {
        var card = document.getElementById("pendiente-" + p.n);
        if (card) { card.scrollIntoView({ behavior: "smooth" }); }
      })
      .addTo(map);
  });
  map.fitBounds(L.latLngBounds(bounds).pad(0.2), { maxZoom: 17 });
})();
