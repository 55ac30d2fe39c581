"""The model server: FastAPI + uvicorn, reading `@champion` / `@challenger` from the registry."""
