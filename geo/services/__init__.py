"""The use cases the CLI and the API share: they take an open Store (never open one), read what they
need once, run the core and hand frozen results back, or to the renderers.
"""
