"""Latency lookup tables measured on the target device: build, check against end-to-end, export/import a bundle.

  squeezenas lut build  --space small --size 360 480 --backend openvino --out lut.json
  squeezenas lut check  --lut lut.json --samples 24 --calibrate
  squeezenas lut calibrate --lut lut.json --report check.json   # the fit of a saved check, without timing again
  squeezenas lut export --space small --size 360 480 --backend executorch --networks 12 --out bundle/
  squeezenas lut import bundle/results.json --out lut.json

Backends: eager, cuda_graph, onnxruntime, openvino, executorch. On a CPU every part is timed in 16 short
round-robin rounds (a check's networks in twice as many; the fastest call of each, --statistic min), and its figure
is the median of the rounds each divided by the machine's speed at that moment: figures that hold on a noisy
machine.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from squeezenas.cli.timing_options import (contention, contention_args, rounds_arg, statistic_arg, timing_args,
                                           timing_config)
from squeezenas.cost.timing.config import BACKENDS
from squeezenas.cost.timing.onnx import EXPORTERS

RUNTIMES = [n for n in BACKENDS.names() if BACKENDS.get(n).suffix]  # backends whose artefacts a bundle carries


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="lut_command", metavar="ACTION")
    sub.required = True

    b = sub.add_parser("build", help="time every candidate at every position and the fixed parts")
    _space_args(b)
    timing_args(b, per="part")
    b.add_argument("--context", choices=("auto", "alone", "adapter", "layout"), default="auto",
                   help="how ops are timed: alone, after an adapter whose time is subtracted, or (layout) also after "
                        "a grouped adapter, the difference kept as a pair term (auto: layout for onnxruntime, which "
                        "runs grouped convolutions in another layout; adapter for openvino and executorch, whose "
                        "layout conversions at a lone op's boundaries do not happen in a network; alone for PyTorch)")
    b.add_argument("--out", required=True, type=Path, help="table JSON (a killed build resumes from OUT.partial)")
    b.add_argument("--force", action="store_true", help="replace an OUT that holds a calibrated table")
    _measuring_args(b, "part")
    b.set_defaults(_lut=_build)

    c = sub.add_parser("check", help="predicted vs measured latency of networks spanning the table's range and the "
                                     "skip ratio: MAPE, Kendall tau, share within 5%% and 10%%, raw and calibrated")
    c.add_argument("--lut", required=True, type=Path, help="latency table JSON")
    c.add_argument("--samples", type=int, default=20, help="networks to build and time")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--calibrate", action="store_true",
                   help="store the calibration fitted on these networks in the table (the report always shows "
                        "calibrated errors, each network held out of its own fit)")
    c.add_argument("--min-run-time", type=float, default=None,
                   help="seconds of sampling per network (default: the table's)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    c.add_argument("--shuffle", action="store_true",
                   help="time the networks of each round in an order of their own (default: the same order every "
                        "round); a second check of the same seed with it tells errors that follow the order")
    _measuring_args(c, "network")
    c.set_defaults(_lut=_check)

    k = sub.add_parser("calibrate", help="store in the table the calibration fitted on a saved check report "
                                         "(lut check --out), without timing the networks again")
    k.add_argument("--lut", required=True, type=Path, help="latency table JSON (saved again with the calibration)")
    k.add_argument("--report", required=True, type=Path, help="the JSON report 'lut check --out' wrote for this table")
    k.set_defaults(_lut=_calibrate)

    e = sub.add_parser("export", help="write a bundle (ONNX, OpenVINO or ExecuTorch) to time on a device without "
                                      "squeezenas")
    _space_args(e)
    e.add_argument("--backend", choices=RUNTIMES, default="onnxruntime",
                   help="the runtime whose artefacts the bundle carries; its runner needs only that runtime and numpy")
    e.add_argument("--networks", type=int, default=12, help="whole networks to include for an on-device check")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--onnx-exporter", choices=EXPORTERS, default="dynamo")
    e.add_argument("--out", required=True, type=Path, help="bundle folder")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(_lut=_export)

    i = sub.add_parser("import", help="turn a bundle's results.json into a latency table")
    i.add_argument("results", type=Path, help="results JSON written by the bundle's run_bundle.py")
    i.add_argument("--out", required=True, type=Path, help="table JSON")
    i.add_argument("--no-calibrate", action="store_true", help="do not store the calibration fitted on the networks")
    i.add_argument("--json", action="store_true", help="print the check report of the bundle's networks as JSON")
    statistic_arg(i)
    i.set_defaults(_lut=_import)


def _space_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", required=True, help="macro-architecture name (small, large, xlarge) or YAML/JSON file")
    p.add_argument("--size", nargs=2, type=int, required=True, metavar=("H", "W"), help="deployment input size")
    p.add_argument("--num-classes", type=int, default=19, help="classes of the decoder (its cost depends on them)")


def _measuring_args(p: argparse.ArgumentParser, what: str) -> None:
    """Rounds, re-measuring under contention and the progress bar (build and check)."""
    rounds_arg(p, what, "twice the table's, else twice " if what == "network" else "")
    contention_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    return args._lut(args)


def _build(args: argparse.Namespace) -> int:
    from squeezenas.cost.lut.build import build_lut, partial_path

    if partial_path(args.out).is_file():
        print(f"resuming from {partial_path(args.out)}")
    table = build_lut(args.space, tuple(args.size), timing_config(args), num_classes=args.num_classes, out=args.out,
                      progress=not args.quiet, context=None if args.context == "auto" else args.context,
                      rounds=args.rounds, force=args.force, **contention(args))
    m = table.meta
    print(f"wrote {args.out}: {table.space} {args.size[0]}x{args.size[1]}, {len(m['entries'])} parts timed "
          f"({m['backend']} {m['device']} {m['dtype']}, {m['threads']} threads, {m['timing']['statistic']} per call, "
          f"{m.get('rounds_combined', 'of')} {m['rounds']} round{'s' if m['rounds'] > 1 else ''}) in "
          f"{m['build_seconds']:.0f} s; "
          f"fixed {table.fixed_total:.3f} ms" + _context_note(table))
    _print_contention(m["contention"], "parts")
    return 0


def _check(args: argparse.Namespace) -> int:
    from squeezenas.cost.lut.check import check_lut_file

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = check_lut_file(args.lut, args.samples, args.seed, calibrate=args.calibrate,
                                min_run_time=args.min_run_time, out=args.out, progress=not (args.quiet or args.json),
                                rounds=args.rounds, shuffle=args.shuffle, **contention(args))
    if args.json:  # the fingerprint differences are in the report ("fingerprint_differences")
        print(json.dumps(report, indent=1))
        return 0
    package = Path(__file__).resolve().parents[1]
    for w in caught:  # ours (a busy machine, another device), not the runtimes' deprecation notes
        if Path(w.filename).resolve().is_relative_to(package):
            print(f"warning: {w.message}", flush=True)
    print_report(report)
    if args.calibrate:
        c = report["calibration_fit"]
        print(f"stored calibration in {args.lut}: overhead {c['overhead_ms']:.3f} ms, scale {c['scale']:.4f}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from squeezenas.cost.lut.check import calibrate_lut_file

    figures = calibrate_lut_file(args.lut, args.report)
    c, cal = figures["calibration_fit"], figures["calibrated"]
    print(f"stored calibration in {args.lut}: measured = {c['overhead_ms']:.3f} ms + {c['scale']:.4f} x predicted, "
          f"fitted on {c['n_networks']} networks of {args.report} (held out: MAPE {cal['mape']:.2f}%, "
          f"within 5% {cal['within_5pct']:.0%})")
    return 0


def _context_note(table) -> str:
    """How much of the fixed cost is the adapter context (rows shifted below 0, docs/LATENCY.md), if any."""
    from squeezenas.cost.tables import ADAPTER_CONTEXT

    context = table.fixed.get(ADAPTER_CONTEXT)
    return "" if context is None else f" (of which {ADAPTER_CONTEXT} {context:+.3f} ms)"


def _print_contention(c: dict | None, what: str) -> None:
    if not c or c.get("mean_other_cpu") is None:
        return
    print(f"other processes used {c['mean_other_cpu']:.1%} of the CPUs on average (worst {c['worst_other_cpu']:.1%}); "
          f"{c['remeasured']} {what} measured again"
          + (f"; {len(c['still_contended'])} still above {c['max_other_cpu']:.0%}: their figures are suspect"
             if c["still_contended"] else ""))


_REMEDY = {"check": "more rounds in the check (--rounds) would tell the table's accuracy more precisely",
           "table": "a table built with more --rounds would predict better",
           "model": "more rounds on either side would change little: the rest is not round-to-round noise",
           "none": "the table predicts these networks exactly"}


def _print_error_budget(b: dict | None) -> None:
    if not b:
        return
    table = "–" if b["table_sd_pct"] is None else f"{b['table_sd_pct']:.2f}%"
    split = (f"the check's noise {b['check_sd_pct']:.2f}% and the table's {table} exceed it"
             if b["noise_exceeds_residual"] else
             f"the check's noise {b['check_sd_pct']:.2f}% + the table's {table} + the rest {b['model_sd_pct']:.2f}% "
             "(in quadrature; noise from the odd against the even rounds)")
    print(f"  error budget (SD):  held-out residual {b['residual_sd_pct']:.2f}%: {split}; {_REMEDY[b['largest']]}. "
          f"An error of that SD places {b['expected_share']:.0%} within ±{b['goal_pct']:g}%, and at least "
          f"{b['goal_share']:.0%} of the networks in {b['p_goal']:.0%} of such checks")


def print_report(report: dict) -> None:
    """Per-network rows and the summary, raw and held-out calibrated."""
    print(f"{'#':>3} {'mix':>5} {'skip':>5} {'predicted':>10} {'calib.':>10} {'measured':>10} {'IQR':>7} {'err%':>7} "
          f"{'cal.err%':>8}")
    for r in report["networks"]:
        skip = "" if r.get("skip_fraction") is None else f"{r['skip_fraction']:.2f}"
        print(f"{r['index']:>3} {r['mix_ratio']:>5.2f} {skip:>5} {r['predicted_ms']:>10.3f} "
              f"{r['calibrated_loo_ms']:>10.3f} {r['measured_ms']:>10.3f} {r['iqr_ms']:>7.3f} {r['error_pct']:>7.2f} "
              f"{r['calibrated_error_pct']:>8.2f}")
    raw, cal, fit = report["raw"], report["calibrated"], report["calibration_fit"]
    where = f"{report['space']} {report['input_size'][0]}x{report['input_size'][1]} {report['backend']}"
    print(f"{where}, {report['n']} networks (ms)")
    for label, e in (("raw sum:         ", raw), ("calibrated (LOO):", cal)):
        print(f"  {label}   MAPE {e['mape']:.2f}%  within 5% {e['within_5pct']:.0%}  within 10% "
              f"{e['within_10pct']:.0%}  max {e['max_abs_pct_error']:.2f}% ({e['max_abs_error_ms']:.3f} ms)  "
              f"bias {e['mean_signed_pct_error']:+.2f}%  Kendall tau {e['kendall_tau']:.3f}")
    if "kendall_tau_macs" in report:
        print(f"  MACs as the cost:   Kendall tau {report['kendall_tau_macs']:.3f} (ranking by GMACs, for comparison)")
    print(f"  fit on all:         measured = {fit['overhead_ms']:.3f} ms + {fit['scale']:.4f} x predicted")
    print("  (calibrated errors are held out: each network is predicted with a fit on the other networks)")
    rep = report.get("repeatability")
    if rep:
        print(f"  repeatability:      the odd and the even rounds agree within 5% for {rep['within_5pct']:.0%} and "
              f"within 10% for {rep['within_10pct']:.0%} of the networks (median gap "
              f"{rep['median_round_gap_pct']:.1f}%, max {rep['max_round_gap_pct']:.1f}%; each half has half the "
              "rounds, so a figure of all of them moves about half as much)")
        if rep["within_10pct"] < 0.95:
            print("  warning: the measurements themselves do not repeat within 5%; time on a quieter machine, with "
                  "fewer threads or more --rounds before judging the table")
    _print_error_budget(report.get("error_budget"))
    _print_contention(report.get("contention"), "networks")
    s = report.get("stored_calibration")
    if s:
        print(f"  stored calibration: MAPE {s['mape']:.2f}%  within 5% {s['within_5pct']:.0%}  "
              f"Kendall tau {s['kendall_tau']:.3f} "
              f"(overhead {s['overhead_ms']:.3f} ms, scale {s['scale']:.4f}; fitted on seed {s.get('seed')})")


def _export(args: argparse.Namespace) -> int:
    from squeezenas.cost.bundle.export import export_bundle

    manifest = export_bundle(args.space, tuple(args.size), args.out, num_classes=args.num_classes,
                             networks=args.networks, seed=args.seed, exporter=args.onnx_exporter,
                             progress=not args.quiet, backend=args.backend)
    m = json.loads(manifest.read_text())
    print(f"wrote {args.out} ({args.backend}): {len(m['parts'])} parts, {len(m['networks'])} networks; on the device run\n"
          f"  python run_bundle.py --threads N --out results.json")
    return 0


def _import(args: argparse.Namespace) -> int:
    from squeezenas.cost.bundle.export import import_results

    table, report = import_results(args.results, args.out, calibrate=not args.no_calibrate, statistic=args.statistic)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"wrote {args.out}: {table.space} {table.input_size[0]}x{table.input_size[1]}, "
          f"{len(table.meta['entries'])} parts, device {table.meta['fingerprint'].get('cpu_model')}")
    if report:
        print_report(report)
    return 0
