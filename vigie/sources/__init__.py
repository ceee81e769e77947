"""One module per source kind, each behind the interface of `vigie.sources.base`."""

from vigie.sources.base import Connector, SourceError
from vigie.sources.bodycam_api import BodycamApi
from vigie.sources.drone_files import DroneFiles
from vigie.sources.lapi_files import LapiFiles
from vigie.sources.vms_sql import VmsSql

CONNECTORS: dict[str, type[Connector]] = {c.kind: c for c in (VmsSql, BodycamApi, DroneFiles, LapiFiles)}

__all__ = ["CONNECTORS", "Connector", "SourceError"]
