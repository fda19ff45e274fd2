"""`thrifty router`: ``train`` builds a learned router directory from a routing dataset and
prints honest held-out (and optionally k-fold) figures; ``score`` prints a trained router's
predicted quality per model for one prompt. numpy and the router load inside ``run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thrifty.routing.learned.embedder import Embedder


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="router_command", metavar="ACTION", required=True)
    tr = sub.add_parser("train", help="train a learned router from a routing dataset",
                        description="Train per-model quality predictors on one pool of a "
                        "routing dataset (JSONL), report held-out figures, write a router "
                        "directory.")
    tr.add_argument("--data", type=Path, required=True, metavar="FILE", help="dataset JSONL")
    tr.add_argument("--prices", type=Path, required=True, metavar="FILE",
                    help="JSON {model: {input_per_mtok, output_per_mtok}}")
    tr.add_argument("--out", type=Path, required=True, metavar="DIR", help="router directory")
    tr.add_argument("--pool", choices=("zeroeval", "alpaca_eval", "auto"), default="auto",
                    help="which rows to train on (default: the largest pool)")
    tr.add_argument("--strong", metavar="M", help="strong model of a RouteLLM-style pair")
    tr.add_argument("--weak", metavar="M", help="weak model of the pair")
    tr.add_argument("--features", choices=("lexical", "embedding", "both"), default="lexical")
    tr.add_argument("--holdout", type=float, default=0.25, metavar="F",
                    help="share of rows held out for the reported figures (default 0.25)")
    tr.add_argument("--cv", type=int, default=0, metavar="K",
                    help="also report K-fold cross-validated figures (default: off)")
    tr.add_argument("--cv-seeds", type=int, default=1, metavar="N",
                    help="repeat the K-fold CV with N seeds (--seed, --seed+1, ...) and report "
                    "the mean and spread; small pools give noisy single-split figures "
                    "(default 1)")
    tr.add_argument("--seed", type=int, default=0)
    mode = tr.add_mutually_exclusive_group()
    mode.add_argument("--target-strong-share", type=float, default=0.5, metavar="S",
                      help="calibrate the strong/weak threshold to send this share to strong")
    mode.add_argument("--quality-floor", type=float, metavar="Q",
                      help="route by this fixed quality floor by default")
    tr.add_argument("--target-quality", type=float, default=0.95, metavar="F",
                    help="calibrate the floor to this fraction of the best single model's "
                    "mean quality (when --quality-floor is not given; default 0.95)")
    sc = sub.add_parser("score", help="print a trained router's predictions for a prompt")
    sc.add_argument("router", type=Path, metavar="DIR", help="router directory")
    sc.add_argument("prompt", metavar="PROMPT", help="the prompt text ('-' reads stdin)")


def run(args: argparse.Namespace) -> int:
    if args.router_command == "train":
        return _train(args)
    return _score(args)


def _train(args: argparse.Namespace) -> int:
    from thrifty.routing.learned.dataset import file_sha256, load_prices, load_rows, select_pool
    from thrifty.routing.learned.train import (
        TrainSpec,
        prepare,
        repeated_cross_validate,
        run_training,
    )

    rows = load_rows(args.data)
    prices = load_prices(args.prices)
    models, pool_rows = select_pool(rows, args.pool)
    spec = TrainSpec(features=args.features, strong=args.strong, weak=args.weak,
                     holdout=args.holdout, seed=args.seed,
                     target_strong_share=args.target_strong_share,
                     quality_floor=args.quality_floor, target_quality=args.target_quality)
    embedder = _embedder(args.features)
    print(f"pool: {len(pool_rows)} rows, {len(models)} models; features: {args.features}")
    try:
        data = prepare(pool_rows, models, prices, args.features, embedder)
        result = run_training(data, spec, embedder)
        cv = (repeated_cross_validate(data, spec, embedder, args.cv, args.cv_seeds)
              if args.cv >= 2 else None)
    except ValueError as exc:
        print(f"thrifty: {exc}", file=sys.stderr)
        return 2
    router = result.router
    router.info.update({"dataset": str(args.data), "dataset_sha256": file_sha256(args.data),
                        "pool_sources": sorted({r.source for r in pool_rows}), "cv": cv})
    router.save(args.out)
    _print_holdout(result.holdout, result.n_train, result.n_holdout)
    if cv is not None:
        _print_cv(cv)
    extra = f", threshold {router.threshold:.3f}" if router.threshold is not None else ""
    print(f"wrote {args.out} (refit on all {len(pool_rows)} rows; default mode "
          f"{router.default_mode}, floor {router.quality_floor:.3f}, lambda {router.lam:.4g}"
          f"{extra})")
    return 0


def _embedder(features: str) -> Embedder | None:
    if features == "lexical":
        return None
    from thrifty.routing.learned.embedder import MiniLMEmbedder

    return MiniLMEmbedder()


def _print_holdout(held: dict[str, Any], n_train: int, n_hold: int) -> None:
    if not held:
        print("no hold-out split (--holdout 0): figures below would be in-sample; none shown")
        return
    print(f"\nheld-out figures ({n_hold} rows; fitted on {n_train}):")
    print(f"  {'model':<34} {'MAE':>7} {'MAE(const)':>10} {'spearman':>9}")
    for m, f in held["per_model"].items():
        print(f"  {m:<34} {f['mae']:7.4f} {f['mae_const']:10.4f} {f['spearman']:9.3f}")
    pol = held["policies"]
    best = pol["best_single"]
    print(f"  best single model: {best['model']}, quality {best['mean_quality']:.4f} for "
          f"${best['total_cost']:.4f}")
    for mode in ("floor", "lambda"):
        f = pol[mode]
        single = f["single_at_cost"]
        ref = (f"best single at that cost: {single['model']} {single['mean_quality']:.4f}"
               if single else "no single model is that cheap")
        print(f"  {mode} mode ({f['value']:.4g}): quality {f['mean_quality']:.4f} for "
              f"${f['total_cost']:.4f} ({100 * f['total_cost'] / best['total_cost']:.1f}% of "
              f"best single's cost); {ref}")
    sw = held.get("strong_weak")
    if sw:
        print(f"  strong/weak {sw['strong']} / {sw['weak']}: APGR {sw['apgr']:.3f} (prompt "
              f"length {sw['apgr_prompt_length']:.3f}, oracle {sw['apgr_oracle']:.3f}, "
              "random 0.5)")
        print(f"  threshold {sw['threshold']:.3f}: {100 * sw['strong_share']:.1f}% strong, "
              f"quality {sw['mean_quality']:.4f} for ${sw['total_cost']:.4f}")


def _print_cv(cv: dict[str, Any]) -> None:
    seeds = cv["seeds"]
    over = f", mean over {seeds} seeds" if seeds > 1 else ""
    print(f"\n{cv['k']}-fold cross-validation{over}:")
    for mode in ("floor", "lambda"):
        f = cv[mode]
        print(f"  {mode} mode (pooled out-of-fold): quality {f['mean_quality']:.4f} for "
              f"${f['total_cost']:.4f}")
    if "apgr_pooled" in cv:
        spread = (f" (sd {cv['apgr_pooled_sd']:.4f}, min {cv['apgr_pooled_min']:.3f}, max "
                  f"{cv['apgr_pooled_max']:.3f})" if seeds > 1 else "")
        print(f"  APGR: pooled out-of-fold {cv['apgr_pooled']:.3f}{spread}, mean per fold "
              f"{cv['apgr_fold_mean']:.3f}")


def _score(args: argparse.Namespace) -> int:
    from thrifty.routing.learned.router import LearnedRouter

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    router = LearnedRouter.load(args.router)
    pred = router.predict(prompt)
    width = max(len(m) for m in pred)
    for m, q in sorted(pred.items(), key=lambda kv: -kv[1]):
        print(f"{m:<{width}}  {q:.4f}")
    if router.strong is not None:
        print(f"strong-win score ({router.strong} vs {router.weak}): "
              f"{router.strong_win_score(prompt):.4f}")
    return 0
