"""ASGI entry point for uvicorn workers: `api.main:app`, configured from PUENTE_* environment variables."""

from api.app import create_app
from api.limits import cap_worker_memory
from settings import get_settings

cap_worker_memory(get_settings().worker_memory_mb)  # each worker process imports this module once
app = create_app()
