"""Where runs, models and studies are kept: MLflow tracking setup, store checks, database
locks, sqlite tuning, process ownership, and throwaway local servers for tests and benchmarks."""
