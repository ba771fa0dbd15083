/* cardiomapa — the bearings of a small map that may have no tiles: the municipality's boundary,
   its CEAS zones and the devices already on the citizens' map, from our own GeoJSON
   (/entidades/contexto.geojson; public fields only). Shared by the desk's moderation map and
   the portal's place picker. Nothing drawn is interactive: a tap goes through to the map.
   Each layer's SVG path carries a class (cm-ctx-boundary, cm-ctx-zone, cm-ctx-device).
   Needs Leaflet (L). Plain ES2017. */
(function () {
  "use strict";
  var STYLES = {
    municipality: { className: "cm-ctx-boundary", color: "#0d47a1", weight: 2.5, fill: false },
    ceas: { className: "cm-ctx-zone", color: "#5f6368", weight: 1, dashArray: "5 4",
            fillColor: "#5f6368", fillOpacity: 0.04 }
  };
  var DEVICE = { className: "cm-ctx-device", radius: 5, color: "#1b5e20", weight: 2,
                 fillColor: "#ffffff", fillOpacity: 1 };

  /** Draw the context from ``url`` on ``map``; ``done(layer)`` when drawn, ``failed()`` if not. */
  window.cardiomapaContext = function (map, url, done, failed) {
    if (typeof L === "undefined" || !url) { return; }
    fetch(url, { headers: { Accept: "application/geo+json, application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (geojson) {
        var areas = { type: "FeatureCollection", features: [] };
        var devices = { type: "FeatureCollection", features: [] };
        (geojson.features || []).forEach(function (feature) {
          var kind = feature.properties && feature.properties.kind;
          if (kind === "device") { devices.features.push(feature); }
          else if (kind === "municipality" || kind === "ceas") { areas.features.push(feature); }
        });
        // Zones first, the boundary over them, the devices on top.
        areas.features.sort(function (a, b) {
          return (a.properties.kind === "municipality") - (b.properties.kind === "municipality");
        });
        // A pane of its own under the overlay pane: the page's own markers stay on top.
        if (!map.getPane("cmContext")) {
          map.createPane("cmContext").style.zIndex = 350;
        }
        var group = L.featureGroup().addTo(map);
        L.geoJSON(areas, {
          pane: "cmContext", interactive: false,
          style: function (feature) { return STYLES[feature.properties.kind]; }
        }).addTo(group);
        L.geoJSON(devices, {
          pane: "cmContext", interactive: false,
          pointToLayer: function (feature, latlng) {
            return L.circleMarker(latlng, Object.assign({ pane: "cmContext" }, DEVICE));
          }
        }).addTo(group);
        if (done) { done(group); }
      })
      .catch(function () { if (failed) { failed(); } });
  };
})();
