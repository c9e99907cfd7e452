"""The HTTP door: residents' pages, staff pages, the JSON API, health and metrics."""
