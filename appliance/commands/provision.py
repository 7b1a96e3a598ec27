"""``checkpoint provision bundle`` and ``provision apply``: a batch of first-boot enrollment files
from an inventory, and a unit's first boot with one. Nothing here imports requests until a command
runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.commands._options import Subparsers, add_command, add_json
from appliance.errors import CheckpointError, UsageError

MAX_CODE_DAYS = 366  # the collector's limit for a code's lifetime


def code_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = 0
    if not 0 < days <= MAX_CODE_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 to {MAX_CODE_DAYS} days")
    return days


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("provision", help="provision a batch of units: bundles, first boot")
    actions = p.add_subparsers(dest="provision_command", metavar="ACTION", required=True)
    q = add_command(
        actions,
        "bundle",
        help="one first-boot enrollment file per row of an inventory CSV",
        description="For each row of the inventory (agency, door, hostname; optional "
        "checkpoint_id, notes) ask the collector's admin API for a one-time enrollment code and "
        "write OUT/<hostname>/checkpoint-provision.toml (mode 0600), plus OUT/manifest.csv "
        "without codes. The admin token comes from --token-file or $CHECKPOINT_ADMIN_TOKEN.",
    )
    q.add_argument("--inventory", required=True, metavar="CSV", help="the devices (UTF-8 CSV)")
    q.add_argument("--collector", required=True, metavar="URL", help="https://host:port")
    q.add_argument("--ca", required=True, metavar="F", help="the province CA to pin (PEM)")
    q.add_argument("--out", required=True, metavar="DIR", help="where the bundles go")
    q.add_argument(
        "--token-file",
        metavar="F",
        help="the admin token (mode 0600; else $CHECKPOINT_ADMIN_TOKEN)",
    )
    q.add_argument(
        "--expires-days",
        type=code_days,
        metavar="N",
        help="how long the codes stay valid (default: the collector's, 7 days)",
    )
    q.add_argument("--force", action="store_true", help="replace bundles already in DIR")
    add_json(q, "the summary as one JSON object")
    q.set_defaults(handler=run_bundle)
    q = add_command(
        actions,
        "apply",
        help="first boot: enroll with the boot partition's provision file, then delete it",
        description="Set the hostname, enroll with the file's one-time code and pinned CA, give "
        "the secrets to the daemon's user, and delete the file. Exit codes: 0 enrolled; 75 the "
        "collector (or the clock) is not ready, try again later; 2 a bad file or option; 77 the "
        "collector refused the code for good (make a new bundle); 1 a local failure.",
    )
    q.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="default: the first of /boot/firmware/checkpoint-provision.toml and"
        " /boot/checkpoint-provision.toml",
    )
    q.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="where the card's / is (default /): its /etc, /boot and configuration; nothing is"
        " written outside it",
    )
    q.add_argument(
        "--owner",
        metavar="USER",
        help="who gets the secrets when run as root (default: checkpoint, if that user exists)",
    )
    q.set_defaults(handler=run_apply)


def run_bundle(args: argparse.Namespace) -> int:
    from appliance.errors import InventoryError
    from appliance.provision.bundle import (
        existing_bundles,
        make_bundles,
        prepare_output,
        read_admin_token,
        read_ca,
    )
    from appliance.provision.inventory import read_inventory
    from appliance.sync.client import CollectorClient, normalise_url

    # Everything local first: the inventory, the CA, the token, the output directory and the
    # bundles already there. Only then the first code, since each one is a live secret.
    url = normalise_url(args.collector)
    out = Path(args.out)
    try:
        devices = read_inventory(Path(args.inventory))
    except InventoryError as exc:
        for line in exc.lines():
            print(f"checkpoint: {line}", file=sys.stderr)
        raise
    ca_pem = read_ca(Path(args.ca))
    token = read_admin_token(Path(args.token_file) if args.token_file else None)
    prepare_output(out)
    existing, problems = existing_bundles(devices, out, force=args.force)
    if problems:
        error = InventoryError(out, problems)
        for line in error.lines():
            print(f"checkpoint: {line}", file=sys.stderr)
        raise error
    client = CollectorClient(url, token=token, ca_file=Path(args.ca))
    try:
        summary = make_bundles(
            devices,
            client=client,
            ca_pem=ca_pem,
            out=out,
            existing=existing,
            expires_in_s=args.expires_days * 86400 if args.expires_days else None,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    finally:
        client.close()
    if args.json:
        print(json.dumps(summary.as_json(), ensure_ascii=False))
    else:
        print(
            f"{summary.count('written')} bundle(s) written, {summary.count('kept')} kept,"
            f" {summary.count('failed')} failed, of {len(devices)} device(s);"
            f" manifest: {summary.manifest}"
        )
    if summary.stopped is not None:
        made = summary.count("written")
        raise CheckpointError(
            f"stopped at {summary.stopped}; the {made} bundle(s) written before it are kept:"
            " run the same command again to go on"
        )
    if summary.count("failed"):
        raise CheckpointError(
            f"{summary.count('failed')} device(s) got no bundle (FAILED lines above; the"
            f" manifest's status column): {summary.manifest}"
        )
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from appliance.config import config_path, load_config
    from appliance.provision.apply import apply_provision_file, find_provision_file

    root = Path(args.root).absolute()
    if not root.is_dir():
        raise UsageError(f"--root {root}: not a directory")
    path = Path(args.file) if args.file else find_provision_file(root)
    # The unit's configuration, and its paths, are the card's: under --root.
    config_file, _explicit = config_path(args.config, root)
    applied = apply_provision_file(
        path,
        config_file=config_file,
        config=load_config(args.config, root=root),
        root=root,
        owner=args.owner,
    )
    enrolled = applied.enrolled
    print(f"enrolled as {enrolled.checkpoint_id} ({enrolled.agency} · {enrolled.door})")
    print(f"  hostname: {applied.hostname}")
    secrets = [p for p in (enrolled.token_file, enrolled.ca_file, enrolled.key_file) if p]
    owner = f", owner {applied.owner}" if applied.owner else ""
    print(f"  secrets (mode 0600{owner}): {', '.join(str(p) for p in secrets)}")
    print(f"  configuration updated: {config_file}")
    if not path.exists():
        print(f"  {path} deleted")
    for note in applied.notes:
        print(f"  note: {note}")
    return 0
