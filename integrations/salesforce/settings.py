"""The non-secret settings of a Salesforce connection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from integrations.common.setting_types import HttpUrl

__all__ = ["SalesforceSettings"]


class SalesforceSettings(BaseModel):
    """Where to log in to Salesforce, which REST API version to speak, and what a new caller becomes.

    The API host is not a setting: every OAuth token answer names the org's `instance_url`, which
    the connector keeps in the vault next to the access token and sends every REST call to.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(
        default="https://login.salesforce.com",
        description=(
            "Login host the OAuth token endpoint lives on (https://test.salesforce.com for a sandbox org, "
            "or the org's My Domain); the sandbox emulator's URL in tests and demos."
        ),
    )
    api_version: str = Field(
        default="v59.0",
        pattern=r"^v[1-9][0-9]\.0$",
        description="REST API version in paths (/services/data/<version>/...).",
    )
    create_as: Literal["contact", "lead"] = Field(
        default="contact", description="What a new caller is created as: a Contact or a Lead."
    )
    lead_company: str = Field(
        default="Phone caller",
        min_length=1,
        max_length=255,
        description="Company written on a new Lead (Salesforce requires one); used when create_as is lead.",
    )
