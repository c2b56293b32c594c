"""Configuration: the structured schemas every YAML file is checked against, the range checks,
and the one compose function every entrypoint, the API, scripts, tests and DVC stages use."""
