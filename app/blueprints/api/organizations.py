"""The caller's organization, its members, and invites (create, check, redeem).

Checking and redeeming an invite need no token: the person holding the code has no account
yet (the seed's example sends the code itself as the bearer token, which is accepted). Who may
create invites (owners and admins) is decided by `services.accounts`.
"""

from __future__ import annotations

from app.blueprints import limits, links
from app.blueprints.api import route, serialize
from app.blueprints.api.auth import api_user, bearer_token, token_required
from app.blueprints.api.schema import (
    Object,
    String,
    check,
    query_text,
    read_json,
)
from app.services import accounts
from app.services.errors import BadRequest

REDEEM = Object(
    {
        "code": String(required=False),
        "username": String(),
        "password": String(),
        "display_name": String(),
    }
)


@route("/organization/", "GET")
@token_required
def organization():
    overview = accounts.organization_overview(api_user())
    return {
        "id": overview.id,
        "name": overview.name,
        "deployment_quota": overview.deployment_quota,
        "members": [
            {
                "id": member.id,
                "username": member.username,
                "display_name": member.display_name,
                "role": member.role,
                "active": member.active,
            }
            for member in overview.members
        ],
    }


@route("/organization/invite/", "PATCH")
@token_required
def create_invite():
    invite, code = accounts.create_invite(api_user())
    return {
        "code": code,
        "invite_url": links.invite_link(code),
        "expires_at": serialize.timestamp(invite.expires_at),
    }, 201


@route("/organization/invite/", "GET")
def invite_status():
    status, organization = accounts.invite_status(query_text("code"))
    return {
        "valid": status == "active",
        "status": status,
        "organization": {"name": organization.name} if organization is not None else None,
    }


@route("/organization/invite/", "POST")
@limits.account_creation
def redeem_invite():
    body = check(read_json(), REDEEM)
    # The seed's example sends the code as its bearer token: the caller has no account yet.
    code = body.get("code") or query_text("code") or bearer_token()
    if not code:
        raise BadRequest(
            "Give the invite code in the body, as ?code= or as the bearer token.",
            {"code": "is required"},
        )
    user = accounts.redeem_invite(code, body["username"], body["password"], body["display_name"])
    return {
        "user": serialize.user(user),
        "organization": serialize.organization_summary(user.organization),
    }, 201
