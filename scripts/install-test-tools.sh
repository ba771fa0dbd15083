#!/usr/bin/env bash
# Installs the Debian command-line tools the suite checks our files with, as GIS users and readers
# would open them: GDAL's ogrinfo (GeoPackage exports, OGC API Features through the OAPIF driver)
# and poppler's pdftotext (the annual report's PDF, page by page). Idempotent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_install gdal-bin poppler-utils
