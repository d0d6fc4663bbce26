"""Every provider in `integrations/`, by name. Adding a provider adds one line here."""

from __future__ import annotations

from integrations.common.spec import IntegrationSpec
from integrations.stripe import SPEC as STRIPE

__all__ = ["INTEGRATIONS"]

_SPECS: tuple[IntegrationSpec, ...] = (STRIPE,)

INTEGRATIONS: dict[str, IntegrationSpec] = {spec.name: spec for spec in _SPECS}
