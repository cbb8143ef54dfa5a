"""Relay global IDs, written: opaque base64url of `Type:id`.

Below `schema` because events (resolvers/events.py) spell their entities' IDs as the
API does; reading them back (schema/global_id.py) needs the entity vocabulary.
"""

from __future__ import annotations

import base64


def to_global_id(type_name: str, id_: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{id_}".encode()).decode().rstrip("=")
