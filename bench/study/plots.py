"""The study's plots, readable without the JSON: reserved memory and predict p99 against the request rate per
setup, the crossover map (which setup wins where), and the replays' model-vs-measured check."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from study.sweep import FUNCTIONS, IDLE_TIMEOUTS, MODELS, SETUPS  # noqa: E402

COLOURS = {"monolith": "#444444", "monolith-hpa": "#999999", "processes": "#1f77b4", "processes+pool": "#6baed6",
           "processes+predict-pool": "#17becf", "pods": "#d62728", "pods+pool": "#fc9272",
           "pods+predict-pool": "#ff7f0e"}
MARKERS = {"monolith": "s", "monolith-hpa": "x", "processes": "o", "processes+pool": "o",
           "processes+predict-pool": "D", "pods": "^", "pods+pool": "^", "pods+predict-pool": "v"}
MAIN_TIMEOUT = 300.0


def _rate_label(rate: float) -> str:
    if rate >= 0.1:
        return f"{rate:g}/s"
    minutes = 1 / rate / 60
    return f"1 per {minutes:.0f} min" if minutes < 90 else f"1 per {minutes / 60:.0f} h"


def _by_rate(points, models, timeout):
    chosen = sorted((p for p in points if p["models"] == models and p["idle_timeout_s"] == timeout),
                    key=lambda p: p["mean_rate_per_model"])
    return [p["mean_rate_per_model"] for p in chosen], chosen


def memory_and_latency(points: list[dict], tolerance_s: float, path: Path) -> None:
    """Two rows (reserved MiB per hour of traffic; predict p99), one column per model count."""
    figure, axes = plt.subplots(2, len(MODELS), figsize=(15, 9), sharex=True)
    for column, models in enumerate(MODELS):
        rates, chosen = _by_rate(points, models, MAIN_TIMEOUT)
        for setup in SETUPS:
            style = {"color": COLOURS[setup], "marker": MARKERS[setup], "markersize": 5, "alpha": 0.9,
                     "linewidth": 2.5 if setup.startswith("mono") else 1.5,
                     "linestyle": "--" if setup == "monolith-hpa" else "-"}
            hours = [p["setups"][setup]["duration_s"] / 3600 for p in chosen]
            axes[0][column].plot(rates, [p["setups"][setup]["reserved_mib_s"] / h for p, h in zip(chosen, hours)],
                                 label=setup, **style)
            axes[1][column].plot(rates, [max(p["setups"][setup]["predict_p99_ms"], 0.1) for p in chosen],
                                 label=setup, **style)
        for timeout, dash in ((60.0, ":"), (900.0, "-.")):  # the idle timeout's reach, for processes+pool
            other_rates, other = _by_rate(points, models, timeout)
            axes[0][column].plot(other_rates, [p["setups"]["processes+pool"]["reserved_mib_s"]
                                               / (p["setups"]["processes+pool"]["duration_s"] / 3600) for p in other],
                                 color=COLOURS["processes+pool"], linestyle=dash, linewidth=1,
                                 label=f"processes+pool, idle {timeout / 60:g} min")
        limit = [p["p99_limit_ms"] for p in chosen]
        axes[1][column].plot(rates, limit, color="green", linestyle=":", label="monolith p99 + one cold start")
        axes[0][column].set_title(f"{models} model{'s' if models > 1 else ''}: reserved memory")
        axes[1][column].set_title(f"{models} model{'s' if models > 1 else ''}: predict p99")
        for row in (0, 1):
            axes[row][column].set_xscale("log")
            axes[row][column].set_yscale("log")
            axes[row][column].grid(True, which="major", alpha=0.3)
        axes[1][column].set_xlabel("mean requests/s per model (Zipf across models)")
    axes[0][0].set_ylabel("reserved MiB·s per hour of traffic (log)")
    axes[1][0].set_ylabel("predict p99, ms (log)")
    axes[0][0].legend(fontsize=7, loc="lower right")
    axes[1][0].legend(fontsize=7, loc="upper left")
    figure.suptitle(f"Modelled from this machine's measurements; idle timeout {MAIN_TIMEOUT / 60:g} min (dotted/dash-dot: "
                    f"1 and 15 min); one cold start = {tolerance_s * 1000:.0f} ms\npods lie on processes in memory (the same RSS: "
                    f"no pod RSS measured); pods' cold start from the node results")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def crossover(points: list[dict], tolerances_ms: tuple[float, float], path: Path) -> None:
    """Per idle timeout (columns) and criterion (rows: one cold start = the seed's, = this run's): models ×
    pattern, each cell coloured by the winning setup and labelled with its reserved MiB·s as a fraction of the
    always-on monolith's (where a monolith wins: the best function setup's fraction)."""
    patterns = sorted({(p["mean_rate_per_model"], p["pattern"]) for p in points}, reverse=True)
    figure, axes = plt.subplots(2, len(IDLE_TIMEOUTS), figsize=(19, 10), sharey=True, sharex=True)
    for row, (key, tolerance) in enumerate(zip(("winner", "strict_winner"), tolerances_ms)):
        for ax, timeout in zip(axes[row], IDLE_TIMEOUTS):
            for x, (rate, pattern) in enumerate(patterns):
                for y, models in enumerate(MODELS):
                    cell = next(p for p in points if p["models"] == models and p["pattern"] == pattern
                                and p["idle_timeout_s"] == timeout)
                    winner = cell[key]
                    ax.add_patch(plt.Rectangle((x, y), 1, 1, color=COLOURS[winner]))
                    ratio = cell["reserved_vs_monolith"][winner]
                    best = min(FUNCTIONS, key=lambda s: cell["reserved_vs_monolith"][s])
                    text = f"{winner.replace('+', chr(10) + '+')}\n×{ratio:.2g}" if winner in FUNCTIONS else \
                        f"{winner}\nbest fn\n×{cell['reserved_vs_monolith'][best]:.2g}"
                    ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=7,
                            color="white" if winner in ("monolith", "processes", "pods") else "black")
            ax.set_xlim(0, len(patterns))
            ax.set_ylim(0, len(MODELS))
            ax.set_xticks([x + 0.5 for x in range(len(patterns))],
                          [f"{name}\n({_rate_label(rate)})" for rate, name in patterns], rotation=60, fontsize=7,
                          ha="right")
            ax.set_yticks([y + 0.5 for y in range(len(MODELS))], [f"{m} models" for m in MODELS])
            ax.set_title(f"idle timeout {timeout / 60:g} min; one cold start = {tolerance:.0f} ms", fontsize=10)
        axes[row][0].set_ylabel("the seed's container start" if row == 0 else "this run's process cold start")
    figure.legend(handles=[Patch(color=COLOURS[s], label=s) for s in SETUPS], loc="lower center", ncol=8,
                  fontsize=9)
    figure.suptitle("Who wins each pattern: fewest reserved MiB·s among setups whose predict p99 is within one cold "
                    "start of the always-on monolith's\n×: the winner's reserved MiB·s over the monolith's (where "
                    "the monolith wins: the best function setup's); mean rate per model in brackets")
    figure.tight_layout(rect=(0, 0.04, 1, 0.94))
    figure.savefig(path, dpi=90)
    plt.close(figure)


def replays(results: list[dict], path: Path) -> None:
    """Model vs measured on the same trace: cold starts, predict p50 and p99, reserved MiB·s."""
    metrics = [("cold_starts", "cold starts"), ("predict_p50_ms", "predict p50 (ms)"),
               ("predict_p99_ms", "predict p99 (ms)"), ("reserved_mib_s", "reserved MiB·s")]
    labels = [f"{r['point']}\n{setup}" for r in results for setup in r["setups"]]
    pairs = [r["setups"][setup] for r in results for setup in r["setups"]]
    figure, axes = plt.subplots(1, len(metrics), figsize=(18, 5))
    xs = range(len(labels))
    for ax, (key, title) in zip(axes, metrics):
        ax.bar([x - 0.27 for x in xs], [p["model"][key] for p in pairs], 0.27, label="model (as swept)",
               color="#bbbbbb")
        ax.bar(list(xs), [p["model_on_cores"][key] for p in pairs], 0.27, label="model, starts share 2 cores",
               color="#777777")
        ax.bar([x + 0.27 for x in xs], [p["measured"][key] for p in pairs], 0.27, label="measured",
               color="#1f77b4")
        ax.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(title)
        if key.endswith("_ms"):
            ax.set_yscale("log")
    axes[0].legend()
    figure.suptitle("Real time-compressed replays vs the model on the same trace (this machine)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
