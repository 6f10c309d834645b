"""Job entry points for ``ray job submit --working-dir . -- python -m engram.jobs build <tenant>``.

Each prints its report as one JSON line, for the job log.
"""

from __future__ import annotations

import argparse
import json
import logging

from cluster import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engram.jobs")
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="run the memory pipeline for tenants")
    build_cmd.add_argument("tenants", nargs="+", help="tenant ids")
    build_cmd.add_argument("--config", help="YAML settings file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from memory import build

    settings = load_settings(args.config)
    for tenant in args.tenants:
        print(json.dumps(build(tenant, settings).__dict__), flush=True)


if __name__ == "__main__":
    main()
