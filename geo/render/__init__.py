"""Maps (folium) and the annual report (HTML, PDF) with their templates and assets. Renderers draw
results they are given: they never load data or run an analysis. Imports the core and the kernel.
"""
