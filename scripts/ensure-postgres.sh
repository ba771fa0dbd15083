#!/usr/bin/env bash
# Makes sure the local PostgreSQL server runs and has PostGIS available, for the PostGIS tests.
# Tests connect to CARDIOMAPA_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust auth).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt_install postgresql
fi
version=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
if [ -z "$version" ]; then
  echo "No hay ningún clúster de PostgreSQL; créelo con pg_createcluster." >&2
  exit 1
fi
apt_install "postgresql-${version}-postgis-3"
cluster=$(pg_lsclusters -h | awk 'NR==1 {print $2}')
status=$(pg_lsclusters -h | awk 'NR==1 {print $4}')
if [ "$status" != "online" ]; then
  echo "Arrancando PostgreSQL ${version}/${cluster}"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
fi
