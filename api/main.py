"""ASGI entry point for uvicorn workers: `api.main:app`, configured from PUENTE_* environment variables."""

from api.app import create_app

app = create_app()
