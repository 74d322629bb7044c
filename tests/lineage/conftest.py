"""The OpenLineage spec, offline, and a real HTTP endpoint on 127.0.0.1 that collects POSTs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

SPEC_DIR = Path(__file__).parents[2].parent / "shared" / "openlineage-spec"


class SpecValidator:
    """Validates events against OpenLineage.json and every facet against its own schema.

    ``OpenLineage.json`` checks facets only as ``BaseFacet``; each facet names its schema
    in ``_schemaURL``, which is resolved in a ``referencing.Registry`` holding the spec's
    files under their ``$id``s, so nothing is fetched from the network (an unknown URL
    is an error, not a download).
    """

    def __init__(self, spec_dir: Path) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        self._validator_class = Draft202012Validator
        self.format_checker = Draft202012Validator.FORMAT_CHECKER
        missing = {"uuid", "date-time", "uri"} - set(self.format_checker.checkers)
        assert not missing, (
            f"jsonschema cannot check the formats {sorted(missing)}: install the dev "
            "extra (rfc3339-validator, rfc3986-validator)"
        )
        self.spec = json.loads((spec_dir / "OpenLineage.json").read_text())
        self.facet_files: dict[str, dict[str, Any]] = {}
        for path in sorted((spec_dir / "facets").glob("*.json")):
            contents = json.loads(path.read_text())
            self.facet_files[contents["$id"]] = contents
        resources = [
            (schema["$id"], Resource.from_contents(schema))
            for schema in [self.spec, *self.facet_files.values()]
        ]
        self.registry: Registry[Any] = Registry().with_resources(resources)

    def _check(self, schema: dict[str, Any], instance: Any) -> None:
        validator = self._validator_class(
            schema, registry=self.registry, format_checker=self.format_checker
        )
        validator.validate(instance)

    def validate(self, event: dict[str, Any]) -> None:
        self._check(self.spec, event)
        self._check({"$ref": event["schemaURL"]}, event)
        for key, facet in iter_facets(event):
            url = facet["_schemaURL"]
            facet_file = self.facet_files.get(url.partition("#")[0])
            assert facet_file is not None, f"facet {key!r}: {url} is not a spec facet"
            assert key in facet_file["properties"], (
                f"facet {key!r} is not the key {url} defines ({list(facet_file['properties'])})"
            )
            self._check(facet_file, {key: facet})
            self._check({"$ref": url}, facet)


def iter_facets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    holders = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        holders.append(dataset.get("facets", {}))
        holders.append(dataset.get("inputFacets", {}))
        holders.append(dataset.get("outputFacets", {}))
    for facets in holders:
        yield from facets.items()


@pytest.fixture(scope="session")
def spec() -> SpecValidator:
    if not (SPEC_DIR / "OpenLineage.json").is_file():
        pytest.skip(f"the OpenLineage spec is not at {SPEC_DIR} (shared/openlineage-spec)")
    return SpecValidator(SPEC_DIR)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Collector:
    """A real HTTP server on 127.0.0.1 recording every POST; answers ``status``."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 201

    @property
    def events(self) -> list[Any]:
        return [r.body for r in self.requests]


@pytest.fixture
def collector() -> Iterator[Collector]:
    box: list[Collector] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            box[0].requests.append(received)
            self.send_response(box[0].status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    box.append(Collector(url=f"http://{host!s}:{port}"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
