"""The pure core: GeoDataFrames and arrays in, frozen results out; no file, database, web or HTML.

Availability at an instant, distances (straight line and walking network), coverage, gaps,
siting, the nearest device, outcomes, indicators and the layer schemas live here. It imports only
itself and the kernel (:mod:`geo.errors`, :mod:`geo.clock`, :mod:`geo.city`, :mod:`geo.calendar`).
"""
