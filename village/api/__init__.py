"""The HTTP API (FastAPI): an application factory and one router per resource."""
