"""The science layer: what modellers do with a compiled model (pictures for now)."""
