"""cardiomapa's geospatial core: layers, storage and the analyses (no HTTP, no HTML)."""

# pyogrio (GDAL) must be loaded before mod_spatialite pulls the system GEOS/PROJ/SQLite into the
# process, or a later geopandas.read_file segfaults (see shared/ENVIRONMENT.md). Importing it here
# makes the order hold whatever module of geo is imported first.
import pyogrio  # noqa: F401
