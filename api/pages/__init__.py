"""The people's pages: the citizens' map, the planners' map, the entity portal, the staff desk."""
