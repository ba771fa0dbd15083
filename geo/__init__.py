"""cardiomapa's domain, in rings: ``core`` (pure), ``io`` (files, databases), ``services`` (the
use cases the CLI and the API share), ``render`` (maps, report) and ``cli``; at the top, the kernel
every ring shares (errors, clock, city profile, holiday calendar, settings). No HTTP here.
"""

# pyogrio (GDAL) must be loaded before mod_spatialite pulls the system GEOS/PROJ/SQLite into the
# process, or a later geopandas.read_file segfaults (see shared/ENVIRONMENT.md). Importing it here
# makes the order hold whatever module of geo is imported first.
import pyogrio  # noqa: F401
