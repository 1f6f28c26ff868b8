"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any


def _op(summary: str, body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK"},
            "401": {"description": "no or bad Bearer token / console session"},
            "404": {"description": "not found"},
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "properties": body}}},
        }
    op.update(extra)
    return op


def _param(
    name: str, where: str = "query", desc: str = "", enum: list[str] | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": desc,
        "schema": schema,
    }


TEXT = {"text": {"type": "string", "maxLength": 2000}}


def document(base_url: str) -> dict[str, Any]:
    """The whole document."""
    conv = [_param("id", "path", "conversation id")]
    tick = [_param("number", "path", "ticket number, e.g. KF-20261201-7K3Q-X")]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kefu staff API",
            "version": "1",
            "description": "Conversations handed to people, and tickets. Authenticate with "
            "`Authorization: Bearer TOKEN` from `flask --app wsgi staff token USERNAME`.",
        },
        "servers": [{"url": base_url + "/api/v1"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/conversations": {
                "get": _op(
                    "List conversations: id, openid, reason, waiting since, last message",
                    parameters=[_param("status", enum=["waiting", "open", "closed"])],
                )
            },
            "/conversations/{id}": {
                "get": _op("A conversation and its messages (user, bot, agent)", parameters=conv)
            },
            "/conversations/{id}/messages": {
                "post": _op(
                    "Send an agent reply through WeChat (outbox); 201", TEXT, parameters=conv
                )
            },
            "/conversations/{id}/close": {
                "post": _op("Hand the conversation back to the bot", parameters=conv)
            },
            "/tickets": {
                "get": _op(
                    "List tickets (default: open ones)",
                    parameters=[
                        _param("state", desc="open, all, or a ticket state"),
                        _param("level", enum=["L1", "L2", "L3", "onsite"]),
                        _param("priority", enum=["low", "normal", "high", "urgent"]),
                        _param("assignee", desc="me, none, or a staff id"),
                        _param("overdue", enum=["1"]),
                    ],
                )
            },
            "/tickets/{number}": {
                "get": _op("A ticket with its validation report", parameters=tick),
                "patch": _op(
                    "Change state, level (note required), assignee or priority",
                    {
                        "state": {"type": "string"},
                        "level": {"type": "string"},
                        "assignee": {"type": ["string", "integer", "null"]},
                        "priority": {"type": "string"},
                        "note": {"type": "string"},
                    },
                    parameters=tick,
                ),
            },
            "/tickets/{number}/messages": {
                "post": _op(
                    "Message the customer about the ticket (WeChat); 201", TEXT, parameters=tick
                )
            },
            "/tickets/{number}/notes": {
                "post": _op("Add an internal note; 201", TEXT, parameters=tick)
            },
        },
    }
