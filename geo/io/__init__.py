"""Files and databases: the Store (SpatiaLite or PostGIS) and its migrations, the registry
importers, exports, backups and the change watcher. Imports the core and the kernel only.
"""
