"""Litestar's schema plugin for msgspec Structs (`_openapi`, private): obesity/serving/api_docs.py
extends its `to_openapi_schema(field_definition, schema_creator)` instead of rewriting it."""

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

__all__ = ["StructSchemaPlugin"]
