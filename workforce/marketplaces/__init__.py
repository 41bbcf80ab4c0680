"""Marketplace connectors: dataclasses in, dataclasses out; boto3 dicts are parsed at the edge.

``base`` holds the protocol every connector follows; ``registry.get_connector(name)`` returns one.
No Django models are imported here, so connectors are testable without a database.
"""
