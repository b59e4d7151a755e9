"""Microsoft Graph: read the Entra tenant the bridge reconciles against."""

from bridge.graph.client import (
    DeltaExpired,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphSettings,
    GraphThrottled,
    graph_client,
)
from bridge.graph.source import GraphSource, Page

__all__ = [
    "DeltaExpired",
    "GraphAuthError",
    "GraphError",
    "GraphNotFound",
    "GraphSettings",
    "GraphSource",
    "GraphThrottled",
    "Page",
    "graph_client",
]
