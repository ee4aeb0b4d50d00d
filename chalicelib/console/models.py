from __future__ import annotations

from typing import ClassVar, Optional

from chalicelib.core.models import ResponseModel, ShowsNulls


class OidcConfig(ResponseModel):
    issuer: str
    client_id: str
    region: str
    endpoint: str


class ConsoleConfig(ShowsNulls):
    """Where the page finds the API: the REST base URL and the WebSocket URL (no token in it)."""

    shown_null: ClassVar[tuple[str, ...]] = ("wsUrl", "oidc")

    rest_url: str
    ws_url: Optional[str]
    # People's sign-in: the Cognito pool (issuer, app client, region, API endpoint); null without OIDC.
    oidc: Optional[OidcConfig] = None
