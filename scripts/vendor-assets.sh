#!/usr/bin/env bash
# Refreshes the front-end libraries the maps use, from the npm registry, into geo/render/static/vendor/.
# Run by hand after changing geo/render/static/package.json; the copies are committed, so neither the
# server, the tests nor CI ever need npm or the internet. Versions are pinned in package-lock.json.
set -euo pipefail
static="$(cd "$(dirname "$0")/../geo/render/static" && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$static/package.json" "$work/"
[ -f "$static/package-lock.json" ] && cp "$static/package-lock.json" "$work/"
(cd "$work" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
cp "$work/package-lock.json" "$static/"
vendor="$static/vendor"
rm -rf "$vendor"
mkdir -p "$vendor/leaflet/images" "$vendor/leaflet.markercluster" "$vendor/swagger-ui"
leaflet="$work/node_modules/leaflet"
cp "$leaflet/dist/leaflet.js" "$leaflet/dist/leaflet.css" "$leaflet/LICENSE" "$vendor/leaflet/"
cp "$leaflet"/dist/images/*.png "$vendor/leaflet/images/"
cluster="$work/node_modules/leaflet.markercluster"
cp "$cluster/dist/leaflet.markercluster.js" "$cluster/dist/MarkerCluster.css" \
  "$cluster/dist/MarkerCluster.Default.css" "$cluster/MIT-LICENCE.txt" "$vendor/leaflet.markercluster/"
swagger="$work/node_modules/swagger-ui-dist"
cp "$swagger/swagger-ui-bundle.js" "$swagger/swagger-ui.css" "$swagger/LICENSE" "$swagger/NOTICE" \
  "$vendor/swagger-ui/"
# Drop the source-map comments: the maps are not vendored, and a missing map is a console error.
for file in "$vendor/leaflet/leaflet.js" "$vendor/leaflet.markercluster/leaflet.markercluster.js" \
  "$vendor/swagger-ui/swagger-ui-bundle.js" "$vendor/swagger-ui/swagger-ui.css"; do
  sed -i -e 's|//# sourceMappingURL=[^ ]*$||' -e 's|/\*# sourceMappingURL=[^ ]*\*/||' "$file"
done
echo "Vendored into $vendor:"
(cd "$vendor" && find . -type f | sort)
