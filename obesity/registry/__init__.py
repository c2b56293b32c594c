"""The MLflow Model Registry: the CLI (`python -m obesity.registry`), its commands, the promotion
policy, aliases with their log and rollback, and registering a refit of a finished run."""
