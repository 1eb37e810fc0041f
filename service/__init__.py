"""The HTTP API (FastAPI): the app factory, its routes by resource, uploads, the web page
and `mcnet api` / `mcnet serve`. Settings, job options and storage live in `core/`."""
