#!/usr/bin/env bash
# Installs the Debian packages cardiomapa needs at run time: SpatiaLite for the embedded database.
# Idempotent: installs only what is missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_install libsqlite3-mod-spatialite
