"""Search an architecture: train the supernet's weights and θ together on the task with a MAC or latency cost.

Values come from the defaults, then --config search.yaml, then the options given here. --resume continues the
search in --out (its saved config supplies every option not given again). At the end --out holds genotype.json
(the most probable architecture), theta.json and theta_heatmap.png; then run `squeezenas sample --search OUT`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from squeezenas.cli.common import data_args, overrides_from
from squeezenas.search.config import COSTS, TARGET_MODES, SearchConfig
from squeezenas.utils.config import ConfigError, check_keys, from_dict, load_mapping


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.argument_default = argparse.SUPPRESS  # only options actually given override the config file / saved run
    p.add_argument("--config", default=None, help="YAML/JSON file of SearchConfig fields (unknown keys are errors)")
    p.add_argument("--space", help="small, large, xlarge or a macro-architecture YAML/JSON file (default small)")
    data_args(p, "camvid, cityscapes, folder or synthetic (default synthetic)")
    p.add_argument("--limit-train", type=int, help="use only the first N training samples")
    p.add_argument("--out", help="run folder (default runs/search)")
    p.add_argument("--cost", choices=COSTS, help="mac (GMACs, computed) or latency (ms, from --lut); default mac")
    p.add_argument("--lut", help="latency lookup table (squeezenas lut build); its resolution is the deployment size")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="deployment resolution of the cost (default: the LUT's, else the crop)")
    p.add_argument("--alpha", type=float, help="cost weight per mean-network cost (default 0.5; 0 with a target)")
    p.add_argument("--alpha-raw", type=float, help="cost weight per GMAC or per ms (overrides --alpha)")
    p.add_argument("--target-latency", type=float, metavar="MS", help="hold the expected latency at MS (--cost latency)")
    p.add_argument("--target-gmacs", type=float, metavar="G", help="hold the expected GMACs at G (--cost mac)")
    p.add_argument("--target-mode", choices=TARGET_MODES, help="equal (default): reach the target; max: stay below it")
    p.add_argument("--target-ramp", type=float, help="fraction of the θ-steps to move to the target (default 0.3)")
    p.add_argument("--epochs", type=int, help="epochs of the search, warm-up included (default 10)")
    p.add_argument("--warmup-epochs", type=int, help="first epochs train the weights only, θ frozen (default 0)")
    p.add_argument("--steps-per-epoch", type=int, help="cap the steps of an epoch (smoke runs)")
    p.add_argument("--batch-size", type=int, help="default 8")
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="training crop (default 512 1024)")
    p.add_argument("--scale", type=float, nargs=2, metavar=("LOW", "HIGH"), help="random rescaling (default 0.5 2.0)")
    p.add_argument("--workers", type=int, help="DataLoader workers (default 4)")
    p.add_argument("--lr", type=float, help="weights' SGD lr (default 0.05 · batch / 16, cosine to 0)")
    p.add_argument("--momentum", type=float, help="default 0.9")
    p.add_argument("--weight-decay", type=float, help="default 1e-5")
    p.add_argument("--theta-lr", type=float, help="θ's Adam lr (default 0.01)")
    p.add_argument("--temperature-start", type=float, help="Gumbel-softmax temperature at the start (default 5.0)")
    p.add_argument("--temperature-end", type=float, help="... at the end (default 1.0), exponential in between")
    p.add_argument("--alternate", action=argparse.BooleanOptionalAction,
                   help="FBNet-style: weights on the training part, θ on a held-out part, alternately")
    p.add_argument("--holdout", type=float, help="held-out fraction for θ with --alternate (default 0.2)")
    p.add_argument("--prune-threshold", type=float, help="remove candidates below this probability (default 0.005; 0 never)")
    p.add_argument("--prune-every", type=int, help="check every N steps (default 0: after every epoch)")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, help="fused supernet mixture (default on)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="NHWC supernet and batches (default on; CPU depthwise convs run 5-10x faster)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--log-every", type=int, help="TensorBoard scalars every N steps (default 10)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, help="tqdm progress bars (default on)")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, help="TensorBoard logs in out/tb (default on)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out from checkpoint.pt")
    p.add_argument("--stop-after", type=int, metavar="N", help="end after N epochs of this call (resume later)")


def resolve_search_config(args: argparse.Namespace) -> SearchConfig:
    """Defaults ← --config ← (on --resume) the run's saved config.json ← the options given."""
    given = overrides_from(args, skip=("resume", "stop_after"))
    lat, gmacs = given.pop("target_latency", None), given.pop("target_gmacs", None)
    if lat is not None and gmacs is not None:
        raise ConfigError("give either --target-latency or --target-gmacs, not both")
    if lat is not None or gmacs is not None:
        kind = "latency" if lat is not None else "mac"
        if given.setdefault("cost", kind) != kind:
            raise ConfigError(f"--target-{'latency' if lat is not None else 'gmacs'} needs --cost {kind}")
        given["target"] = lat if lat is not None else gmacs
    base = load_mapping(args.config) if getattr(args, "config", None) else {}
    check_keys(SearchConfig, base, where=str(getattr(args, "config", "config")))
    if getattr(args, "resume", False):
        out = Path(given.get("out") or base.get("out") or SearchConfig.out)
        saved = out / "config.json"
        if saved.is_file():
            base = {**json.loads(saved.read_text())}
    return from_dict(SearchConfig, {**base, **given}, where="search config")


def run(args: argparse.Namespace) -> int:
    from squeezenas.cost.tables import CostTable
    from squeezenas.data import dataset_info
    from squeezenas.search.search import build_cost_table, search

    cfg = resolve_search_config(args)
    resume = getattr(args, "resume", False)
    saved_table = Path(cfg.out) / "cost_table.json"
    if resume and saved_table.is_file():
        table = CostTable.load(saved_table)  # the table the search started with, even if the LUT file changed
    else:
        table = build_cost_table(cfg, dataset_info(cfg.dataset, cfg.data_root).num_classes)
    r = search(cfg, table, resume=resume, stop_after=getattr(args, "stop_after", None))
    state = "finished" if r.finished else f"stopped after epoch {r.epochs}/{cfg.epochs} (continue with --resume)"
    print(f"search {state} in {r.seconds:.1f} s: most probable architecture {r.predicted_cost:.4g} {r.unit}, "
          f"expected {r.expected_cost:.4g} {r.unit}"
          + (f" (target {r.target:g})" if r.target is not None else "")
          + f", {len(r.pruned)} candidates pruned")
    if r.finished:
        print(f"wrote {r.out / 'genotype.json'}, {r.out / 'theta_heatmap.png'}; next: squeezenas sample --search {r.out}")
    return 0
