"""API routes of the user lifecycle (registered on the API blueprint of ``web.api``):
one user, deactivate, reactivate, change the role, reset the password. Admins only;
each change is an audit record, and an admin cannot change their own account."""

from __future__ import annotations

from pydantic import Field

from sandbox.vocabulary import Role
from web import access
from web.api import api
from web.auth import actor
from web.schemas import Request, Response


class UserDetailOut(Response):
    name: str
    role: Role
    active: bool
    display_name: str = ""
    organisation: str = ""
    created_at: str


class RoleChange(Request):
    role: Role


class PasswordReset(Request):
    password: str = Field(min_length=1, max_length=1024)


ADMIN = (Role.ADMIN,)


@api.route("/users/<name>", roles=ADMIN, response=UserDetailOut, summary="One user", tag="admin")
def get_user_detail(name: str):
    from sandbox.users import get_user_view

    return get_user_view(access.inst(), name)


@api.route("/users/<name>/deactivate", "POST", roles=ADMIN, response=UserDetailOut, tag="admin",
           summary="Deactivate a user: their tokens and page sessions end at once")
def deactivate_user(name: str):
    from sandbox.users import deactivate_user as deactivate

    return deactivate(access.inst(), actor(), name)


@api.route("/users/<name>/reactivate", "POST", roles=ADMIN, response=UserDetailOut, tag="admin",
           summary="Let a deactivated user sign in again")
def reactivate_user(name: str):
    from sandbox.users import reactivate_user as reactivate

    return reactivate(access.inst(), actor(), name)


@api.route("/users/<name>/role", "PUT", roles=ADMIN, body=RoleChange, response=UserDetailOut, tag="admin",
           summary="Change a user's role")
def set_user_role(name: str, body: RoleChange):
    from sandbox.users import set_role

    return set_role(access.inst(), actor(), name, body.role)


@api.route("/users/<name>/password", "PUT", roles=ADMIN, body=PasswordReset, response=UserDetailOut, tag="admin",
           summary="Reset a user's password: their tokens and page sessions end")
def reset_user_password(name: str, body: PasswordReset):
    from sandbox.users import reset_password

    return reset_password(access.inst(), actor(), name, body.password)
