"""HTTP API: thin FastAPI routers that validate, call, and translate errors."""
