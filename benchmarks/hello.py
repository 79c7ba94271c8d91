"""The floor of the serving benchmark: a bare Flask application with one ``/hello`` endpoint.

    gunicorn -w 2 -b 127.0.0.1:8000 'benchmarks.hello:create_app()'

It runs on the same gunicorn settings as gitrecords' application, so the difference between
the two is what gitrecords adds to a request (``benchmarks/serving.py``).
"""

from __future__ import annotations

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "Hello, World!"

    return app
