"""Connectors by marketplace name. A new marketplace is one module plus one line in ``_CONNECTORS``."""

from __future__ import annotations

from importlib import import_module

from workforce.marketplaces.base import Marketplace, MarketplaceError

# name -> "module:factory"; imported lazily so boto3 loads only where a remote marketplace is used.
_CONNECTORS: dict[str, str] = {
    "internal": "workforce.marketplaces.internal:InternalPool",
    "groundtruth": "workforce.marketplaces.groundtruth.connector:GroundTruth",
    "mturk": "workforce.marketplaces.mturk:MTurkMarketplace",
}


def get_connector(name: str) -> Marketplace:
    try:
        target = _CONNECTORS[name]
    except KeyError:
        raise MarketplaceError(f"No connector is registered for marketplace {name!r}.", permanent=True) from None
    module_name, factory_name = target.split(":")
    factory = getattr(import_module(module_name), factory_name)
    connector: Marketplace = factory()
    return connector
