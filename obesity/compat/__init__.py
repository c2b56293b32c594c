"""The private APIs of pinned libraries this project leans on, each behind one small module.

An upgrade that moves or changes one breaks here (tests/unit/test_compat.py names what), not in
the code that uses it; the import-graph test keeps every other module off private APIs.
"""
