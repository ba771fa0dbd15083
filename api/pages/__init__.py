"""The people's pages: the citizens' map, a cabinet's page and sheet (/dea), the planners' map, the
entity portal, the staff desk."""
