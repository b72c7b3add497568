"""The caller's organization: members and roles, settings and quota, invites (create, list,
revoke, re-open, check, redeem) and password reset links.

Checking and redeeming an invite need no token: the person holding the code has no account
yet (the seed's example sends the code itself as the bearer token, which is accepted). Who
may do what is decided by `services.accounts` (and `services.organizations` for the settings),
exactly as for the admin pages.
"""

from __future__ import annotations

from flask import request

from app.blueprints import limits, links
from app.blueprints.api import ID, route, serialize
from app.blueprints.api.auth import api_user, bearer_token, token_required
from app.blueprints.api.schema import (
    Boolean,
    IntegerOrString,
    NumberOrString,
    Object,
    String,
    check,
    json_body,
    query_text,
    read_json,
)
from app.services import accounts, organizations, quotas
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
        "members": [serialize.member(member) for member in overview.members],
    }


NEW_INVITE = Object({"label": String(required=False), "role": String(required=False)})
ROLE = Object({"role": String()})
SETTINGS = Object(
    {
        "name": String(required=False),
        "deployment_quota": IntegerOrString(required=False),
        "members_can_create_clusters": Boolean(required=False),
        "member_max_priority": IntegerOrString(required=False),
        "admin_max_priority": IntegerOrString(required=False),
    }
)


@route("/organization/invite/", "PATCH")
@token_required
def create_invite():
    """A body is optional (the seed sent none): {"label", "role"}, default a member."""
    body = check(read_json(), NEW_INVITE) if request.content_length else {}
    invite, code = accounts.create_invite(
        api_user(), body.get("label") or "", body.get("role") or "member"
    )
    return {
        "code": code,
        "invite_url": links.invite_link(code),
        "expires_at": serialize.timestamp(invite.expires_at),
        "invite": serialize.invite(accounts.invite_view(invite)),
    }, 201


@route("/organization/invites/", "GET")
@token_required
def list_invites():
    return {"items": [serialize.invite(view) for view in accounts.list_invites(api_user())]}


@route(f"/organization/invites/<{ID}:invite_id>/revoke/", "POST")
@token_required
def revoke_invite(invite_id: int):
    invite = accounts.revoke_invite(api_user(), invite_id)
    return serialize.invite(accounts.invite_view(invite))


@route(f"/organization/invites/<{ID}:invite_id>/reopen/", "POST")
@token_required
def reopen_invite(invite_id: int):
    invite = accounts.reopen_invite(api_user(), invite_id)
    return serialize.invite(accounts.invite_view(invite))


@route("/organization/members/", "GET")
@token_required
def list_members():
    return {"items": [serialize.member(view) for view in accounts.list_members(api_user())]}


@route(f"/organization/members/<{ID}:user_id>/role/", "PUT")
@token_required
def change_role(user_id: int):
    body = json_body(ROLE)
    return serialize.member(accounts.change_role(api_user(), user_id, body["role"]))


@route(f"/organization/members/<{ID}:user_id>/deactivate/", "POST")
@token_required
def deactivate(user_id: int):
    """Ends every session and revokes every API token of the member, for good."""
    member, ended = accounts.deactivate(api_user(), user_id)
    return {
        **serialize.member(member),
        "ended_sessions": ended.sessions,
        "ended_tokens": ended.tokens,
    }


@route(f"/organization/members/<{ID}:user_id>/reactivate/", "POST")
@token_required
def reactivate(user_id: int):
    return serialize.member(accounts.reactivate(api_user(), user_id))


@route(f"/organization/members/<{ID}:user_id>/password-reset/", "POST")
@token_required
def password_reset(user_id: int):
    """A single-use link for the member to choose a new password; shown only now."""
    reset, code = accounts.create_password_reset(api_user(), user_id)
    return {
        "reset_url": links.password_reset_link(code),
        "expires_at": serialize.timestamp(reset.expires_at),
    }, 201


@route("/organization/settings/", "GET")
@token_required
def settings():
    return serialize.settings(accounts.organization_settings(api_user()))


@route("/organization/settings/", "PATCH")
@token_required
def update_settings():
    """Fields left out keep their value. The message says what a quota below use means."""
    body = json_body(SETTINGS)
    current = accounts.organization_settings(api_user())
    saved = organizations.update_settings(
        api_user(),
        body.get("name", current.name),
        body.get("deployment_quota", current.deployment_quota),
        body.get("members_can_create_clusters"),
        body.get("member_max_priority"),
        body.get("admin_max_priority"),
    )
    return {
        **serialize.settings(saved.settings),
        "deployments": saved.deployments,
        "message": saved.message,
    }


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


QUOTA = Object(
    {
        "scope": String(),
        "user_id": IntegerOrString(required=False),
        "cluster_id": IntegerOrString(required=False),
        "kind": String(),
        "amount": NumberOrString(),
        "min_priority": IntegerOrString(required=False),
        "max_priority": IntegerOrString(required=False),
    }
)


def quota_json(use: organizations.QuotaUse) -> dict:
    rule = use.rule
    return {
        "id": rule.id,
        "scope": rule.scope,
        "user_id": rule.user_id,
        "member": use.member_name,
        "cluster_id": rule.cluster_id,
        "cluster_name": use.cluster_name,
        "kind": rule.kind,
        "amount": serialize.amounts({rule.kind: rule.amount})[rule.kind],
        "min_priority": rule.min_priority,
        "max_priority": rule.max_priority,
        "description": use.description,
        "use": [
            {
                "who": line.who,
                "used": serialize.amounts({rule.kind: line.used})[rule.kind],
                "limit": serialize.amounts({rule.kind: line.limit})[rule.kind],
                "full": line.full,
            }
            for line in use.lines
        ],
    }


@route("/organization/quotas/", "GET")
@token_required
def list_quotas():
    """Every resource quota with the use against it (owners)."""
    return {"items": [quota_json(use) for use in organizations.quota_overview(api_user())]}


@route("/organization/quotas/", "POST")
@token_required
def create_quota():
    rule = quotas.create(api_user(), json_body(QUOTA))
    found = next(u for u in organizations.quota_overview(api_user()) if u.rule.id == rule.id)
    return quota_json(found), 201


@route(f"/organization/quotas/<{ID}:quota_id>/", "DELETE")
@token_required
def delete_quota(quota_id: int):
    quotas.delete(api_user(), quota_id)
    return "", 204
