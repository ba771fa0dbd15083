# Shared helpers for the set-up scripts (sourced, not run).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=""

# apt_install PKG…: install the packages that are not installed yet (quietly; log in /tmp).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Instalando paquetes del sistema: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq >/tmp/cardiomapa-apt.log 2>&1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >>/tmp/cardiomapa-apt.log 2>&1 \
    || { echo "apt-get install falló; véase /tmp/cardiomapa-apt.log" >&2; tail -20 /tmp/cardiomapa-apt.log >&2; exit 1; }
}
