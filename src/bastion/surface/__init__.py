"""Entry-point discovery: framework introspection, handler source reading, OpenAPI, crawling."""

from bastion.surface.model import INPUT_LOCATIONS, EntryPoint, Input, Surface

__all__ = ["INPUT_LOCATIONS", "EntryPoint", "Input", "Surface"]
