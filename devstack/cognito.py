"""The embedded Cognito user pool: the app's OIDC settings, the console's sign-in endpoint, state across restarts.

* The pool and its console client are the data stack's (infra/template.yaml; infra/stack.py makes them
  through moto's API, since moto's CloudFormation skips AWS::Cognito::*). Their ids are derived from their
  names (moto's HASH id strategy), so a restart finds the same pool and client ids: the issuer the app
  trusts, and the audience, do not change.
* The app verifies tokens against the pool's JWKS at the embedded AWS (`OIDC_JWKS_URL`): moto's tokens
  name the real Cognito issuer (https://cognito-idp.{region}.amazonaws.com/{poolId}), which is not
  reachable here. moto signs every pool's tokens with one test key shipped inside moto: such tokens are
  for a local stack only, never for anything on AWS.
* The console signs in at `/_cognito/` on the stack's own port (`OIDC_ENDPOINT=/_cognito/`;
  /console/config.json names it as an absolute URL). `SignIn` passes Cognito's unauthenticated calls
  (InitiateAuth with USER_PASSWORD_AUTH or REFRESH_TOKEN_AUTH, RespondToAuthChallenge, GlobalSignOut,
  RevokeToken, GetUser) to the embedded AWS unchanged and refuses every other (the admin API needs
  AWS credentials on AWS too): the page makes exactly the call it makes against Cognito on AWS.
* moto keeps users in memory: `PoolState` writes the pool's users and groups (passwords included:
  a local stack's test accounts) to `<state dir>/cognito.json` whenever they change (checked every
  0.5 s, and at a clean stop) and puts them back at the next start, with the same `sub`s, so the
  people items of the restored tables still name them.

Nothing here is used on AWS.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger("devstack")

STATE_FILE = "cognito.json"
SIGN_IN_PATH = "/_cognito/"
DEFAULT_ADMIN_EMAIL = "admin@example.com"
# What a browser may ask of Cognito without AWS credentials (the public client's calls).
PUBLIC_ACTIONS = frozenset({"InitiateAuth", "RespondToAuthChallenge", "GlobalSignOut", "RevokeToken", "GetUser"})
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
MAX_BODY_BYTES = 64 * 1024

Response = tuple[int, list[tuple[bytes, bytes]], bytes]


TOKEN_VALIDITY_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def honour_token_validity() -> None:
    """moto signs every token for an hour; Cognito uses the app client's AccessTokenValidity and
    IdTokenValidity (in TokenValidityUnits, hours by default). Done as Cognito does, so the console's
    refresh and the WebSocket's close at expiry can be seen locally with a short-lived client."""
    from moto.cognitoidp.models import CognitoIdpUserPool

    original = CognitoIdpUserPool.create_jwt
    if getattr(original, "honours_validity", False):
        return

    def create_jwt(self: Any, client_id: str, username: str, token_use: str, expires_in: int = 3600,
                   extra_data: dict[str, Any] | None = None) -> tuple[str, int]:
        client = self.clients.get(client_id)
        name = {"access": "AccessToken", "id": "IdToken"}.get(token_use)
        if client is not None and name is not None:
            config = client.extended_config or {}
            value = config.get(f"{name}Validity")
            if value:
                unit = (config.get("TokenValidityUnits") or {}).get(name, "hours")
                expires_in = int(value) * TOKEN_VALIDITY_UNITS.get(unit, 3600)
        return original(self, client_id, username, token_use, expires_in, extra_data)

    create_jwt.honours_validity = True  # type: ignore[attr-defined]
    CognitoIdpUserPool.create_jwt = create_jwt  # type: ignore[method-assign]


def pin_ids() -> None:
    """Pool and client ids from their names (before the stack is deployed): the same on every start."""
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "HASH")
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY", "HASH")


def environment(moto_url: str, outputs: dict[str, str]) -> dict[str, str]:
    """The app's OIDC settings beside the stack's (issuer and audience come from the outputs)."""
    return {
        "OIDC_JWKS_URL": f"{moto_url}/{outputs['UserPoolId']}/.well-known/jwks.json",
        "OIDC_ENDPOINT": SIGN_IN_PATH,
        "ADMIN_EMAIL": os.environ.get("ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL,
    }


# --- the console's sign-in endpoint -----------------------------------------------------------

class SignIn:
    """Cognito's public calls, passed to the embedded AWS as they are (CORS as Cognito answers it)."""

    def __init__(self, moto_url: str) -> None:
        self._moto_url = moto_url

    def handle(self, method: str, headers: dict[str, str], body: bytes) -> Response:
        cors = [(b"access-control-allow-origin", b"*")]
        if method == "OPTIONS":
            return 204, [*cors, (b"access-control-allow-methods", b"POST"),
                         (b"access-control-allow-headers", b"content-type, x-amz-target, x-amz-user-agent"),
                         (b"access-control-max-age", b"600")], b""
        if method != "POST":
            return _cognito_error(405, "InvalidParameterException", "use POST", cors)
        target = headers.get("x-amz-target", "")
        action = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
        if action not in PUBLIC_ACTIONS:
            return _cognito_error(400, "NotAuthorizedException",
                                  f"only {', '.join(sorted(PUBLIC_ACTIONS))} are served here", cors)
        if len(body) > MAX_BODY_BYTES:
            return _cognito_error(400, "InvalidParameterException", "request too large", cors)
        request = urllib.request.Request(self._moto_url + "/", data=body, method="POST", headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the embedded AWS
                status, payload, kind = answer.status, answer.read(), answer.headers.get("x-amzn-errortype")
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers.get("x-amzn-errortype")
        out = [*cors, (b"content-type", b"application/x-amz-json-1.1")]
        if kind:
            out.append((b"x-amzn-errortype", kind.encode("latin-1")))
        return status, out, payload


def _cognito_error(status: int, kind: str, message: str, headers: list[tuple[bytes, bytes]]) -> Response:
    return status, [*headers, (b"content-type", b"application/x-amz-json-1.1"),
                    (b"x-amzn-errortype", kind.encode())], json.dumps({"__type": kind, "message": message}).encode()


# --- state across restarts --------------------------------------------------------------------

def _backend() -> Any:
    from moto.cognitoidp.models import cognitoidp_backends

    from devstack.persistence import account_region

    account, region = account_region()
    return cognitoidp_backends[account][region]


def capture(pool_id: str) -> dict[str, Any]:
    """The pool's groups and users as plain JSON (read from moto's model, in this process)."""
    pool = _backend().user_pools[pool_id]
    return {
        "poolId": pool_id,
        "groups": [{"name": g.group_name, "description": g.description} for g in list(pool.groups.values())],
        "users": [{"username": u.username, "id": u.id, "password": u.password, "status": str(u.status),
                   "enabled": u.enabled, "attributes": list(u.attributes),
                   "groups": sorted(g.group_name for g in list(u.groups))} for u in list(pool.users.values())],
    }


def restore(saved: dict[str, Any], pool_id: str) -> int:
    """Put saved groups and users back into the (new, empty) pool; returns how many users."""
    from moto.cognitoidp.models import CognitoIdpGroup, CognitoIdpUser, UserStatus

    if saved.get("poolId") != pool_id:
        log.warning("state: cognito.json is for pool %s, the stack's is %s: not restored", saved.get("poolId"), pool_id)
        return 0
    pool = _backend().user_pools[pool_id]
    for group in saved.get("groups", []):
        if group["name"] not in pool.groups:
            pool.groups[group["name"]] = CognitoIdpGroup(pool_id, group["name"], group["description"], None, None)  # type: ignore[arg-type]
    for data in saved.get("users", []):
        status = data["status"].rpartition(".")[2]
        user = CognitoIdpUser(pool_id, data["username"], data["password"], UserStatus[status], [])
        user.id = data["id"]
        user.attributes = [a for a in data["attributes"]]
        user.attribute_lookup = {a["Name"]: a["Value"] for a in user.attributes}
        user.enabled = data["enabled"]
        pool.users[user.username] = user
        for name in data["groups"]:
            if name in pool.groups:
                pool.groups[name].users.add(user)
                user.groups.add(pool.groups[name])
    return len(saved.get("users", []))


class PoolState:
    """Keeps the pool's users in `<state dir>/cognito.json` (see the module doc)."""

    def __init__(self, state_dir: Path, pool_id: str, interval: float = 0.5) -> None:
        self._path = state_dir / STATE_FILE
        self._pool_id = pool_id
        self._interval = interval
        self._stop = threading.Event()
        self._last: str | None = None
        self._thread = threading.Thread(target=self._run, name="cognito-state", daemon=True)

    def load(self) -> int:
        try:
            saved = json.loads(self._path.read_text())
        except FileNotFoundError:
            return 0
        count = restore(saved, self._pool_id)
        self._last = json.dumps(capture(self._pool_id), sort_keys=True, default=str)
        return count

    def start(self) -> None:
        self._thread.start()

    def save_if_changed(self) -> bool:
        text = json.dumps(capture(self._pool_id), sort_keys=True, default=str)
        if text == self._last:
            return False
        partial = self._path.with_name(STATE_FILE + ".partial")
        with open(partial, "w", opener=lambda p, f: os.open(p, f, 0o600)) as out:  # passwords: the owner's only
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self._path)
        self._last = text
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.save_if_changed()
            except Exception:  # noqa: BLE001 - a failed save is retried on the next tick
                log.exception("state: saving the Cognito pool failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.save_if_changed()
