"""webproxy: a caching reverse proxy for Cisco Finesse."""

__version__ = "0.1.0"
