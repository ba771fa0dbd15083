/* cardiomapa — pick a device's place on a small map (progressive enhancement).

   Enhances <div data-place-picker data-bounds="minlon,minlat,maxlon,maxlat"
   [data-context-url="…GeoJSON…"] [data-tile-url="…" data-tile-attribution="…"]> holding the
   labelled number inputs name="lon" and name="lat" (they stay the way to type a position) and a
   button [data-use-location]. Tapping the map places a draggable marker and writes lon/lat with 6
   decimals (WGS 84, EPSG:4326); typing lon/lat moves the marker; the button asks the browser for
   the current position. Messages go to [data-place-status] (created if missing, aria-live).
   Needs Leaflet (L) loaded first, and map-context.js for the boundary, the CEAS zones and the
   devices already registered. Plain ES2017. */
(function () {
  "use strict";
  if (typeof L === "undefined") { return; }

  var MAP_LABEL = "Mapa para situar el desfibrilador: toque o haga clic en el lugar exacto; " +
    "también puede escribir la longitud y la latitud";
  var MARKER_TITLE = "Posición del desfibrilador (arrástrela para corregirla)";
  var GEO_ERRORS = {
    1: "No se ha dado permiso para usar su ubicación. Puede tocar el mapa o escribir la " +
      "longitud y la latitud.",
    2: "No se ha podido averiguar su ubicación ahora. Pruebe de nuevo al aire libre, toque el " +
      "mapa o escriba la longitud y la latitud.",
    3: "Se ha agotado el tiempo para obtener su ubicación. Pruebe de nuevo, toque el mapa o " +
      "escriba la longitud y la latitud."
  };

  function parseBounds(text) {
    var parts = (text || "").split(",").map(Number);
    if (parts.length !== 4 || parts.some(function (n) { return !isFinite(n); })) { return null; }
    return L.latLngBounds([parts[1], parts[0]], [parts[3], parts[2]]);
  }

  function number(input) {
    var text = String(input.value).trim().replace(",", ".");
    return text === "" ? NaN : Number(text);
  }

  function enhance(root) {
    var lonInput = root.querySelector('input[name="lon"]');
    var latInput = root.querySelector('input[name="lat"]');
    if (!lonInput || !latInput || root.hasAttribute("data-place-ready")) { return; }
    root.setAttribute("data-place-ready", "");
    var bounds = parseBounds(root.getAttribute("data-bounds"));
    var button = root.querySelector("[data-use-location]");

    var status = root.querySelector("[data-place-status]");
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("data-place-status", "");
      var after = button && button.parentNode === root ? button : root.lastElementChild;
      if (after) { after.insertAdjacentElement("afterend", status); } else { root.appendChild(status); }
    }
    status.classList.add("cm-place-status");
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");

    var box = root.querySelector("[data-place-map]");
    if (!box) {
      box = document.createElement("div");
      box.setAttribute("data-place-map", "");
      status.insertAdjacentElement("afterend", box);
    }
    box.hidden = false;
    box.classList.add("cm-place-map");
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", root.getAttribute("data-map-label") || MAP_LABEL);
    if (!box.offsetHeight) { box.style.height = "300px"; }  // no stylesheet: still usable

    var map = L.map(box, { maxZoom: 19, zoomControl: false, tapTolerance: 20 });
    L.control.zoom({ zoomInTitle: "Acercar", zoomOutTitle: "Alejar" }).addTo(map);
    map.attributionControl.setPrefix(false);
    var tiles = root.getAttribute("data-tile-url");
    if (tiles) {
      L.tileLayer(tiles, {
        maxZoom: 19, attribution: root.getAttribute("data-tile-attribution") || ""
      }).addTo(map);
    }
    // The municipality, its CEAS zones and the devices already registered (map-context.js):
    // bearings even without tiles.
    var context = root.getAttribute("data-context-url");
    if (context && typeof window.cardiomapaContext === "function") {
      window.cardiomapaContext(map, context, function (layer) {
        if (!bounds && !marker) { map.fitBounds(layer.getBounds()); }
      }, function () {
        tell("No se ha podido cargar el contorno del municipio; el mapa funciona igual.", false);
      });
    }

    var marker = null;
    var writing = false;

    function tell(text, problem) {
      status.textContent = text;
      status.classList.toggle("cm-place-problem", !!problem);
    }

    function outside(latlng) { return bounds && !bounds.contains(latlng); }

    function place(latlng) {
      if (!marker) {
        marker = L.marker(latlng, {
          draggable: true, autoPan: true, title: MARKER_TITLE, alt: MARKER_TITLE
        }).addTo(map);
        marker.on("dragend", function () { chosen(marker.getLatLng()); });
      } else {
        marker.setLatLng(latlng);
      }
      root.setAttribute("data-place-lat", latlng.lat.toFixed(6));
      root.setAttribute("data-place-lon", latlng.lng.toFixed(6));
    }

    function write(latlng) {
      writing = true;
      lonInput.value = latlng.lng.toFixed(6);
      latInput.value = latlng.lat.toFixed(6);
      [lonInput, latInput].forEach(function (input) {
        input.dispatchEvent(new Event("input", { bubbles: true }));
        input.dispatchEvent(new Event("change", { bubbles: true }));
      });
      writing = false;
    }

    /* A point chosen on the map (tap, drag or location): marker, inputs, and a word. */
    function chosen(latlng, prefix) {
      latlng = latlng.wrap();
      place(latlng);
      write(latlng);
      var where = "longitud " + latlng.lng.toFixed(6) + ", latitud " + latlng.lat.toFixed(6);
      if (outside(latlng)) {
        tell((prefix || "") + "Punto marcado (" + where + "), pero queda fuera del municipio: " +
          "compruébelo.", true);
      } else {
        tell((prefix || "") + "Punto marcado: " + where + ".", false);
      }
    }

    function typed() {
      if (writing) { return; }
      var lon = number(lonInput);
      var lat = number(latInput);
      if (!isFinite(lon) || !isFinite(lat) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
        return;
      }
      var latlng = L.latLng(lat, lon);
      place(latlng);
      if (!map.getBounds().contains(latlng)) { map.panTo(latlng, { animate: false }); }
      if (outside(latlng)) {
        var swapped = L.latLng(lon, lat);
        tell(bounds.contains(swapped)
          ? "El punto queda fuera del municipio: ¿ha intercambiado la longitud y la latitud?"
          : "El punto queda fuera del municipio: compruebe la longitud y la latitud.", true);
      } else if (status.classList.contains("cm-place-problem")) {
        tell("", false);
      }
    }

    map.on("click", function (event) { chosen(event.latlng); });
    lonInput.addEventListener("input", typed);
    latInput.addEventListener("input", typed);
    lonInput.addEventListener("change", typed);
    latInput.addEventListener("change", typed);

    var busy = false;
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        if (busy) { return; }
        if (!window.isSecureContext || !("geolocation" in navigator)) {
          tell("Este navegador no puede dar su ubicación (hace falta una conexión segura). " +
            "Toque el mapa o escriba la longitud y la latitud.", true);
          return;
        }
        busy = true;
        button.setAttribute("aria-busy", "true");
        tell("Buscando su ubicación…", false);
        navigator.geolocation.getCurrentPosition(function (position) {
          busy = false;
          button.removeAttribute("aria-busy");
          var latlng = L.latLng(position.coords.latitude, position.coords.longitude);
          map.setView(latlng, Math.max(map.getZoom(), 18), { animate: false });
          var accuracy = Math.round(position.coords.accuracy || 0);
          chosen(latlng, "Ubicación obtenida" + (accuracy ? " (precisión ± " + accuracy + " m)" : "") +
            ". Compruebe el punto y arrástrelo si hace falta. ");
        }, function (error) {
          busy = false;
          button.removeAttribute("aria-busy");
          tell(GEO_ERRORS[error.code] || GEO_ERRORS[2], true);
        }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 0 });
      });
    }

    var lon = number(lonInput);
    var lat = number(latInput);
    if (isFinite(lon) && isFinite(lat) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
      place(L.latLng(lat, lon));
      map.setView([lat, lon], 17);
    } else if (bounds) {
      map.fitBounds(bounds);
    } else {
      map.setView([40.4, -3.7], 5);
    }
    if (typeof ResizeObserver === "function") {  // a form section opened, a phone turned
      new ResizeObserver(function () { map.invalidateSize({ pan: false }); }).observe(box);
    }
    root.cardiomapaMap = map;  // for tests and other enhancements
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-place-picker]"), enhance);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
