/* cardiomapa — the citizens' map without a network (served at /sw.js, scope /).
 *
 * Keeps the last copy of the page, its scripts and styles, the device list and the offline
 * copy of when each device can be used (/api/map/offline, 7 days of intervals): a person with
 * a weak signal in a basement still finds the nearest usable device, computed in the page.
 *
 * - The page, its data, scripts, styles and icons: the network first (so a new version is never
 *   mixed with an old one), the kept copy when the network fails or has not answered in
 *   WAIT_MS (a weak signal must not keep someone waiting in an emergency).
 * - Anything else (the nearest lookup, reports, the staff's pages): the network only.
 * Only public data is ever kept: the routes below answer the same to everyone.
 */
"use strict";

const CACHE = "cardiomapa-v1";
const WAIT_MS = 4000;
const PAGE = "/";
const DATA = ["/api/map/devices", "/api/map/offline"];
const ASSETS = [
  "/manifest.webmanifest",
  "/static/cardiomapa.js",
  "/static/cardiomapa.css",
  "/static/favicon.svg",
  "/static/icons/icon-192.png",
  "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/leaflet.markercluster/leaflet.markercluster.js",
  "/static/vendor/leaflet.markercluster/MarkerCluster.css",
  "/static/vendor/leaflet.markercluster/MarkerCluster.Default.css",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([PAGE, ...DATA, ...ASSETS]))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // basemap tiles: never kept
  const kept =
    url.pathname === PAGE ||
    DATA.includes(url.pathname) ||
    url.pathname.startsWith("/static/") ||
    url.pathname === "/manifest.webmanifest";
  if (kept) event.respondWith(networkFirst(request, url.pathname));
});

/** The network's answer (kept for later); the kept one when the network fails or is slow. */
async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then((response) => {
    if (response.ok) cache.put(key, response.clone());
    return response;
  });
  const kept = await cache.match(key);
  if (!kept) return network;
  const late = new Promise((resolve) => setTimeout(() => resolve(kept), WAIT_MS));
  return Promise.race([network.catch(() => kept), late]);
}
