/* cardiomapa — weekly opening-hours editor for the device forms (progressive enhancement).

   Enhances <div data-hours-editor> holding <input name="opening_hours"> (the OSM opening_hours
   text: always submitted, always editable) and <p data-hours-words aria-live="polite">.
   The editor writes the text on every change; it reads back only the subset it writes itself
   (day groups with time ranges, "24/7", a final "PH off" / "PH 00:00-24:00"); anything else is
   left alone as advanced hours. The text is checked with GET /api/opening-hours (the server's
   parser, the one the project uses everywhere) and its week shown in words.
   Plain ES2017, no dependency. */
(function () {
  "use strict";

  var DAYS = [
    { osm: "Mo", name: "lunes" }, { osm: "Tu", name: "martes" },
    { osm: "We", name: "miércoles" }, { osm: "Th", name: "jueves" },
    { osm: "Fr", name: "viernes" }, { osm: "Sa", name: "sábado" },
    { osm: "Su", name: "domingo" }
  ];
  var OSM_DAYS = DAYS.map(function (d) { return d.osm; });
  var HOLIDAYS = [
    { value: "off", text: "Cerrado" },
    { value: "same", text: "Abierto con el horario de ese día de la semana" },
    { value: "open", text: "Abierto 24 horas" }
  ];
  var DEBOUNCE_MS = 300;
  var TIME = /^([01]\d|2[0-4]):([0-5]\d)$/;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; }
      else if (key === "className") { node.className = attrs[key]; }
      else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  /* Visible text plus words only screen readers hear, so every control has a unique name. */
  function labelText(visible, hidden) {
    return [visible, el("span", { className: "cm-hours-vh", text: hidden })];
  }

  function capitalised(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

  // --- the opening_hours subset -------------------------------------------------------------

  function blankState() {
    return {
      always: false,
      days: DAYS.map(function () { return { open: false, ranges: [] }; }),
      holidays: "off"
    };
  }

  function endText(value) { return value === "00:00" ? "24:00" : value; }

  /* The OSM text of a state; "" when nothing is open. Incomplete ranges are left out. */
  function serialise(state) {
    if (state.always) { return "24/7"; }
    var signatures = state.days.map(function (day) {
      if (!day.open) { return ""; }
      return completeRanges(day).map(function (r) { return r[0] + "-" + endText(r[1]); }).join(",");
    });
    var rules = [];
    var first = 0;
    for (var i = 1; i <= 7; i++) {
      if (i < 7 && signatures[i] === signatures[first]) { continue; }
      if (signatures[first]) { rules.push(dayLabel(first, i - 1) + " " + signatures[first]); }
      first = i;
    }
    if (state.holidays === "open") { rules.push("PH 00:00-24:00"); }
    else if (state.holidays === "off" && rules.length) { rules.push("PH off"); }
    return rules.join("; ");
  }

  function completeRanges(day) {
    return day.ranges.filter(function (r) { return r[0] && r[1] && !sameTime(r); });
  }

  /* A range that opens and closes at once; 00:00 to 00:00 is the whole day (00:00-24:00). */
  function sameTime(range) { return range[0] === range[1] && range[0] !== "00:00"; }

  function dayLabel(first, last) {
    if (first === last) { return OSM_DAYS[first]; }
    if (last === first + 1) { return OSM_DAYS[first] + "," + OSM_DAYS[last]; }
    return OSM_DAYS[first] + "-" + OSM_DAYS[last];
  }

  function expandDays(selector) {
    var days = [];
    var ok = selector.split(",").every(function (part) {
      var ends = part.split("-");
      var from = OSM_DAYS.indexOf(ends[0]);
      var to = ends.length === 2 ? OSM_DAYS.indexOf(ends[1]) : from;
      if (ends.length > 2 || from < 0 || to < 0) { return false; }
      for (var d = from; ; d = (d + 1) % 7) {  // "Sa-Mo" wraps round the week, as in OSM
        days.push(d);
        if (d === to) { break; }
      }
      return true;
    });
    return ok ? days : null;
  }

  function parseRange(text) {
    var ends = text.split("-");
    if (ends.length !== 2 || !TIME.test(ends[0]) || !TIME.test(ends[1])) { return null; }
    if (ends[0] === "24:00" || (ends[1].slice(0, 2) === "24" && ends[1] !== "24:00")) {
      return null;
    }
    if (ends[0] === ends[1]) { return null; }
    return [ends[0], ends[1] === "24:00" ? "00:00" : ends[1]];
  }

  /* The editor's state for an OSM text, or null when the text is outside the subset. */
  function parse(text) {
    var state = blankState();
    var trimmed = text.trim();
    if (!trimmed) { return state; }
    if (trimmed === "24/7") { state.always = true; return state; }
    state.holidays = "same";
    var seen = [];
    var rules = trimmed.split(";").map(function (r) { return r.trim(); });
    for (var i = 0; i < rules.length; i++) {
      var rule = rules[i];
      if (!rule) { return null; }
      var holiday = /^PH\s+(.+)$/.exec(rule);
      if (holiday) {
        if (i !== rules.length - 1) { return null; }  // a later day rule would override it
        if (holiday[1] === "off" || holiday[1] === "closed") { state.holidays = "off"; }
        else if (holiday[1] === "00:00-24:00") { state.holidays = "open"; }
        else { return null; }
        continue;
      }
      var match = /^([A-Z][a-z][A-Za-z,-]*)\s+(\S+)$/.exec(rule);
      var days = match && expandDays(match[1]);
      if (!days || days.some(function (d) { return seen.indexOf(d) >= 0; })) { return null; }
      seen = seen.concat(days);
      if (match[2] === "off" || match[2] === "closed") { continue; }
      var ranges = match[2].split(",").map(parseRange);
      if (ranges.some(function (r) { return r === null; })) { return null; }
      days.forEach(function (d) {
        state.days[d] = { open: true, ranges: ranges.map(function (r) { return r.slice(); }) };
      });
    }
    return state;
  }

  // --- the editor ---------------------------------------------------------------------------

  function enhance(root, index) {
    var raw = root.querySelector('input[name="opening_hours"]');
    var words = root.querySelector("[data-hours-words]");
    if (!raw || !words || root.hasAttribute("data-hours-ready")) { return; }
    root.setAttribute("data-hours-ready", "");
    var checkUrl = root.getAttribute("data-check-url") || "/api/opening-hours";
    var prefix = (raw.id || "opening_hours") + "-" + index;
    var timer = null;
    var pending = null;
    var sequence = 0;

    var always = el("input", { type: "checkbox", id: prefix + "-always" });
    var alwaysLabel = el("label", { className: "cm-hours-always", for: prefix + "-always" },
      [always, " Abierto 24 horas, todos los días (24/7)"]);
    var dayList = el("div", { className: "cm-hours-days" });
    var rows = DAYS.map(function (day, d) { return dayRow(day, d); });
    rows.forEach(function (row) { dayList.appendChild(row.box); });
    var copy = el("button", { type: "button", className: "cm-hours-copy" },
      labelText("Copiar lunes a laborables", " (martes a viernes)"));
    var holidays = el("select", { id: prefix + "-holidays", className: "cm-hours-holidays-select" },
      HOLIDAYS.map(function (h) { return el("option", { value: h.value, text: h.text }); }));
    var holidayBox = el("p", { className: "cm-hours-holidays" }, [
      el("label", { for: prefix + "-holidays", text: "Festivos" }), " ", holidays
    ]);
    var week = el("fieldset", { className: "cm-hours-week" }, [
      el("legend", { text: "Días y horas de acceso" }), alwaysLabel, dayList, copy, holidayBox
    ]);
    var restart = el("button", { type: "button", className: "cm-hours-restart",
      text: "Sustituir por un horario del editor" });
    var advanced = el("div", { className: "cm-hours-advanced", hidden: "" }, [
      el("p", { text: "Horario avanzado: edítelo como texto. El editor solo entiende días con " +
        "tramos de horas, 24/7 y festivos." }),
      restart
    ]);
    var editor = el("div", { className: "cm-hours-editor" }, [advanced, week]);
    root.insertBefore(editor, root.firstChild);

    function dayRow(day, d) {
      var id = prefix + "-" + day.osm;
      var open = el("input", { type: "checkbox", id: id + "-open", "data-day": String(d) });
      var ranges = el("div", { className: "cm-hours-ranges" });
      var add = el("button", { type: "button", className: "cm-hours-add", "data-day": String(d) },
        labelText("Añadir tramo", " el " + day.name));
      var detail = el("div", { className: "cm-hours-detail", hidden: "" }, [ranges, add]);
      var box = el("fieldset", { className: "cm-hours-day", "data-day": String(d) }, [
        el("legend", { text: capitalised(day.name) }),
        el("label", { className: "cm-hours-open", for: id + "-open" },
          [open, " "].concat(labelText("Abierto", " el " + day.name))),
        detail
      ]);
      return { box: box, open: open, ranges: ranges, add: add, detail: detail, day: day };
    }

    function rangeRow(row, d, r, range) {
      var id = prefix + "-" + row.day.osm + "-" + (r + 1);
      var where = " (" + row.day.name + ", tramo " + (r + 1) + ")";
      var from = el("input", { type: "time", id: id + "-from", className: "cm-hours-from",
        value: range[0] || "" });
      var to = el("input", { type: "time", id: id + "-to", className: "cm-hours-to",
        value: range[1] || "" });
      var remove = el("button", { type: "button", className: "cm-hours-remove",
        "data-day": String(d), "data-range": String(r) },
        labelText("Quitar tramo", " " + (r + 1) + " del " + row.day.name));
      return el("div", { className: "cm-hours-range" }, [
        el("label", { for: id + "-from" }, labelText("Desde", where)), from,
        el("label", { for: id + "-to" }, labelText("Hasta", where)), to,
        remove
      ]);
    }

    function read() {
      var state = blankState();
      state.always = always.checked;
      state.holidays = holidays.value;
      rows.forEach(function (row, d) {
        state.days[d].open = row.open.checked;
        state.days[d].ranges = Array.prototype.map.call(
          row.ranges.querySelectorAll(".cm-hours-range"), function (range) {
            return [range.querySelector(".cm-hours-from").value,
              range.querySelector(".cm-hours-to").value];
          });
      });
      return state;
    }

    function renderRanges(d, ranges) {
      var row = rows[d];
      row.ranges.textContent = "";
      ranges.forEach(function (range, r) { row.ranges.appendChild(rangeRow(row, d, r, range)); });
    }

    function render(state) {
      always.checked = state.always;
      holidays.value = state.holidays;
      state.days.forEach(function (day, d) {
        rows[d].open.checked = day.open;
        renderRanges(d, day.ranges.length ? day.ranges : [["", ""]]);
      });
      showParts(state);
    }

    function showParts(state) {
      dayList.hidden = copy.hidden = holidayBox.hidden = state.always;
      rows.forEach(function (row, d) { row.detail.hidden = !state.days[d].open; });
    }

    function setAdvanced(on) {
      advanced.hidden = !on;
      week.disabled = on;
      week.hidden = on;
      root.classList.toggle("cm-hours-is-advanced", on);
    }

    /* A problem in the editor (a half-typed range), or null. */
    function incomplete(state) {
      if (state.always) { return null; }
      for (var d = 0; d < 7; d++) {
        var day = state.days[d];
        if (!day.open) { continue; }
        for (var r = 0; r < day.ranges.length; r++) {
          var range = day.ranges[r];
          if (!range[0] || !range[1]) {
            return "Complete las horas del " + DAYS[d].name + " (tramo " + (r + 1) +
              ": desde y hasta).";
          }
          if (sameTime(range)) {
            return "El tramo " + (r + 1) + " del " + DAYS[d].name +
              " empieza y acaba a la misma hora.";
          }
        }
      }
      return null;
    }

    function changed() {
      var state = read();
      showParts(state);
      raw.value = serialise(state);
      raw.dispatchEvent(new Event("change", { bubbles: true }));
      var problem = incomplete(state);
      if (problem) {
        cancelCheck();
        say(problem, false);
        return;
      }
      scheduleCheck();
    }

    function fromRaw() {
      var state = parse(raw.value);
      setAdvanced(state === null);
      if (state) { render(state); }
    }

    // --- checking with the server -------------------------------------------------------------

    function say(text, valid) {
      words.textContent = text;
      words.setAttribute("data-hours-valid", valid ? "true" : "false");
      words.classList.toggle("cm-hours-invalid", !valid);
    }

    function cancelCheck() {
      clearTimeout(timer);
      sequence += 1;
      if (pending) { pending.abort(); pending = null; }
    }

    function scheduleCheck() {
      cancelCheck();
      timer = setTimeout(check, DEBOUNCE_MS);
    }

    function check() {
      cancelCheck();
      var mine = sequence;
      var controller = typeof AbortController === "function" ? new AbortController() : null;
      pending = controller;
      var url = checkUrl + (checkUrl.indexOf("?") < 0 ? "?" : "&") + "text=" +
        encodeURIComponent(raw.value);
      root.setAttribute("aria-busy", "true");
      fetch(url, { headers: { Accept: "application/json" },
        signal: controller ? controller.signal : undefined })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (answer) {
          if (mine !== sequence) { return; }
          var body = answer.body || {};
          if (answer.ok && body.valid) { say("Esta semana: " + body.words + ".", true); }
          else { say(body.message || "No se ha podido comprobar el horario.", false); }
        })
        .catch(function (error) {
          if (mine !== sequence || (error && error.name === "AbortError")) { return; }
          say("No se ha podido comprobar el horario ahora; se comprobará al enviar el " +
            "formulario.", false);
        })
        .then(function () {
          if (mine === sequence) { pending = null; root.removeAttribute("aria-busy"); }
        });
    }

    // --- events -------------------------------------------------------------------------------

    week.addEventListener("input", changed);
    week.addEventListener("change", changed);
    week.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || button.disabled) { return; }
      var state = read();
      var d = Number(button.getAttribute("data-day"));
      if (button.classList.contains("cm-hours-add")) {
        state.days[d].ranges.push(["", ""]);
        renderRanges(d, state.days[d].ranges);
        var fresh = rows[d].ranges.querySelectorAll(".cm-hours-from");
        fresh[fresh.length - 1].focus();
      } else if (button.classList.contains("cm-hours-remove")) {
        var r = Number(button.getAttribute("data-range"));
        state.days[d].ranges.splice(r, 1);
        if (!state.days[d].ranges.length) { state.days[d].ranges.push(["", ""]); }
        renderRanges(d, state.days[d].ranges);
        var left = rows[d].ranges.querySelectorAll(".cm-hours-remove");
        (left[Math.min(r, left.length - 1)] || rows[d].add).focus();
      } else if (button === copy) {
        for (var day = 1; day <= 4; day++) {
          rows[day].open.checked = state.days[0].open;
          renderRanges(day, state.days[0].ranges.map(function (x) { return x.slice(); }));
        }
      } else {
        return;
      }
      changed();
    });
    restart.addEventListener("click", function () {
      setAdvanced(false);
      render(blankState());
      changed();
      always.focus();
    });
    raw.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { fromRaw(); check(); }, DEBOUNCE_MS);
    });

    fromRaw();
    check();
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-hours-editor]"), enhance);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }

  window.cardiomapaHours = { parse: parse, serialise: serialise };
})();
