"""How people and agents reach drsearch: the `drsearch` CLI and the FastAPI service."""
