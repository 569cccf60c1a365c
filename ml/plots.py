"""Small backtest charts as Markdown images (base64 PNG), which the Dagster UI renders inline."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display: render to memory only
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _markdown_image(fig, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def calibration_plot(calibration: pd.DataFrame) -> str:
    """Predicted vs observed churn rate per probability bin on the newest holdout."""
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.plot(calibration["predicted"], calibration["observed"], marker="o", label="champion")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return _markdown_image(fig, "calibration")


def backtest_plot(backtest: pd.DataFrame) -> str:
    """Mean holdout AUC and top-decile lift per candidate model."""
    fig, (auc, lift) = plt.subplots(1, 2, figsize=(7, 3))
    auc.barh(backtest["model"], backtest["auc"])
    auc.set_xlim(0.5, 1)
    auc.set_title("holdout AUC")
    lift.barh(backtest["model"], backtest["top_decile_lift"])
    lift.set_title("top-decile lift")
    lift.set_yticks([])
    return _markdown_image(fig, "backtest")
