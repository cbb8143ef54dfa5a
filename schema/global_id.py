"""Relay global IDs: opaque base64url of `Type:id`. Clients never parse them."""

from __future__ import annotations

import base64
import binascii

from resolvers.errors import InvalidInput
from resolvers.global_ids import to_global_id as to_global_id
from schema.entities import ENTITY_OF_TYPE

# Database ids are BIGINT: anything larger cannot name a row.
MAX_ID = 2**63 - 1


def from_global_id(global_id: str, *, field: str) -> tuple[str, int]:
    """(type name, database id) of a global ID; BAD_USER_INPUT when malformed."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw_id = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        id_ = int(raw_id)
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInput(f"`{field}` is not a valid ID.", field=field) from None
    if type_name not in ENTITY_OF_TYPE or not raw_id.isdigit() or not 1 <= id_ <= MAX_ID:
        raise InvalidInput(f"`{field}` is not a valid ID.", field=field)
    return type_name, id_


def id_of_type(global_id: str, type_name: str, *, field: str) -> int:
    """The database id of a global ID that must be of `type_name`."""
    actual, id_ = from_global_id(global_id, field=field)
    if actual != type_name:
        raise InvalidInput(
            f"`{field}` must be the ID of a {type_name}, not a {actual}.", field=field
        )
    return id_
