"""The network: candidate graph, routing, pipe sizing and the pandapipes hydraulic model."""
