"""``vaekit export``, ``vaekit serve`` and ``vaekit explore``: use a trained model elsewhere.

    vaekit export runs/digits --format onnx --out model/     # ONNX graphs + MODEL_CARD.md
    vaekit serve runs/digits --host 127.0.0.1 --port 8000    # HTTP JSON service, OpenAPI at /docs
    vaekit explore runs/digits                               # the same service, opened at /explore
"""

from __future__ import annotations

import argparse
import socket
import threading
import webbrowser


def run_export(args) -> int:
    from vaekit.serve.export import FORMATS, export
    from vaekit.serve.loading import open_model, with_data

    if args.format not in FORMATS:
        raise ValueError(f"Unknown --format {args.format!r}; choose one of {', '.join(FORMATS)}.")
    served = open_model(args.run_dir)
    if args.data:
        with_data(served, args.data)
    out = export(served, args.out, format=args.format, overwrite=args.overwrite)
    files = sorted(p.name for p in out.iterdir())
    print(f"exported {served.name} to {out}/: {', '.join(files)} (each graph checked against torch with onnxruntime)")
    return 0


def check_port(host: str, port: int) -> None:
    """A clear sentence instead of uvicorn's exit when the address is taken or invalid."""
    if not 0 < port < 65536:
        raise ValueError(f"--port {port} is not a port number; use one between 1 and 65535.")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise ValueError(f"Cannot listen on {host}:{port} ({e.strerror}); choose another --port or --host.") from None


def serve(args, *, open_page: bool) -> int:
    import uvicorn

    from vaekit.serve.loading import open_model, with_data
    from vaekit.serve.service import create_app

    check_port(args.host, args.port)
    served = open_model(args.run_dir)
    app_routes = served.application in ("recommender", "molecules")
    if open_page and app_routes:
        raise ValueError(f"The latent explorer draws images and table rows, not a {served.source}'s requests; use "
                         "vaekit serve and its /docs page instead.")
    if args.data:
        with_data(served, args.data)
    app = create_app(served, explore=not getattr(args, "no_explore", False))
    url = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{args.port}"
    where = f"API {url}/docs" + ("" if app_routes or getattr(args, "no_explore", False) else f"   explorer {url}/explore")
    print(f"serving {served.name}\n  {where}   (Ctrl+C stops)")
    if open_page and not args.no_browser:
        threading.Timer(1.5, webbrowser.open, [f"{url}/explore"]).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def add_serving_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or a saved model/estimator directory")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--data", metavar="DATA", help="rows for the explorer's map (default: the run's test rows)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))


def add_commands(subparsers) -> None:
    """Register ``export``, ``serve`` and ``explore`` on an argparse subparsers object."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("export", help="Export a trained model as ONNX graphs with a model card.",
                              description="Export the encoder, the decoder and the scoring function as separate "
                                          "ONNX graphs (dynamic batch axis, noise as an input) and write MODEL_CARD.md. "
                                          "A MoleculeVAE: the encoder and one decoding step (with the greedy loop in "
                                          "the card); a Recommender: its scoring function.",
                              epilog="examples:\n  vaekit export runs/digits --format onnx --out model/\n"
                                     "  vaekit export detector/ --out detector_onnx/ --format pt2",
                              formatter_class=fmt)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or a saved model/estimator directory")
    p.add_argument("--format", default="onnx", help="onnx (default), or pt2: ONNX plus torch.export programs")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the graphs and the model card")
    p.add_argument("--data", metavar="DATA", help="real rows to check the graphs on (default: the run's test rows)")
    p.add_argument("--overwrite", action="store_true", help="replace an export already in --out")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser("serve", help="Serve a trained model over HTTP (JSON; OpenAPI at /docs).",
                              description="An HTTP JSON service: /encode /decode /sample /reconstruct /score "
                                          "(log p(x) in nats), /classify for semi-supervised classifiers, /detect "
                                          "for detectors, /health, and /explore; "
                                          "a Recommender: /recommend /encode /score of click histories; a "
                                          "MoleculeVAE: /molecules/sample /encode /decode /score of SMILES.",
                              epilog="examples:\n  vaekit serve runs/digits --port 8000\n"
                                     "  vaekit serve recommender/ --port 8001   # POST /recommend "
                                     "{\"histories\": [[1, 5]], \"n\": 10}\n"
                                     "  curl -s localhost:8000/sample -H 'content-type: application/json' "
                                     "-d '{\"n\": 2, \"seed\": 0}'",
                              formatter_class=fmt)
    add_serving_options(p)
    p.add_argument("--no-explore", action="store_true", help="leave out the /explore page")
    p.set_defaults(func=lambda args: serve(args, open_page=False))

    p = subparsers.add_parser("explore", help="Explore the latent space in the browser.",
                              description="Serve the model and open the latent explorer: sliders per latent "
                                          "dimension, a map of encoded data, reconstructions and interpolation.",
                              epilog="examples:\n  vaekit explore runs/digits\n  vaekit explore runs/tab --port 8001 --no-browser",
                              formatter_class=fmt)
    add_serving_options(p)
    p.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    p.set_defaults(func=lambda args: serve(args, open_page=True))


def main(argv=None) -> int:
    """Stand-alone entry point (``python -m vaekit.serve.cli serve RUN_DIR``) until ``vaekit.cli`` lists it."""
    import sys

    parser = argparse.ArgumentParser(prog="vaekit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
