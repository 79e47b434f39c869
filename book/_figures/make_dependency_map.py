"""Draw the chapter dependency map of the book's introduction: ``dependency_map.png``.

Run ``.venv/bin/python book/_figures/make_dependency_map.py`` after changing the
plan (``PARTS``) or the prerequisites (``PREREQUISITES``), and commit the PNG.
A chapter is drawn filled when its notebook exists, outlined while it is planned.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a script, not a notebook

import matplotlib.pyplot as plt
from matplotlib.colors import to_rgba
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from mlnotes.plotting import PALETTE, use_style

BOOK = Path(__file__).resolve().parent.parent
OUTPUT = Path(__file__).resolve().parent / "dependency_map.png"

#: Parts in book order: (folder, title), chapters in reading order (BOOK_MAP).
PARTS: list[tuple[str, str, list[str]]] = [
    ("basics", "1 Foundations", ["bias", "activations", "receptive_field", "upsampling", "reparameterization",
                                 "trainable_accuracy", "gradient_checkpointing", "sliding_window_max", "self_supervised"]),
    ("ensembles", "2 Ensembles", ["ensemble_learning", "random_forest", "adaboost", "gbdt"]),
    ("sequence", "3 Sequences", ["tokenizer", "word2vec", "rnn", "lstm_gru_transformer", "position_encoding", "rope",
                                 "flash_attention"]),
    ("vision", "4 Vision", ["detr", "oadtr", "kimi_vl"]),
    ("generative", "5 Generative", ["generative_modeling", "autoregressive", "vae", "vq_vae", "vqgan",
                                    "normalizing_flows", "nice"]),
    ("diffusion", "6 Diffusion", ["ddpm_ddim", "score_models", "sde", "rectified_flow", "flows_vs_diffusion", "edm",
                                  "latent_diffusion", "controlnet", "sd3"]),
    ("rl", "7 RL & alignment", ["bellman_optimality", "value_approximation", "ddpg", "dpo"]),
]

#: chapter -> chapters it builds on (only the strongest links, to keep the map readable).
PREREQUISITES: dict[str, list[str]] = {
    "activations": ["bias"],
    "trainable_accuracy": ["activations"],
    "self_supervised": ["activations"],
    "random_forest": ["ensemble_learning"],
    "adaboost": ["ensemble_learning"],
    "gbdt": ["random_forest", "adaboost"],
    "word2vec": ["tokenizer"],
    "rnn": ["word2vec"],
    "lstm_gru_transformer": ["rnn"],
    "position_encoding": ["lstm_gru_transformer"],
    "rope": ["position_encoding"],
    "flash_attention": ["lstm_gru_transformer"],
    "detr": ["lstm_gru_transformer"],
    "oadtr": ["detr"],
    "kimi_vl": ["rope", "upsampling"],
    "autoregressive": ["generative_modeling"],
    "vae": ["generative_modeling", "reparameterization"],
    "vq_vae": ["vae"],
    "vqgan": ["vq_vae", "autoregressive"],
    "normalizing_flows": ["generative_modeling"],
    "nice": ["normalizing_flows"],
    "ddpm_ddim": ["vae"],
    "score_models": ["ddpm_ddim"],
    "sde": ["score_models"],
    "rectified_flow": ["sde"],
    "flows_vs_diffusion": ["rectified_flow", "normalizing_flows"],
    "edm": ["sde"],
    "latent_diffusion": ["ddpm_ddim", "vqgan"],
    "controlnet": ["latent_diffusion"],
    "sd3": ["rectified_flow", "latent_diffusion"],
    "value_approximation": ["bellman_optimality"],
    "ddpg": ["value_approximation"],
    "dpo": ["bellman_optimality", "generative_modeling"],
}

COLUMN_WIDTH, ROW_HEIGHT, BOX_WIDTH, BOX_HEIGHT = 1.9, 0.62, 1.5, 0.46
#: One colour per part; the palette's yellow is too faint for text on white.
COLOURS = [c for c in PALETTE if c != "#F0E442"]


def draw(book: Path = BOOK) -> plt.Figure:
    """Draw the map; a chapter is 'written' when ``book/<part>/<slug>.ipynb`` exists.

    Prerequisites inside a part are arrows; those in another part are listed under
    the chapter's name (``← 1 reparameterization``), which keeps arrows from
    crossing the other columns.
    """
    use_style()
    part_of = {slug: (index, title) for index, (_, title, chapters) in enumerate(PARTS) for slug in chapters}
    rows = max(len(chapters) for _, _, chapters in PARTS)
    fig, ax = plt.subplots(figsize=(1.7 * len(PARTS), 0.55 * (rows + 1.3)))
    ax.set_axis_off()
    position: dict[str, tuple[float, float]] = {}
    for column, (folder, title, chapters) in enumerate(PARTS):
        x = column * COLUMN_WIDTH
        colour = COLOURS[column % len(COLOURS)]
        ax.text(x, 0.45, title, ha="center", va="bottom", fontsize=8.5, fontweight="bold", color=colour)
        for row, slug in enumerate(chapters):
            y = -row * ROW_HEIGHT
            position[slug] = (x, y)
            written = (book / folder / f"{slug}.ipynb").exists()
            ax.add_patch(
                FancyBboxPatch(
                    (x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2), BOX_WIDTH, BOX_HEIGHT,
                    boxstyle="round,pad=0.02,rounding_size=0.08", edgecolor=colour,
                    facecolor=to_rgba(colour, 0.35) if written else "white", linewidth=1.6 if written else 1.0, zorder=2,
                )
            )
            elsewhere = [f"← {part_of[need][0] + 1} {need.replace('_', ' ')}"
                         for need in PREREQUISITES.get(slug, []) if part_of[need][0] != column]
            ax.text(x, y + (0.07 if elsewhere else 0.0), slug.replace("_", " "), ha="center", va="center",
                    fontsize=7.2, zorder=3, color="#222222", fontweight="bold" if written else "normal")
            if elsewhere:
                ax.text(x, y - 0.12, ", ".join(elsewhere), ha="center", va="center", fontsize=5.4, zorder=3,
                        color="#555555")
    lanes: dict[float, int] = {}
    for slug, needs in PREREQUISITES.items():
        for need in needs:
            (x0, y0), (x1, y1) = position[need], position[slug]
            if x0 != x1:
                continue  # listed under the chapter's name instead
            if abs(y1 - y0) <= ROW_HEIGHT + 1e-9:  # next row: straight down
                path = MplPath([(x0, y0 - BOX_HEIGHT / 2), (x1, y1 + BOX_HEIGHT / 2)])
            else:  # further down: a bracket in the gap right of the column, one lane per arrow
                lane = lanes[x0] = lanes.get(x0, 0) + 1
                right, out = x0 + BOX_WIDTH / 2, x0 + BOX_WIDTH / 2 + 0.05 + 0.05 * lane
                path = MplPath([(right, y0), (out, y0), (out, y1), (right, y1)])
            ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=6, linewidth=0.6,
                                         color="#777777", shrinkA=0, shrinkB=0, zorder=1))
    ax.set_xlim(-COLUMN_WIDTH / 2, COLUMN_WIDTH * (len(PARTS) - 0.5))
    ax.set_ylim(-(rows - 0.3) * ROW_HEIGHT, 0.8)
    ax.text(3 * COLUMN_WIDTH, -4 * ROW_HEIGHT, "filled: written\noutlined: planned\narrow or ←: builds on",
            ha="center", va="center", fontsize=7, color="#555555", linespacing=1.6)
    return fig


if __name__ == "__main__":
    figure = draw()
    figure.savefig(OUTPUT, dpi=130)
    print(f"wrote {OUTPUT.relative_to(BOOK.parent)} ({OUTPUT.stat().st_size // 1024} KB)")
