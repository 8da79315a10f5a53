"""Command line: ``python -m lib {build,run,doctor,fetch,profiles}``.

Examples::

    python -m lib build                          # the demo book -> _build/html/index.html
    python -m lib build --profile tiny -p n_images=6
    python -m lib build --cluster local            # heavy steps on a Dask LocalCluster
    python -m lib run saliency -p models='["resnet50"]' -p n_images=20
    python -m lib doctor --profile paper
    python -m lib fetch coco-nsd --profile paper
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lib.config import DEFAULT_PROFILE, SCHEMA, ConfigError, load_profile, parse_overrides, profile_names


def _add_profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"params/<profile>.yaml (default {DEFAULT_PROFILE})")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter; VALUE is YAML (e.g. -p models='[\"resnet50\"]')")


def _add_cluster_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default=None, metavar="local|tcp://HOST:8786",
                   help="run the heavy steps on Dask: 'local' starts a LocalCluster for the whole run, an "
                        "address uses a running scheduler (workers must share cache_dir); default: in process")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="execute every chapter (papermill) and render the book (jupyter-book)")
    _add_profile_args(b)
    b.add_argument("--out", type=Path, default=None, help="build folder (default _build)")
    _add_cluster_arg(b)

    r = sub.add_parser("run", help="execute one chapter and print where the executed notebook is")
    r.add_argument("chapter", help="chapter stem or short name, e.g. 02_saliency or saliency")
    _add_profile_args(r)
    r.add_argument("--out", type=Path, default=None, help="executed notebook path")
    _add_cluster_arg(r)

    d = sub.add_parser("doctor", help="check every input a profile needs and say how to get what is missing")
    _add_profile_args(d)

    f = sub.add_parser("fetch", help="download data or weights a profile needs")
    f.add_argument("what", help="what to fetch (see `python -m lib fetch list`)")
    _add_profile_args(f)
    f.add_argument("--models", nargs="*", default=None, help="fetch weights: these models (default: the profile's)")

    sub.add_parser("profiles", help="list profiles and parameters")
    return parser


def _cmd_build(args) -> int:
    from lib.build import BUILD_DIR, build
    from lib.executor import serve

    overrides = parse_overrides(args.param)
    with serve(args.cluster) as address:
        build(args.profile, overrides | ({"cluster": address} if address else {}), out=args.out or BUILD_DIR)
    return 0


def _cmd_run(args) -> int:
    from lib.build import BUILD_DIR, execute_chapter, find_chapter, preflight, start_run
    from lib.executor import serve

    overrides = parse_overrides(args.param)
    params = load_profile(args.profile, overrides)  # bad parameters fail before a cluster starts
    chapter = find_chapter(args.chapter)
    out = args.out or BUILD_DIR / "runs" / f"{chapter.stem}-{args.profile}.ipynb"
    preflight(params, out.parent)
    run_dir = out.with_suffix(".run")
    with serve(args.cluster) as address:
        overrides = overrides | ({"cluster": address} if address else {})
        params = load_profile(args.profile, overrides)
        start_run(run_dir, params, overrides)
        print(f"run: {chapter.stem} with profile {args.profile!r} ...", flush=True)
        seconds = execute_chapter(chapter, params, out, run_dir)
    print(f"run: done in {seconds:.1f} s -> {out}")
    return 0


def _cmd_doctor(args) -> int:
    from lib.doctor import format_report, run_checks

    params = load_profile(args.profile, parse_overrides(args.param))
    checks = run_checks(params)
    print(format_report(checks, args.profile))
    return 0 if all(c.ok for c in checks) else 1


def _cmd_fetch(args) -> int:
    from lib.doctor import FETCHERS, load_plugins

    load_plugins()
    if args.what == "list" or args.what not in FETCHERS:
        listing = "\n".join(f"  {name}: {help}" for name, (_, help) in sorted(FETCHERS.items()))
        if args.what != "list":
            print(f"unknown fetch target {args.what!r}; choose one of:\n{listing}", file=sys.stderr)
            return 2
        print(listing)
        return 0
    params = load_profile(args.profile, parse_overrides(args.param))
    fn, _ = FETCHERS[args.what]
    options = {"models": args.models} if args.models is not None else {}
    fn(params, **options)
    return 0


def _cmd_profiles(args) -> int:
    print("profiles:", ", ".join(profile_names()))
    for name, p in SCHEMA.items():
        choices = f" {list(p.choices)}" if p.choices else ""
        print(f"  {name}: {p.help}{choices}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"build": _cmd_build, "run": _cmd_run, "doctor": _cmd_doctor,
               "fetch": _cmd_fetch, "profiles": _cmd_profiles}[args.command]
    try:
        return handler(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a build's chapter loop (e.g. `run`): one line, no traceback
        print(f"\n{args.command}: interrupted. Rerun the same command to resume: finished work is cached.",
              file=sys.stderr)
        return 130
    except Exception as err:  # BuildError and user-facing errors from lib: no deep traceback
        from lib.build import BuildError, BuildInterrupted

        if isinstance(err, BuildInterrupted):
            print(f"{args.command}: {err}", file=sys.stderr)
            return 130
        if isinstance(err, (BuildError, FileNotFoundError, ValueError)):
            print(f"error: {err}", file=sys.stderr)
            return 1
        if isinstance(err, OSError) and err.filename:  # e.g. a folder made read-only during the build
            print(f"error: cannot use {err.filename}: {err.strerror}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
