#!/usr/bin/env python3
"""Creates the run ledger table in a local DynamoDB (moto) exactly as template.yaml's
RunLedgerTable declares it (key, attributes, global secondary indexes, TTL), so the local run
(scripts/run-local.sh) and the pytest fixtures (tests/py/conftest.py) exercise the deployed
shape. The template is the one home of the table's definition (docs/ledger.md).

Usage: create-ledger-table.py ENDPOINT TABLE_NAME
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import yaml

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !If, ...) as plain data."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def ledger_table_spec() -> dict:
    """The RunLedgerTable properties CreateTable takes (SSE and PITR are the service's)."""
    props = yaml.load(TEMPLATE.read_text(), Loader=_Loader)["Resources"]["RunLedgerTable"]["Properties"]
    return {k: props[k] for k in ("BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")}, props[
        "TimeToLiveSpecification"
    ]


def create(endpoint: str, name: str) -> None:
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    spec, ttl = ledger_table_spec()
    dynamodb.create_table(TableName=name, **spec)
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


if __name__ == "__main__":
    create(sys.argv[1], sys.argv[2])
