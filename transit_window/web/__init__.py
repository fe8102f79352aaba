"""The public tracking page (`/track`), a sub-app of the node's app kept out of the API's OpenAPI document."""

from transit_window.web.pages import create_app

__all__ = ["create_app"]
