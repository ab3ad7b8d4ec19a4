"""Map-layer definitions, installed as the package data ``heatmap.layer_definitions`` (see heatmap.maps.layers)."""
