"""`headwater serve`: the data API; `headwater keys`: its API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    project: ProjectDir = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    env: Annotated[str, typer.Option(help="The environment whose releases to serve.")] = "prod",
    cache: Annotated[str, typer.Option(help="Response cache size, e.g. 256MB, 1GB, 0.")] = "256MB",
    threads: Annotated[int, typer.Option("--threads", help="Requests read at once.", min=1)] = 16,
) -> None:
    """Serve every model whose sidecar says `serve:` as a REST API over its published data
    products (never the warehouse file, so runs and reads never wait on each other).

    Docs at http://HOST:PORT/docs. Without a policies.yml every model is open to anyone who
    can reach the port, PII-tagged columns hashed; with one, a request needs an API key
    (`headwater keys create NAME --role ROLE`) unless `anonymous:` names a role."""
    from headwater.cli.main import _console, _errors, _stderr
    from headwater.project import load_project

    with _errors():
        loaded = load_project(project)
        if loaded.policies is None and host not in LOOPBACK:
            _stderr().print(
                f"[red]error:[/] --host {host}: without a policies.yml every served model is "
                "open to anyone who reaches it; add policies.yml (roles, grants) first"
            )
            raise typer.Exit(2)
        import asyncio
        import contextlib
        import signal
        import sys

        import anyio.to_thread
        import uvicorn

        from headwater.serve.app import create_app

        app = create_app(loaded, env=env, cache_bytes=_bytes(cache))
        served = app.state.served
    if not served:
        _stderr().print(
            "[yellow]warning:[/] no model says `serve: true` in its sidecar; only /v1/health "
            "and /v1/models answer"
        )
    _console().print(
        f"Serving {len(served)} model(s) of {env} at http://{host}:{port}/v1 "
        f"(docs: http://{host}:{port}/docs)",
        highlight=False,
    )

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    async def main() -> None:
        # sync endpoints run on anyio's worker threads, each with its own DuckDB cursor
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        await server.serve()

    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again: a stop asked
    # for is a clean exit (0), as for any service manager
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    _console().print("stopped", highlight=False)


def _bytes(text: str) -> int:
    """`256MB`, `1GB`, `0` → bytes."""
    lowered = text.strip().lower()
    factor = 1
    for unit, size in (("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("b", 1)):
        if lowered.endswith(unit):
            lowered, factor = lowered[: -len(unit)].strip(), size
            break
    try:
        return int(float(lowered) * factor)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a size (e.g. 256MB)", param_hint="--cache"
        ) from None


keys = typer.Typer(help="API keys of the data API (the catalog keeps only their hashes).")


@keys.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    role: Annotated[str, typer.Option(help="The policies.yml role it acts as.")],
    project: ProjectDir = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Make a key for ROLE and print it once: only its hash is kept."""
    from datetime import UTC, datetime

    from headwater.cli.main import _check_format, _console, _errors, _print_json, _stderr
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project
    from headwater.serve.access import key_hash, new_key

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        roles = (loaded.policies.roles if loaded.policies else {}).keys()
        if role not in roles:
            known = ", ".join(sorted(roles)) or "policies.yml declares none (or is missing)"
            _stderr().print(f"[red]error:[/] --role {role!r} is not a role ({known})")
            raise typer.Exit(2)
        stores = LakeStores.open(loaded)
        try:
            key = new_key()
            try:
                stores.catalog.add_api_key(name, role, key_hash(key), now=datetime.now(UTC))
            except ValueError as err:
                _stderr().print(f"[red]error:[/] {err}; revoke it first or pick another name")
                raise typer.Exit(2) from None
        finally:
            stores.close()
    if fmt == "json":
        _print_json({"name": name, "role": role, "key": key})
        return
    _console().print(
        f"API key {name!r} (role {role}), shown once — store it now:\n{key}", highlight=False
    )


@keys.command("list")
def list_keys(
    project: ProjectDir = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """The keys: name, role, when made, whether revoked (never the keys themselves)."""
    from headwater.cli.main import _check_format, _console, _errors, _print_json
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        stores = LakeStores.open(load_project(project))
        try:
            found = stores.catalog.api_keys()
        finally:
            stores.close()
    if fmt == "json":
        _print_json([k.__dict__ for k in found])
        return
    if not found:
        _console().print("no API keys (headwater keys create NAME --role ROLE)")
    for k in found:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "live"
        _console().print(
            f"{k.name:<24} {k.role:<16} made {k.created_at:%Y-%m-%d %H:%M}  {state}",
            highlight=False,
        )


@keys.command("revoke")
def revoke_key(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    project: ProjectDir = Path("."),
) -> None:
    """Revoke a key: servers refuse it within 2 seconds."""
    from datetime import UTC, datetime

    from headwater.cli.main import _console, _errors, _stderr
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    with _errors():
        stores = LakeStores.open(load_project(project))
        try:
            done = stores.catalog.revoke_api_key(name, now=datetime.now(UTC))
        finally:
            stores.close()
    if not done:
        _stderr().print(f"[red]error:[/] no live key named {name!r} (headwater keys list)")
        raise typer.Exit(2)
    _console().print(f"revoked {name}")
