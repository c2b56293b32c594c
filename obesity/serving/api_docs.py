"""The API reference at /schema: the OpenAPI document's two additions to what Litestar writes
(strict bodies, the CSV operation), and Swagger UI from files this service serves itself, so
that it works without the internet (Litestar's viewers load their JavaScript from a CDN).

The files come from the `swagger-ui-py` distribution (Swagger UI 5: OpenAPI 3.1, which Litestar
writes); only its static folder is used, never its Python code.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import msgspec.inspect
from litestar import get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.response import File

from obesity.compat.litestar_openapi import StructSchemaPlugin
from obesity.serving import csv_table

URL = "/static/swagger"
JS, CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
FILES = {"swagger-ui-bundle.js": JS, "swagger-ui-standalone-preset.js": JS, "swagger-ui.css": CSS}


def swagger_dir() -> Path:
    """swagger_ui/static, found without importing the package (it would import jinja2)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (uv sync installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def render_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at /schema (and /schema/swagger), its files from URL, no favicon request."""
    js, preset, css = (f"{URL}/{name}" for name in FILES)
    return SwaggerRenderPlugin(js_url=js, standalone_preset_js_url=preset, css_url=css,
                               path=["/", "/swagger"], favicon="<link rel='icon' href='data:,'>")


def file_handler() -> Any:
    """GET URL/<name>: the three files Swagger UI needs, and nothing else of its folder."""
    folder = swagger_dir()
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:  # checked at start: a broken install is said before anyone opens /schema
        raise RuntimeError(f"swagger-ui-py has no {', '.join(missing)} in {folder}")

    @get(f"{URL}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
    def swagger_file(name: str) -> File:
        if name not in FILES:
            raise NotFoundException(f"no file {name} here")
        return File(folder / name, media_type=FILES[name], content_disposition_type="inline")

    return swagger_file


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's Struct schema plus `additionalProperties: false` where the Struct forbids
    unknown fields, so the OpenAPI document says what the server enforces."""

    def to_openapi_schema(self, field_definition: Any, schema_creator: Any) -> Any:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if getattr(msgspec.inspect.type_info(field_definition.type_), "forbid_unknown_fields", False):
            schema.additional_properties = False
        return schema


@dataclasses.dataclass
class CsvOperation(Operation):
    """The OpenAPI operation of /predict/csv: its body is a CSV file, which Litestar's `data`
    parameter cannot express (it would parse JSON)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, content={csv_table.MEDIA_TYPE: OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, description=(
                "A header line with the 16 input columns (as in the data set; others are kept), "
                "then one line per person, at most the service's batch limit")))})
