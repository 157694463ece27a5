"""The ``footprint`` command.

footprint run        the whole product on an embedded real stack: API + worker on :8000
footprint migrate    apply sql/ to PostgreSQL and ClickHouse and create the topics
footprint stack      only the embedded servers; prints their FOOTPRINT_* variables
footprint generate   realistic traffic and community actions sent to a running API
footprint backfill   import history (footprints older than FOOTPRINT_EVENT_MAX_AGE)
footprint sites      add, list or remove sites of a running API (add prints the site's key)
footprint retention  apply the data retention now (run --dry-run lists what would go)
footprint users      delete or export one user's data through a running API
footprint goals      add, list or remove a site's goals on a running API
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from types import FrameType

from footprint.settings import SettingsError, get_settings, load_settings
from footprint.settings_secrets import DEV_JWT_SECRET
from footprint.stack.process import ServerStartError

__all__ = ["main"]

log = logging.getLogger("footprint")


def migrate(*, clickhouse: bool = True) -> None:
    """Apply the SQL migrations and create the topics for the current settings."""
    from footprint.clickhouse import connect
    from footprint.kafka_admin import TopicSpec, ensure_topics_sync
    from footprint.migrate import apply_clickhouse, apply_postgres

    s = get_settings()
    apply_postgres(s.require("postgres_url"))
    if clickhouse:
        client = connect(s.require("clickhouse_url"))
        try:
            apply_clickhouse(client)
        finally:
            client.close()
    ensure_topics_sync(
        s.kafka_bootstrap,
        [
            TopicSpec(s.footprints_topic, s.partitions, s.replication_factor),
            TopicSpec(s.dead_letter_topic, 1, s.replication_factor),
            TopicSpec(s.notifications_topic, s.partitions, s.replication_factor),
            TopicSpec(s.notifications_dead_letter_topic, 1, s.replication_factor),
        ],
    )


def _start_stack(broker: str | None) -> object:
    from footprint.stack.embedded import EmbeddedStack

    if broker:
        os.environ["FOOTPRINT_BROKER"] = broker
    stack = EmbeddedStack(load_settings())
    os.environ.update(stack.start())
    get_settings.cache_clear()
    return stack


def _services() -> list[str]:
    """Where each service is, for the people and the producers that use them."""
    s = get_settings()
    return [
        f"  Kafka bootstrap  {s.kafka_bootstrap}  (produce footprints to topic "
        f"'{s.footprints_topic}', see README 'Producing from other clients')",
        f"  PostgreSQL       {s.postgres_url}",
        f"  ClickHouse       {s.clickhouse_url}",
        f"  Redis            {s.redis_url}",
    ]


def _secrets(host: str | None = None) -> None:
    """Refuse missing or published secrets outside development; in development, fill the JWT one.

    Runs before any server starts, so a refused configuration fails in a moment.
    """
    if host is not None:
        os.environ["FOOTPRINT_HOST"] = host  # what the API's own start-up check reads too
    get_settings.cache_clear()
    settings = get_settings()
    settings.enforce_secrets()
    if not settings.jwt_secret:
        os.environ["FOOTPRINT_JWT_SECRET"] = DEV_JWT_SECRET
        get_settings.cache_clear()
        log.warning("FOOTPRINT_JWT_SECRET is not set: using the development secret")


def _dashboard_url(host: str, port: int) -> str:
    """The dashboard's URL with a fresh admin token in the fragment (browsers never send it)."""
    from footprint.tokens import mint_token

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    token = mint_token(get_settings(), "dashboard", admin=True)
    return f"http://{shown}:{port}/#token={token}"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(host: str, port: int, stop_timeout: float) -> None:
    """uvicorn with the API until Ctrl-C or SIGTERM; the first one starts the stop's deadline."""
    import uvicorn

    from footprint.deadline import exit_after
    from footprint.stack.orphans import kill_all

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # The whole stop (requests, worker, clients, servers) gets stop_timeout; past it
            # the servers are killed and the process exits (footprint/deadline.py).
            exit_after(stop_timeout, "footprint run", before_exit=kill_all)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        "api.main:app",
        host=host,
        port=port,
        log_level="info",
        # Open requests and WebSockets get a quarter of the stop; the worker needs the rest.
        timeout_graceful_shutdown=max(1, int(stop_timeout / 4)),
    )
    # uvicorn re-raises the signal it stopped on once it is done: KeyboardInterrupt here.
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run()


def run(host: str | None, port: int | None, broker: str | None = None) -> None:
    """Embedded stack, migrations, then the API with the worker in-process, until Ctrl-C."""
    os.environ.setdefault("FOOTPRINT_EMBEDDED_WORKER", "true")
    _secrets(host)
    # SIGTERM stops like Ctrl-C. Its default action would end the process on the spot (also
    # when uvicorn re-raises it after its own stop), before the embedded servers are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    stack = _start_stack(broker)
    try:
        migrate()
        s = get_settings()
        print(f"Footprint is running: http://{s.host}:{port or s.port}  (docs: /docs)")
        print(f"  Dashboard        {_dashboard_url(s.host, port or s.port)}")
        print("\n".join(_services()))
        print("Press Ctrl-C to stop; data lives in", os.path.abspath(s.data_dir), flush=True)
        _serve(s.host, port or s.port, s.stop_timeout)
    finally:
        stack.stop()  # type: ignore[attr-defined]


def stack_only(broker: str | None = None) -> None:
    """Start the embedded servers, print their variables, wait for Ctrl-C."""
    stack = _start_stack(broker)
    try:
        # chdb belongs to the one process that opens it: leave it to `footprint run`.
        embedded_clickhouse = get_settings().require("clickhouse_url").startswith("chdb:")
        migrate(clickhouse=not embedded_clickhouse)
        for key, value in sorted(os.environ.items()):
            hidden = embedded_clickhouse and key == "FOOTPRINT_CLICKHOUSE_URL"
            if key.startswith("FOOTPRINT_") and key.endswith("_URL") and not hidden:
                print(f"export {key}={value}")
        sys.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    finally:
        stack.stop()  # type: ignore[attr-defined]


def token(user: str, admin: bool, ttl: float) -> None:
    """Print a signed token for ``user`` (the development secret unless one is set)."""
    from footprint.tokens import mint_token

    _secrets()
    print(mint_token(get_settings(), user, admin=admin, ttl=ttl))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``footprint`` command."""
    parser = argparse.ArgumentParser(
        prog="footprint", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the whole product on an embedded stack")
    p_run.add_argument("--host")
    p_run.add_argument("--port", type=int)
    broker_help = "the broker to start: tansu (default) or kafka (Apache Kafka, needs Java 17+)"
    p_run.add_argument("--broker", choices=["tansu", "kafka"], help=broker_help)
    sub.add_parser("migrate", help="apply SQL migrations and create topics")
    p_stack = sub.add_parser("stack", help="start only the embedded servers")
    p_stack.add_argument("--broker", choices=["tansu", "kafka"], help=broker_help)
    p_token = sub.add_parser("token", help="mint a user token (JWT) for the API and /ws")
    p_token.add_argument("user")
    p_token.add_argument("--admin", action="store_true", help="a moderator (admin claim)")
    p_token.add_argument("--ttl", type=float, default=86_400, help="seconds (default a day)")
    p_gen = sub.add_parser("generate", help="send realistic traffic to a running API")
    p_gen.add_argument("--api", default="http://127.0.0.1:8000", help="the API's base URL")
    p_gen.add_argument("--rate", type=float, default=200.0, help="page views per second")
    p_gen.add_argument("--duration", type=float, help="seconds (default: until --count or Ctrl-C)")
    p_gen.add_argument("--count", type=int, help="page views to send")
    p_gen.add_argument("--seed", type=int, help="same seed, same sequence of pages and actions")
    p_gen.add_argument("--users", type=int, default=50, help="community users (default 50)")
    p_gen.add_argument(
        "--actions-ratio", type=float, default=0.05, help="community actions per page view"
    )
    p_gen.add_argument("--bots", type=float, default=0.1, help="share of page views by bots")
    p_gen.add_argument("--utm", type=float, default=0.15, help="share of visits with UTM tags")
    p_back = sub.add_parser("backfill", help="import history straight to the footprints topic")
    p_back.add_argument("file", help="JSON lines, one footprint each; - for standard input")
    p_sites = sub.add_parser("sites", help="add, list or remove the sites of a running API")
    p_sites.add_argument("action", choices=["add", "list", "remove"])
    p_sites.add_argument("domain", nargs="?", help="the site's domain (add, remove)")
    p_sites.add_argument("--api", default="http://127.0.0.1:8000", help="the API's base URL")
    p_ret = sub.add_parser("retention", help="apply the data retention now")
    p_ret.add_argument("action", choices=["run"])
    p_ret.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    p_users = sub.add_parser("users", help="delete or export one user's data (a running API)")
    p_users.add_argument("action", choices=["delete", "export"])
    p_users.add_argument("user_id")
    p_users.add_argument("-o", "--output", help="export: write the JSON to this file")
    p_users.add_argument("--api", default="http://127.0.0.1:8000", help="the API's base URL")
    p_goals = sub.add_parser("goals", help="add, list or remove a site's goals")
    goal_actions = p_goals.add_subparsers(dest="action", required=True)
    p_goal_add = goal_actions.add_parser("add", help="find or create a goal")
    p_goal_add.add_argument("domain")
    kind = p_goal_add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--event", help="a custom event's name")
    kind.add_argument("--page", help="pageviews of a path: * any characters but /, ** any")
    p_goal_add.add_argument("--name", help="the display name (default: the event or Visit PATH)")
    goal_actions.add_parser("list", help="the site's goals").add_argument("domain")
    p_goal_rm = goal_actions.add_parser("remove", help="delete a goal (not while in a funnel)")
    p_goal_rm.add_argument("domain")
    p_goal_rm.add_argument("goal_id", type=int)
    for p_goal in goal_actions.choices.values():
        p_goal.add_argument("--api", default="http://127.0.0.1:8000", help="the API's base URL")
    args = parser.parse_args(argv)
    if args.command == "sites" and args.action != "list" and not args.domain:
        parser.error(f"footprint sites {args.action} needs a DOMAIN")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "run":
            run(args.host, args.port, args.broker)
        elif args.command == "migrate":
            migrate()
        elif args.command == "stack":
            stack_only(args.broker)
        elif args.command == "token":
            token(args.user, args.admin, args.ttl)
        elif args.command == "generate":
            from footprint.cli.generate import main as generate

            return generate(args)
        elif args.command == "sites":
            from footprint.cli.sites import main as sites

            _secrets()
            return sites(get_settings(), args)
        elif args.command == "retention":
            from footprint.cli.retention import main as retention

            return retention(get_settings(), args)
        elif args.command == "users":
            from footprint.cli.users import main as users

            _secrets()
            return users(get_settings(), args)
        elif args.command == "goals":
            from footprint.cli.goals import main as goals

            _secrets()
            return goals(get_settings(), args)
        elif args.command == "backfill":
            from footprint.cli.backfill import main as backfill

            return backfill(get_settings(), args.file)
    except (SettingsError, ServerStartError) as e:
        print(f"footprint: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
