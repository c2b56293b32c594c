"""For the tests, the benchmarks and trying things here: throwaway PostgreSQL and MLflow servers
(`python -m obesity.testing.local_servers`) and known shifts of traffic. Nothing else in the
package imports this (the import-graph test checks it)."""
