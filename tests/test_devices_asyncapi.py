"""docs/asyncapi.yaml stays true to the protocol the code speaks: every reference
resolves, its enumerations are the ingest's, and its examples pass the ingest's
validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chargers.protocol import codes, payloads

DOC = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(DOC.read_text())


def resolve(doc, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_every_reference_resolves(doc):
    assert doc["asyncapi"].startswith("3.")
    for ref in refs(doc):
        resolve(doc, ref)


def test_channels_are_the_protocols_topics(doc):
    kinds = {c["address"].rsplit("/", 1)[1] for c in doc["channels"].values()}
    assert kinds == set(codes.DEVICE_KINDS) | {codes.COMMAND_KIND}
    assert all(c["address"].startswith("chargers/v1/{pile}/") for c in doc["channels"].values())


def test_enumerations_match_the_ingest(doc):
    schemas = doc["components"]["schemas"]
    assert tuple(schemas["PortStatus"]["enum"]) == codes.PORT_STATUSES
    assert tuple(schemas["FaultCode"]["enum"]) == codes.FAULT_CODES
    assert tuple(schemas["StopReason"]["enum"]) == codes.STOP_REASONS


def test_examples_are_valid_payloads(doc):
    checked = 0
    for channel in doc["channels"].values():
        kind = channel["address"].rsplit("/", 1)[1]
        if kind in ("cmd", "online"):
            continue
        for message_ref in channel["messages"].values():
            message = resolve(doc, message_ref["$ref"])
            for example in message.get("examples", []):
                payloads.decode(kind, json.dumps(example["payload"]).encode())
                checked += 1
    assert checked >= 5
