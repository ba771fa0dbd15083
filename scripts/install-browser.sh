#!/usr/bin/env bash
# Installs Debian's Chromium, which the map tests drive headless through Playwright (the Python
# package talks to /usr/bin/chromium; `playwright install` is never needed). Idempotent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_install chromium
