"""transit_window: the reference node of the Digital Transit Corridor."""

__version__ = "0.1.0"
