/* cardiomapa — behaviour of the citizens' map and the planners' map.
 *
 * The pages are rendered by geo/maps.py (folium); it calls cardiomapa.citizen(map, options, data)
 * or cardiomapa.planner(map, options). Text shown to people is Spanish. Data from records is
 * always inserted as text (never as HTML).
 */
(function () {
  "use strict";

  const cardiomapa = (window.cardiomapa = window.cardiomapa || {});
  const STATE_CLASS = {
    open: "open", closed: "closed", restricted: "closed", unknown_hours: "unknown",
    out_of_service: "closed", reported: "unknown", maintenance_overdue: "unknown",
  };
  const LEGEND = [
    ["open", "Disponible ahora"],
    ["closed", "Cerrado ahora o de acceso restringido"],
    ["unknown", "Horario desconocido"],
  ];
  const REPORT_KINDS = [
    ["missing", "No está / ha desaparecido"],
    ["broken", "Averiado, sin batería o con parches caducados"],
    ["moved", "Está en otro sitio"],
    ["wrong_hours", "El horario no es correcto"],
    ["other", "Otro problema"],
  ];
  const DATE = { day: "2-digit", month: "2-digit", year: "numeric" };
  const HEART =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 21s-7.5-4.6-9.6-9.2C.9 8.4 3 4.5 6.6 4.5c2.1 0 3.6 1.2 4.4 2.6.8-1.4 2.3-2.6 4.4-2.6 3.6 0 5.7 3.9 4.2 7.3C19.5 16.4 12 21 12 21z" fill="currentColor"/><path d="M13 7l-3 6h3l-2 5 5-7h-3l2-4z" fill="#fff"/></svg>';

  /** Build an element: el("p", {class: "x"}, "text", child…). Strings become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** The link to the open-data page (downloads, OGC API, QGIS), when the page is served. */
  function openDataLink(options) {
    if (!options.open_data_url) return null;
    return el(
      "p",
      { class: "cm-small" },
      el("a", { href: options.open_data_url }, "Datos abiertos: descargas y servicio para QGIS")
    );
  }

  /** The map is the page's main landmark: its panel, controls, legend and popups are inside it
   * (axe's landmark-one-main and region rules; folium puts the map straight in <body>). */
  function mainLandmark(map, label) {
    const container = map.getContainer();
    container.setAttribute("role", "main");
    container.setAttribute("aria-label", label);
  }

  function metres(distance) {
    return distance < 1000
      ? `${Math.round(distance)} m`
      : `${(distance / 1000).toFixed(1).replace(".", ",")} km`;
  }

  function minutes(walkMin) {
    return `${Math.max(1, Math.round(walkMin))} min a pie`;
  }

  /** Round trip on foot, and what to do with it: the literature's rule is about 1.5 minutes
   * each way (3 in all); farther, whoever is alone stays with the victim. */
  const NEAR_ROUND_TRIP_MIN = 3;

  function roundTrip(walkMin) {
    const total = Math.max(1, Math.round(2 * walkMin));
    if (2 * walkMin <= NEAR_ROUND_TRIP_MIN) {
      return {
        near: true,
        text: `Ida y vuelta a pie: ${total} min.`,
        advice: "Cerca: que alguien vaya a por él ya; si está solo, tras llamar al 112 vaya usted.",
      };
    }
    return {
      near: false,
      text: `Ida y vuelta a pie: ${total} min.`,
      advice:
        "Lejos para ir usted: no deje a la persona. Empiece las compresiones y, si hay alguien más, envíelo a por el desfibrilador.",
    };
  }

  function isPhone() {
    return window.matchMedia("(max-width: 640px)").matches;
  }

  function osmDirections(from, to) {
    const route = `${from.lat.toFixed(6)},${from.lng.toFixed(6)};${to.lat.toFixed(6)},${to.lng.toFixed(6)}`;
    return `https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&route=${encodeURIComponent(route)}`;
  }

  /* ---------------------------------------------------------------- citizens' map */

  /** The panel as a bottom sheet on phones: collapsed, half or full height, set by its handle
   * (a tap steps through them; the arrow keys raise and lower it; a drag snaps to the nearest). */
  function bottomSheet(panel, handle, map) {
    const STATES = ["collapsed", "half", "full"];
    const NEXT = { collapsed: "Ver más", half: "Ver toda la lista", full: "Ver menos" };
    const NOW = { collapsed: "plegada", half: "a media altura", full: "desplegada" };
    let startY = null;
    let startHeight = 0;
    let dragged = false;

    function set(state) {
      panel.dataset.sheet = state;
      panel.style.height = "";
      handle.querySelector(".cm-sheet-label").textContent = NEXT[state];
      handle.setAttribute("aria-label", `Lista ${NOW[state]}: ${NEXT[state].toLowerCase()}`);
    }
    function step(by) {
      const index = STATES.indexOf(panel.dataset.sheet);
      set(STATES[Math.min(STATES.length - 1, Math.max(0, index + by))]);
    }
    handle.addEventListener("click", () => {
      if (dragged) {
        dragged = false;
        return;
      }
      set(STATES[(STATES.indexOf(panel.dataset.sheet) + 1) % STATES.length]);
    });
    handle.addEventListener("keydown", (event) => {
      if (event.key === "ArrowUp" || event.key === "ArrowDown") {
        step(event.key === "ArrowUp" ? 1 : -1);
        event.preventDefault();
      }
    });
    handle.addEventListener("pointerdown", (event) => {
      if (!isPhone()) return;
      startY = event.clientY;
      startHeight = panel.getBoundingClientRect().height;
      dragged = false;
      handle.setPointerCapture(event.pointerId);
    });
    handle.addEventListener("pointermove", (event) => {
      if (startY === null) return;
      const rise = startY - event.clientY;
      if (Math.abs(rise) > 8) dragged = true;
      if (dragged) panel.style.height = `${Math.max(72, startHeight + rise)}px`;
    });
    handle.addEventListener("pointerup", () => {
      if (startY === null) return;
      startY = null;
      if (!dragged) return;
      const share = panel.getBoundingClientRect().height / map.getContainer().clientHeight;
      set(share < 0.3 ? "collapsed" : share < 0.7 ? "half" : "full");
    });
    set(panel.dataset.sheet || "half");
    return { set };
  }

  /** A metric scale (the maps never show feet) and a one-line attribution. */
  function mapControls(map, position) {
    L.control.scale({ imperial: false, maxWidth: 120, position: position || "bottomleft" }).addTo(map);
    if (map.attributionControl) {
      map.attributionControl.setPrefix('<a href="https://leafletjs.com" title="Biblioteca de mapas">Leaflet</a>');
    }
  }

  cardiomapa.citizen = function (map, options, initialData) {
    map.fitBounds(options.bounds, { animate: false });
    mapControls(map, "bottomright"); // the panel holds the left side
    let data = initialData;
    let rows = []; // arrays, as sent: 50,000 objects would cost more than the rest of the load
    let C = {}; // column name -> index in a row
    const markers = new Map(); // id -> marker
    let origin = null;
    let originMarker = null;
    let line = null;
    let refreshTimer = null;
    const api = data.api_url;
    const time = new Intl.DateTimeFormat("es-ES", { timeZone: data.timezone, hour: "2-digit", minute: "2-digit" });
    const day = new Intl.DateTimeFormat("es-ES", { timeZone: data.timezone, weekday: "long" });
    const ymd = new Intl.DateTimeFormat("en-CA", { timeZone: data.timezone, year: "numeric", month: "2-digit", day: "2-digit" });

    const icons = {};
    for (const [cls] of LEGEND) {
      icons[cls] = L.divIcon({
        className: `cm-device cm-${cls}`,
        html: HEART,
        iconSize: [28, 28],
        iconAnchor: [14, 14],
        popupAnchor: [0, -12],
      });
    }

    const cluster = L.markerClusterGroup({
      chunkedLoading: true,
      chunkDelay: 10, // short pauses between chunks of markers: the page is ready sooner
      showCoverageOnHover: false,
      maxClusterRadius: 45,
      disableClusteringAtZoom: 18,
      iconCreateFunction(group) {
        const children = group.getAllChildMarkers();
        const open = children.reduce((n, m) => n + (m.cmState === "open" ? 1 : 0), 0);
        const size = children.length < 100 ? 34 : children.length < 1000 ? 40 : 48;
        return L.divIcon({
          className: `cm-cluster ${open ? "cm-cluster-open" : "cm-cluster-closed"}`,
          html: `<span title="${children.length} desfibriladores, ${open} disponibles ahora">${children.length}</span>`,
          iconSize: [size, size],
        });
      },
    });
    map.addLayer(cluster);
    // One handler for every device: its popup is bound when first opened, not at load.
    cluster.on("click", (event) => showPopup(event.layer));

    function showPopup(marker) {
      if (!marker.getPopup()) {
        marker.bindPopup(() => popup(record(marker.cmRow)), { maxWidth: 320, className: "cm-popup-wrap" });
      }
      // On a phone the sheet steps aside; everywhere the popup pans clear of the call button,
      // the controls, the panel and the sheet, so nothing covers it or its buttons.
      if (isPhone()) sheet.set("collapsed");
      const free = freeArea();
      const popupOptions = marker.getPopup().options;
      popupOptions.maxWidth = Math.max(200, Math.min(320, free.width - 40));
      popupOptions.autoPanPaddingTopLeft = L.point(free.left, free.top);
      popupOptions.autoPanPaddingBottomRight = L.point(free.right, free.bottom);
      marker.openPopup();
    }

    /** The part of the map nothing covers: padding (px) from each edge, and its size. */
    function freeArea() {
      const box = map.getContainer().getBoundingClientRect();
      const free = { top: 10, left: 10, right: 10, bottom: 10 };
      const covers = [call, ...map.getContainer().querySelectorAll(".leaflet-top .leaflet-control")];
      if (isPhone()) covers.push(...map.getContainer().querySelectorAll(".leaflet-bottom.leaflet-right .leaflet-control"));
      for (const node of covers) {
        const rect = node.getBoundingClientRect();
        if (rect.height && rect.top < box.top + box.height / 3) free.top = Math.max(free.top, rect.bottom - box.top + 8);
      }
      const area = panel.getBoundingClientRect();
      if (isPhone()) free.bottom = Math.max(free.bottom, box.bottom - area.top + 10);
      else {
        free.left = Math.max(free.left, area.right - box.left + 10);
        for (const node of map.getContainer().querySelectorAll(".leaflet-bottom .leaflet-control")) {
          const rect = node.getBoundingClientRect();
          if (rect.height && rect.width > 150) free.bottom = Math.max(free.bottom, box.bottom - rect.top + 8);
        }
      }
      free.width = box.width - free.left - free.right;
      free.height = box.height - free.top - free.bottom;
      return free;
    }

    function record(row) {
      return Object.fromEntries(data.columns.map((name, index) => [name, row[index]]));
    }

    // --- the panel: nearest lookup, status, notice
    const status = el("p", { id: "cm-status", role: "status", "aria-live": "polite" });
    const results = el("ol", { id: "cm-results" });
    const locate = el(
      "button",
      { type: "button", id: "cm-locate", class: "cm-button", onclick: useMyLocation },
      "Usar mi ubicación"
    );
    const stamp = el("p", { class: "cm-small", id: "cm-stamp" });
    // Emergency first: the call is always on screen, above the map and the sheet, on every size.
    const call = el(
      "a",
      { href: "tel:112", id: "cm-call", class: "cm-call" },
      el("span", { class: "cm-call-icon", "aria-hidden": "true" }, "☎"),
      " Llamar al 112"
    );
    L.DomEvent.disableClickPropagation(call);
    // What the European Resuscitation Council asks of anyone who finds a person in arrest.
    const guidance = el(
      "details",
      { id: "cm-guide", open: true },
      el("summary", {}, "Si alguien no responde y no respira con normalidad"),
      el(
        "ol",
        {},
        el("li", {}, "Llame al 112 y ponga el altavoz."),
        el("li", {}, "Empiece las compresiones: en el centro del pecho, fuerte y rápido (100–120 por minuto)."),
        el("li", {}, "Mande a alguien a por el desfibrilador más cercano."),
        el("li", {}, "Enciéndalo y siga su voz.")
      )
    );
    const handle = el(
      "button",
      { type: "button", id: "cm-sheet", class: "cm-sheet-handle", "aria-controls": "cm-panel" },
      el("span", { class: "cm-sheet-bar", "aria-hidden": "true" }),
      el("span", { class: "cm-sheet-label" }, "Ver más")
    );
    const panel = el(
      "aside",
      { id: "cm-panel", "aria-label": "Buscar el desfibrilador más cercano", "data-sheet": "half" },
      handle,
      el("h1", {}, options.title),
      guidance,
      el("h2", {}, "¿Dónde está el desfibrilador más cercano?"),
      el("p", {}, locate, " o toque un punto del mapa."),
      stamp,
      status,
      results,
      options.notice ? el("p", { class: "cm-small cm-notice" }, options.notice) : null,
      openDataLink(options)
    );
    L.DomEvent.disableClickPropagation(panel);
    L.DomEvent.disableScrollPropagation(panel);
    map.getContainer().append(call, panel);
    mainLandmark(map, options.title);
    const sheet = bottomSheet(panel, handle, map);

    const legendCounts = {};
    const legend = L.control({ position: "bottomright" });
    legend.onAdd = function () {
      const box = el("div", { class: "cm-legend", id: "cm-legend" }, el("strong", {}, "Desfibriladores"));
      for (const [cls, label] of LEGEND) {
        legendCounts[cls] = el("span", { class: "cm-count" });
        box.append(el("div", {}, el("i", { class: `cm-swatch cm-${cls}` }), ` ${label} `, legendCounts[cls]));
      }
      box.append(el("div", {}, el("i", { class: "cm-swatch cm-cluster-open" }), " Grupo (n.º de equipos)"));
      return box;
    };
    legend.addTo(map);

    const dialog = reportDialog();

    function load(next) {
      data = next;
      rows = data.rows;
      C = Object.fromEntries(data.columns.map((name, index) => [name, index]));
      cluster.clearLayers();
      markers.clear();
      const counts = { open: 0, closed: 0, unknown: 0 };
      const batch = [];
      for (const row of rows) {
        const state = data.states[row[C.state]];
        const cls = STATE_CLASS[state];
        counts[cls] += 1;
        const name = row[C.name];
        const marker = L.marker([row[C.lat], row[C.lon]], { icon: icons[cls], title: name, alt: name, riseOnHover: true });
        marker.cmState = state;
        marker.cmRow = row;
        markers.set(row[C.id], marker);
        batch.push(marker);
      }
      for (const [cls] of LEGEND) legendCounts[cls].textContent = `(${counts[cls]})`;
      stamp.textContent = data.kept_at
        ? `Sin conexión: datos guardados a las ${time.format(new Date(data.kept_at))} del ${new Date(data.kept_at).toLocaleDateString("es-ES", { ...DATE, timeZone: data.timezone })} (${age(data.kept_at)}). El estado se calcula en este teléfono con los horarios guardados.`
        : `Estado calculado a las ${time.format(new Date(data.at))} del ${new Date(data.at).toLocaleDateString("es-ES", { ...DATE, timeZone: data.timezone })}.`;
      stamp.classList.toggle("cm-offline", Boolean(data.kept_at));
      const done = () => {
        document.body.dataset.cmReady = String(rows.length);
        cardiomapa.ready = true;
        if (window.performance && performance.mark) performance.mark("cardiomapa-ready");
      };
      if (!batch.length) done();
      cluster.options.chunkProgress = (processed, total) => {
        if (processed === total) done();
      };
      cluster.addLayers(batch);
      scheduleRefresh();
    }

    function scheduleRefresh() {
      if (refreshTimer) clearTimeout(refreshTimer);
      if (!options.data_url || !data.refresh_at) return;
      const wait = Math.min(Math.max(new Date(data.refresh_at) - Date.now() + 2000, 5000), 30 * 60 * 1000);
      refreshTimer = setTimeout(async () => {
        try {
          const response = await fetch(options.data_url, { headers: { Accept: "application/json" } });
          if (!response.ok) throw new Error(String(response.status));
          load(await response.json());
          if (origin) lookup(origin);
        } catch (error) {
          refreshTimer = setTimeout(scheduleRefresh, 60 * 1000);
        }
      }, wait);
    }

    function changeText(state, iso) {
      if (!iso) return state === "open" ? "abierto las 24 horas" : "";
      const when = new Date(iso);
      const sameDay = ymd.format(when) === ymd.format(new Date(data.at));
      const at = sameDay ? `a las ${time.format(when)}` : `el ${day.format(when)} a las ${time.format(when)}`;
      return state === "open" ? `cierra ${at}` : `abre ${at}`;
    }

    function stateLine(row) {
      const state = data.states[row.state];
      const change = state === "open" || state === "closed" ? changeText(state, row.next_change) : "";
      return el(
        "p",
        { class: `cm-state cm-${STATE_CLASS[state]}` },
        row.state_text + (change ? ` · ${change}` : "")
      );
    }

    function popup(row) {
      const where = [row.location_text, row.address].filter(Boolean).join(" — ") || "sin indicaciones";
      const hours =
        row.hours === null ? "desconocido" : data.hours_text[row.hours];
      const indoor =
        row.indoor === true
          ? `en el interior${row.level !== null ? `, planta ${row.level}` : ""}`
          : row.indoor === false
            ? "en el exterior"
            : "no consta";
      const checked = row.check_date
        ? new Date(`${row.check_date}T12:00:00`).toLocaleDateString("es-ES", DATE)
        : "sin fecha de revisión";
      const box = el(
        "div",
        { class: "cm-popup", "data-device-id": row.id },
        el("h3", {}, row.name),
        stateLine(row),
        el(
          "dl",
          {},
          el("dt", {}, "Dónde"), el("dd", { class: "cm-where" }, where),
          el("dt", {}, "Horario"),
          el("dd", { class: "cm-hours" }, hours, row.hours !== null ? el("code", {}, data.hours[row.hours]) : null),
          el("dt", {}, "Acceso"), el("dd", {}, data.access_text[row.access] || row.access),
          el("dt", {}, "Ubicación"), el("dd", {}, indoor),
          el("dt", {}, "Última revisión"), el("dd", { class: "cm-checked" }, checked),
          row.phone ? el("dt", {}, "Teléfono") : null,
          row.phone ? el("dd", {}, el("a", { href: `tel:${row.phone.replace(/\s+/g, "")}` }, row.phone)) : null
        )
      );
      const links = el("p", { class: "cm-actions" });
      const target = L.latLng(row.lat, row.lon);
      links.append(
        el(
          "a",
          {
            href: origin ? osmDirections(origin, target) : `https://www.openstreetmap.org/?mlat=${row.lat}&mlon=${row.lon}#map=19/${row.lat}/${row.lon}`,
            target: "_blank",
            rel: "noopener",
          },
          origin ? "Cómo llegar" : "Ver en OpenStreetMap"
        )
      );
      if (api) {
        links.append(
          " · ",
          el("button", { type: "button", class: "cm-link cm-report-open", onclick: () => dialog.open(row) }, "Avisar de un problema")
        );
      } else {
        links.append(el("span", { class: "cm-small" }, " · Para avisar de un problema use el mapa en línea."));
      }
      box.append(links);
      return box;
    }

    // --- nearest
    function useMyLocation() {
      if (!navigator.geolocation) {
        status.textContent = "Este navegador no da su ubicación: toque un punto del mapa.";
        return;
      }
      status.textContent = "Buscando su ubicación…";
      navigator.geolocation.getCurrentPosition(
        (position) => lookup(L.latLng(position.coords.latitude, position.coords.longitude)),
        () => {
          status.textContent = "No se ha podido obtener su ubicación: toque un punto del mapa.";
        },
        { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 }
      );
    }

    map.on("click", (event) => lookup(event.latlng));

    async function lookup(latlng) {
      origin = latlng;
      if (originMarker) originMarker.setLatLng(latlng);
      else {
        originMarker = L.circleMarker(latlng, { radius: 8, color: "#fff", weight: 3, fillColor: "#1565c0", fillOpacity: 1 })
          .bindTooltip("Punto de búsqueda")
          .addTo(map);
      }
      status.textContent = "Buscando…";
      results.replaceChildren();
      let found;
      try {
        found = api ? await remoteNearest(latlng) : localNearest(latlng, 3);
      } catch (error) {
        status.textContent = error.message;
        if (line) line.remove();
        return;
      }
      if (!found.length) {
        status.textContent = "No hay ningún desfibrilador disponible ahora cerca de ese punto. Llame al 112: le indicarán el más cercano.";
        if (line) line.remove();
        return;
      }
      const open = found.filter((d) => d.state === "open").length;
      status.textContent =
        open === 1
          ? "El desfibrilador disponible más cercano:"
          : open
            ? `Los ${open} desfibriladores disponibles más cercanos:`
            : "Ninguno disponible ahora; los más cercanos:";
      found.forEach((device, index) => results.append(resultItem(device, index)));
      guidance.open = false; // the results come up; the steps stay one tap away
      if (isPhone()) sheet.set("half");
      const top = data.kept_at ? stamp : status; // offline, the age of the data stays in view
      if (isPhone()) panel.scrollTop = Math.max(0, top.offsetTop - handle.offsetHeight - 8);
      const first = found.findIndex((d) => d.state === "open");
      select(found[first >= 0 ? first : 0], false, found);
    }

    function resultItem(device, index) {
      const target = L.latLng(device.lat, device.lon);
      const state = STATE_CLASS[device.state];
      const item = el(
        "li",
        { class: `cm-result cm-${state}`, "data-device-id": device.id },
        el("button", { type: "button", class: "cm-link cm-result-name", onclick: () => select(device, true) }, device.name),
        el("span", { class: "cm-result-state" }, device.state_text),
        el("span", { class: "cm-result-distance" }, `${metres(device.distance_m)} · ${minutes(device.walk_min)}`)
      );
      if (device.state === "open") {
        const trip = roundTrip(device.walk_min);
        const firstOpen = ![...results.children].some((other) => other.querySelector(".cm-trip"));
        item.append(
          el(
            "span",
            { class: `cm-trip ${trip.near ? "cm-trip-near" : "cm-trip-far"}` },
            el("strong", {}, trip.text),
            firstOpen ? ` ${trip.advice}` : null
          )
        );
      }
      item.append(el("a", { class: "cm-directions", href: device.directions_url || osmDirections(origin, target), target: "_blank", rel: "noopener" }, "Cómo llegar"));
      item.dataset.rank = String(index + 1);
      item.dataset.walkMin = String(device.walk_min);
      return item;
    }

    function select(device, openPopup, found) {
      const target = L.latLng(device.lat, device.lon);
      if (line) line.remove();
      line = L.polyline([origin, target], { color: "#1565c0", weight: 4, dashArray: "8 8" })
        .bindTooltip(`${metres(device.distance_m)} a pie (${minutes(device.walk_min)})`)
        .addTo(map);
      for (const item of results.children) item.classList.toggle("cm-selected", item.dataset.deviceId === device.id);
      // The person and the device in the part of the map nothing covers, with the next usable
      // ones when they are nearly as close.
      const points = [origin, target];
      for (const other of found || []) {
        if (other !== device && other.state === "open" && other.distance_m <= device.distance_m * 1.5 + 100) {
          points.push(L.latLng(other.lat, other.lon));
        }
      }
      const free = freeArea();
      map.fitBounds(L.latLngBounds(points), {
        paddingTopLeft: L.point(free.left + 20, free.top + 20),
        paddingBottomRight: L.point(free.right + 20, free.bottom + 20),
        maxZoom: 18,
        animate: false,
      });
      const marker = markers.get(device.id);
      if (openPopup && marker) cluster.zoomToShowLayer(marker, () => showPopup(marker));
    }

    async function remoteNearest(latlng) {
      const url = `${api}/nearest?lat=${latlng.lat.toFixed(6)}&lon=${latlng.lng.toFixed(6)}&limit=3`;
      let response;
      try {
        response = await fetch(url, { headers: { Accept: "application/json" } });
      } catch (error) {
        // The server is unreachable: answer from the kept copy's hours, now, in the page.
        await goOffline();
        return localNearest(latlng, 3);
      }
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.message || `Error ${response.status} del servidor.`);
      return body.results.map((d) => ({ ...d, state_text: d.state_text + closingSuffix(d) }));
    }

    function closingSuffix(device) {
      if (device.state === "open" && device.closes_at) return ` · ${changeText("open", device.closes_at)}`;
      if (device.state === "closed" && device.opens_at) return ` · ${changeText("closed", device.opens_at)}`;
      return "";
    }

    function localNearest(latlng, limit) {
      // Straight line × detour factor, as the server does without a walking network.
      const detour = data.detour_factor || 1.3;
      const radians = Math.PI / 180;
      const cos = Math.cos(latlng.lat * radians);
      const earth = 6371008.8;
      const ranked = rows
        .map((values) => {
          const row = { lon: values[C.lon], lat: values[C.lat], state: values[C.state], values };
          const dx = (row.lon - latlng.lng) * cos;
          const dy = row.lat - latlng.lat;
          return { row, distance: Math.sqrt(dx * dx + dy * dy) * radians * earth * detour };
        })
        .sort((a, b) => a.distance - b.distance);
      const open = ranked.filter((r) => data.states[r.row.state] === "open").slice(0, limit);
      const horizon = open.length === limit ? open[limit - 1].distance : Infinity;
      const others = ranked.filter((r) => data.states[r.row.state] !== "open" && r.distance < horizon).slice(0, limit);
      return open.concat(others).map(({ row: { values }, distance }) => {
        const row = record(values);
        const state = data.states[row.state];
        const change = state === "open" || state === "closed" ? changeText(state, row.next_change) : "";
        return {
          id: row.id,
          name: row.name,
          state,
          state_text: row.state_text + (change ? ` · ${change}` : ""),
          distance_m: distance,
          walk_min: distance / 75,
          lat: row.lat,
          lon: row.lon,
        };
      });
    }

    // --- problem reports (served pages only)
    function reportDialog() {
      if (!api) return null;
      const kind = el("select", { name: "kind", id: "cm-report-kind", required: true });
      for (const [value, label] of REPORT_KINDS) kind.append(el("option", { value }, label));
      const message = el("textarea", { name: "message", id: "cm-report-message", required: true, maxlength: "1000", rows: "4" });
      const contact = el("input", { name: "contact", id: "cm-report-contact", maxlength: "200", autocomplete: "email" });
      const result = el("p", { id: "cm-report-result", role: "status", "aria-live": "polite" });
      const title = el("h3", {});
      let device = null;
      const form = el(
        "form",
        { method: "dialog" },
        title,
        el("label", { for: "cm-report-kind" }, "¿Qué ocurre?"), kind,
        el("label", { for: "cm-report-message" }, "Cuéntenos qué ha visto"), message,
        el("label", { for: "cm-report-contact" }, "Contacto (opcional, no se publica)"), contact,
        result,
        el(
          "p",
          { class: "cm-actions" },
          el("button", { type: "submit", class: "cm-button", id: "cm-report-send" }, "Enviar aviso"),
          " ",
          el("button", { type: "button", class: "cm-link", onclick: () => box.close() }, "Cerrar")
        )
      );
      const box = el("dialog", { id: "cm-report", "aria-label": "Avisar de un problema" }, form);
      document.body.append(box);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        result.textContent = "Enviando…";
        const body = { kind: kind.value, message: message.value.trim() };
        if (contact.value.trim()) body.contact = contact.value.trim();
        try {
          const response = await fetch(`${api}/defibrillators/${encodeURIComponent(device.id)}/reports`, {
            method: "POST",
            headers: { "Content-Type": "application/json", Accept: "application/json" },
            body: JSON.stringify(body),
          });
          const answer = await response.json().catch(() => ({}));
          if (!response.ok) {
            const detail = (answer.problems || []).map((p) => p.message).join(" ");
            result.textContent = `${answer.message || `Error ${response.status}.`} ${detail}`.trim();
            return;
          }
          result.textContent = `Gracias: aviso n.º ${answer.id} recibido. El equipo municipal lo revisará.`;
          form.reset();
        } catch (error) {
          result.textContent = "No se ha podido enviar: compruebe la conexión e inténtelo de nuevo.";
        }
      });
      return {
        open(row) {
          device = row;
          title.textContent = `Avisar de un problema: ${row.name}`;
          result.textContent = "";
          box.showModal();
        },
      };
    }

    // --- without a network: the kept copy (/api/map/offline) and the service worker
    let kept = null;
    let offlineTimer = null;

    function age(iso) {
      const minutesAgo = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
      if (minutesAgo < 60) return `hace ${minutesAgo} min`;
      const hours = Math.round(minutesAgo / 60);
      return hours < 48 ? `hace ${hours} h` : `hace ${Math.round(hours / 24)} días`;
    }

    async function keepOffline() {
      if (!options.offline_url) return null;
      try {
        const response = await fetch(options.offline_url, { headers: { Accept: "application/json" } });
        if (response.ok) kept = await response.json();
      } catch (error) {
        // no network and no copy kept yet
      }
      return kept;
    }

    /** The kept rows with their state at ``now``, from when each device can be used. */
    function fromKept(now) {
      const start = new Date(kept.at).getTime();
      const minute = (now - start) / 60000;
      const K = Object.fromEntries(kept.columns.map((name, index) => [name, index]));
      const OPEN = kept.states.indexOf("open");
      const CLOSED = kept.states.indexOf("closed");
      const iso = (offset) => new Date(start + offset * 60000).toISOString();
      const rowsNow = kept.rows.map((row, index) => {
        const spans = kept.spans[index];
        const next = row.slice();
        let inside = -1;
        let upcoming = null;
        for (let k = 0; k < spans.length; k += 2) {
          if (spans[k] <= minute && minute < spans[k + 1]) {
            inside = k;
            break;
          }
          if (spans[k] > minute) {
            upcoming = spans[k];
            break;
          }
        }
        const was = kept.states[row[K.state]];
        if (inside >= 0) {
          next[K.state] = OPEN;
          next[K.next_change] = row[K.always_open] ? null : iso(spans[inside + 1]);
          next[K.state_text] = kept.state_text[OPEN];
        } else if (was === "open" || was === "closed") {
          next[K.state] = CLOSED;
          next[K.always_open] = false;
          next[K.next_change] = upcoming === null ? null : iso(upcoming);
          next[K.state_text] = kept.state_text[CLOSED];
        }
        return next;
      });
      return { ...kept, rows: rowsNow, at: new Date(now).toISOString(), refresh_at: null, kept_at: kept.at };
    }

    /** No network: the states now from the kept copy, again every minute until it comes back. */
    async function goOffline() {
      if (!kept) await keepOffline();
      if (!kept) return false;
      load(fromKept(Date.now()));
      if (!offlineTimer) {
        offlineTimer = setInterval(() => {
          load(fromKept(Date.now()));
          if (origin) lookup(origin);
        }, 60 * 1000);
      }
      return true;
    }

    async function backOnline() {
      if (offlineTimer) clearInterval(offlineTimer);
      offlineTimer = null;
      try {
        const response = await fetch(options.data_url, { headers: { Accept: "application/json" } });
        if (response.ok) load(await response.json());
        keepOffline();
      } catch (error) {
        goOffline();
      }
    }

    load(initialData);
    if (options.service_worker && "serviceWorker" in navigator) {
      navigator.serviceWorker.register(options.service_worker, { scope: "/" }).catch(() => {});
    }
    if (options.offline_url) {
      window.addEventListener("offline", () => goOffline());
      window.addEventListener("online", () => backOnline());
      if (navigator.onLine === false) goOffline();
      else keepOffline(); // refresh the kept copy while there is a network
    }
    // For embedding and tests: the Leaflet map and the lookup a click on the map starts.
    cardiomapa.map = map;
    cardiomapa.lookup = (lat, lon) => lookup(L.latLng(lat, lon));
    cardiomapa.sheet = sheet;
  };

  /* ---------------------------------------------------------------- planners' map */

  /** The panel's lives-saved section: every figure arrives as Spanish text (geo/maps.py). The
   * tables repeat what the zone tooltips and device popups show, for keyboard and screen-reader
   * users (map features cannot take the focus). */
  function livesSection(lives) {
    const tables = lives.tables.map((table) =>
      table.rows.length
        ? el(
            "table",
            { class: "cm-table" },
            el("caption", {}, table.caption),
            el("thead", {}, el("tr", {}, ...table.columns.map((name) => el("th", { scope: "col" }, name)))),
            el("tbody", {}, ...table.rows.map((row) => el("tr", {}, ...row.map((cell) => el("td", {}, cell)))))
          )
        : el("p", { class: "cm-small" }, `${table.caption}: ninguno.`)
    );
    return el(
      "section",
      { id: "cm-lives", "aria-labelledby": "cm-lives-title" },
      el("h2", { id: "cm-lives-title" }, lives.title),
      el("p", { id: "cm-lives-summary" }, lives.summary),
      ...lives.notes.map((note) => el("p", { class: "cm-small cm-lives-note" }, note)),
      el(
        "details",
        { id: "cm-lives-detail" },
        el("summary", {}, "Por zona y por desfibrilador"),
        el("p", { class: "cm-small" }, lives.basis),
        ...tables
      )
    );
  }

  /** The zones' polygons on the map (each with ``cm_zone``, its position in the week's data). */
  function zoneLayers(map) {
    const found = [];
    map.eachLayer((layer) => {
      const props = layer.feature && layer.feature.properties;
      if (props && props.cm_zone !== undefined && layer.setStyle) found.push(layer);
    });
    return found;
  }

  /** The hour-by-week chart: a table of 7 days (Monday first) × 24 hours, each cell a button
   * coloured like the zones' classes. One tab stop (the arrows move between cells); Enter or
   * Space, or a click, picks that hour. */
  function weekChart(week, pick) {
    const buttons = [];
    const head = el("tr", {}, el("td", {}));
    for (let h = 0; h < 24; h += 1) {
      const text = h % 6 === 0 ? String(h) : "";
      head.append(el("th", { scope: "col", title: week.hours[h] }, text, text ? null : el("span", { class: "cm-sr" }, String(h))));
    }
    const body = el("tbody", {});
    week.days.forEach((dayName, d) => {
      const row = el("tr", {}, el("th", { scope: "row", title: dayName }, dayName.slice(0, 3)));
      for (let h = 0; h < 24; h += 1) {
        const slot = d * 24 + h;
        const [cls, label] = week.cells[slot];
        const button = el("button", {
          type: "button", class: "cm-cell", "data-slot": String(slot), "aria-label": label,
          title: label, "aria-pressed": "false", tabindex: "-1",
          style: `background:${week.colours[cls]}`,
          onclick: () => pick(slot, true),
        });
        buttons.push(button);
        row.append(el("td", {}, button));
      }
      body.append(row);
    });
    const table = el(
      "table",
      { class: "cm-week", id: "cm-week" },
      el("caption", {}, week.caption),
      el("thead", {}, head),
      body
    );
    table.addEventListener("keydown", (event) => {
      const index = buttons.indexOf(document.activeElement);
      if (index < 0) return;
      const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -24, ArrowDown: 24, Home: -(index % 24), End: 23 - (index % 24) };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const next = Math.min(167, Math.max(0, index + moves[event.key]));
      buttons[index].tabIndex = -1;
      buttons[next].tabIndex = 0;
      buttons[next].focus();
    });
    return { table, buttons };
  }

  /** Numbered badges (proposals first, then gaps in order) moved apart where they would
   * overlap, each tied to its place by a leader line. Runs after every zoom. */
  function declutter(map) {
    const pane = map.getPane("markerPane");
    const badges = [...pane.querySelectorAll(".cm-badge")];
    const rank = (b) => (b.classList.contains("cm-proposal") ? 0 : 1000) + Number(b.dataset.step || b.dataset.rank || 0);
    badges.sort((a, b) => rank(a) - rank(b));
    const placed = [];
    const GAP = 3;
    const hits = (a, b) => a.left < b.right + GAP && b.left < a.right + GAP && a.top < b.bottom + GAP && b.top < a.bottom + GAP;
    for (const badge of badges) {
      badge.style.transform = "";
      const icon = badge.parentElement;
      icon.querySelectorAll(".cm-leader").forEach((line) => line.remove());
      const r = badge.getBoundingClientRect();
      const step = Math.max(r.width, r.height) + GAP;
      let offset = [0, 0];
      search: for (let ring = 0; ring <= 10; ring += 1) {
        const directions = ring === 0 ? 1 : 8 * ring;
        for (let k = 0; k < directions; k += 1) {
          const angle = -Math.PI / 2 + (2 * Math.PI * k) / directions;
          const dx = Math.round(Math.cos(angle) * ring * step);
          const dy = Math.round(Math.sin(angle) * ring * step);
          const box = { left: r.left + dx, right: r.right + dx, top: r.top + dy, bottom: r.bottom + dy };
          if (!placed.some((other) => hits(other, box))) {
            offset = [dx, dy];
            placed.push(box);
            break search;
          }
        }
      }
      const [dx, dy] = offset;
      if (dx || dy) {
        badge.style.transform = `translate(${dx}px, ${dy}px)`;
        const length = Math.hypot(dx, dy);
        const line = el("span", { class: "cm-leader", "aria-hidden": "true" });
        line.style.width = `${length}px`;
        line.style.left = `${icon.offsetWidth / 2}px`;
        line.style.top = `${icon.offsetHeight / 2}px`;
        line.style.transform = `rotate(${Math.atan2(dy, dx)}rad)`;
        line.classList.add(badge.classList.contains("cm-proposal") ? "cm-leader-proposal" : "cm-leader-gap");
        icon.prepend(line);
      }
    }
  }

  /** The legend: the zone and gap classes (squares: polygons) with their limits, then the
   * symbols (circles for points, the badges as on the map). */
  function plannerLegend(legend) {
    const box = el("div", { class: "cm-legend", id: "cm-legend" });
    for (const group of [legend.zones, legend.gaps]) {
      if (!group.classes.length) continue;
      box.append(el("strong", { class: "cm-legend-title" }, group.title));
      for (const [colour, label] of group.classes) {
        box.append(el("div", {}, el("i", { class: "cm-swatch cm-area", style: `background:${colour}` }), ` ${label}`));
      }
    }
    box.append(el("strong", { class: "cm-legend-title" }, "Símbolos"));
    for (const [cls, label, shape] of legend.symbols) {
      const swatch =
        shape === "gap" || shape === "proposal"
          ? el("i", { class: `cm-swatch cm-badge-swatch cm-${shape}-swatch`, "aria-hidden": "true" })
          : el("i", { class: `cm-swatch cm-${shape} cm-${cls}` });
      box.append(el("div", {}, swatch, ` ${label}`));
    }
    if (legend.note) box.append(el("div", { class: "cm-legend-note" }, legend.note));
    return box;
  }

  cardiomapa.planner = function (map, options) {
    map.fitBounds(options.bounds, { animate: false });
    mapControls(map);
    const s = options.summary;
    const pct = (share) => `${Math.round(share * 100)} %`;
    const num = (n) => n.toLocaleString("es-ES");
    const form = options.form;
    const day = el("select", { name: "dia", id: "cm-day", disabled: !form.action });
    day.append(el("option", { value: "", selected: form.day === null }, "24/7 (todas las horas)"));
    form.days.forEach((name, index) => day.append(el("option", { value: String(index), selected: form.day === index }, name)));
    const hour = el("select", { name: "hora", id: "cm-hour", disabled: !form.action });
    for (let h = 0; h < 24; h += 1) {
      hour.append(el("option", { value: String(h), selected: form.hour === h }, `${String(h).padStart(2, "0")}:00–${String((h + 1) % 24).padStart(2, "0")}:00`));
    }
    const radius = el("input", { name: "radio_m", id: "cm-radius", type: "number", min: "10", max: "5000", step: "10", value: String(form.radius_m), disabled: !form.action });
    const count = el("input", { name: "nuevos", id: "cm-new", type: "number", min: "1", max: "50", value: String(form.new), disabled: !form.action });
    // What the proposal maximises (sent as objetivo=residentes|vidas).
    const OBJECTIVE_VALUE = { residents: "residentes", lives: "vidas" };
    const objective = el("select", { name: "objetivo", id: "cm-objective", disabled: !form.action });
    for (const [key, label] of form.objectives) {
      objective.append(el("option", { value: OBJECTIVE_VALUE[key], selected: form.objective === key }, label));
    }
    // Besides new devices, may a step open an existing device 24/7? (sent as abrir_24h=1)
    const extend = el("input", { name: "abrir_24h", id: "cm-extend", type: "checkbox", value: "1", checked: Boolean(form.extend_hours), disabled: !form.action });
    const selector = el(
      "form",
      { id: "cm-selector", method: "get", action: form.action || "#" },
      el("label", { for: "cm-day" }, "Día"), day,
      el("label", { for: "cm-hour" }, "Hora"), hour,
      el("label", { for: "cm-radius" }, "Radio a pie (m)"), radius,
      el("label", { for: "cm-new" }, "Nuevos equipos"), count,
      el("label", { for: "cm-extend" }, "Proponer también abrir 24 h equipos existentes"), extend,
      el("label", { for: "cm-objective" }, "Objetivo"), objective,
      form.action
        ? el("button", { type: "submit", class: "cm-button" }, "Recalcular")
        : el("p", { class: "cm-small" }, "Mapa exportado: parámetros fijos. Para cambiarlos use /planificacion o «cardiomapa map --kind planner».")
    );
    day.addEventListener("change", () => { hour.disabled = !form.action || day.value === ""; });
    hour.disabled = !form.action || form.day === null;
    const week = options.week;
    const shown = el("p", { id: "cm-map-hour", "aria-live": "polite" });
    const pending = el("p", { id: "cm-hour-note", class: "cm-small", hidden: true });
    let chart = null;
    const pick = (slot, fromChart) => {
      const d = Math.floor(slot / 24);
      const h = slot % 24;
      const zones = zoneLayers(map);
      for (const layer of zones) {
        const key = String(layer.feature.properties.cm_zone);
        if (!(key in week.zones)) continue;
        layer.setStyle({ fillColor: week.colours[week.zones[key][slot]] });
        layer.feature.properties["Cubiertos"] = week.shares[key][slot];
        if (slot !== week.slot) layer.feature.properties["65+ cubiertos"] = "— (pulse «Recalcular»)";
      }
      chart.buttons.forEach((button, index) => {
        button.setAttribute("aria-pressed", String(index === slot));
        button.tabIndex = index === slot ? 0 : -1;
      });
      shown.textContent = `Zonas coloreadas para: ${form.days[d]} ${week.hours[h]} (hora local).`;
      if (fromChart) {
        day.value = String(d);
        hour.value = String(h);
        hour.disabled = !form.action;
      }
      pending.hidden = slot === week.slot;
      pending.textContent = `El resumen, los huecos y la propuesta siguen siendo de: ${s.when}.` +
        (form.action ? " Pulse «Recalcular» para calcularlos a la hora elegida." : "");
      document.body.dataset.cmHour = String(slot);
    };
    let chartSection = null;
    if (week) {
      chart = weekChart(week, pick);
      chartSection = el(
        "section",
        { id: "cm-week-section", "aria-labelledby": "cm-week-title" },
        el("h2", { id: "cm-week-title" }, "Cobertura hora a hora"),
        chart.table,
        shown,
        pending
      );
      chart.buttons[week.slot === null ? 0 : week.slot].tabIndex = 0;
    }
    const legendSlot = el("div", { id: "cm-legend-slot" });
    const panel = el(
      "aside",
      { id: "cm-panel", class: "cm-planner", "aria-label": "Resumen y parámetros" },
      el("h1", {}, options.title),
      el(
        "p",
        { id: "cm-summary" },
        `${s.when}, radio ${num(s.radius_m)} m: ${num(s.covered)} de ${num(s.residents)} residentes cubiertos (${pct(s.share)}; 65+: ${pct(s.share_65)}). `,
        `${s.devices_available} de ${s.devices_total} desfibriladores cuentan. `,
        s.proposal
      ),
      el("p", { class: "cm-small" }, s.distance_model),
      chartSection,
      selector,
      legendSlot,
      options.outcomes ? livesSection(options.outcomes) : null,
      options.notice ? el("p", { class: "cm-small cm-notice" }, options.notice) : null,
      openDataLink(options)
    );
    L.DomEvent.disableClickPropagation(panel);
    L.DomEvent.disableScrollPropagation(panel);
    // First in the container: the keyboard reaches the summary, the selector and the lives tables
    // before the map's features (every feature with a tooltip takes the focus in turn).
    map.getContainer().prepend(panel);
    mainLandmark(map, options.title);

    // The legend stands at the bottom right of the map; on a narrow screen it moves into the
    // panel (under the chart), clear of the layer control at the top right.
    const legendBox = plannerLegend(options.legend);
    const legendHome = el("div", { class: "cm-legend-control" });
    const legend = L.control({ position: "bottomright" });
    legend.onAdd = () => legendHome;
    legend.addTo(map);
    const narrow = window.matchMedia("(max-width: 640px)");
    const placeLegend = () => (narrow.matches ? legendSlot : legendHome).append(legendBox);
    placeLegend();
    narrow.addEventListener("change", placeLegend);
    for (const layer of zoneLayers(map)) {
      layer.on("mouseover", () => layer.setStyle({ weight: 3 }));
      layer.on("mouseout", () => layer.setStyle({ weight: 1.5 }));
    }
    if (week && week.slot !== null) pick(week.slot, false);
    else if (week) shown.textContent = `Zonas coloreadas para: ${s.when}.`;
    declutter(map);
    map.on("zoomend viewreset overlayadd", () => declutter(map));
    cardiomapa.map = map;
    document.body.dataset.cmReady = "planner";
    cardiomapa.ready = true;
  };
})();
