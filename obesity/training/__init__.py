"""The one training run: what the CLI, the Python API, the DVC stage and a sweep's refit call."""
