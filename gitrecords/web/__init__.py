"""A REST API and administration pages over a data repository (the ``web`` extra).

``create_app(repo_path)`` returns a Flask application; ``gitrecords serve``
runs one. Reads are open to anyone who can reach the server (it binds to
loopback by default); writes need the bearer token the server was started
with, and a hard delete needs the admin token. See ``docs/web.md``.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
