"""Scoring a file offline (`python -m obesity.predict`): read in chunks, checked like the
service's requests, scored by a registered version, written in chunks."""
