"""Maps: the declarative layer definitions, the web map (folium) and the QGIS styles."""
