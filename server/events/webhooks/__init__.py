"""Webhooks at the process edge: the secret box, Standard Webhooks signing, the
fan-out of outbox events into delivery rows, and the delivery jobs on saq."""

from server.events.webhooks.secret_box import SecretBox
from server.events.webhooks.signing import sign

__all__ = ["SecretBox", "sign"]
