"""Policy reuse (Lever): answer a new objective offline from a library of trained policies.

GridWorlds with vector rewards (`gridworld`), tabular Q-learning (`qlearning`), exact successor
features and embeddings (`successor`), the library on disk (`library`), a FAISS index over it
(`retrieval`), offline composition and coverage (`compose`), and the comparison with training
from scratch (`bench`). Nothing here knows about `ceiling.search`.
"""

from ceiling.reuse.compose import METHODS, SELECTIONS, Composition, Coverage, compose, coverage
from ceiling.reuse.gridworld import GRID_SIZES, Layout, generate_layout, transition_tables
from ceiling.reuse.library import Library, build_library, load_library
from ceiling.reuse.objectives import COMPONENTS, COMPOSITES, weights_of

__all__ = [
    "COMPONENTS",
    "COMPOSITES",
    "GRID_SIZES",
    "METHODS",
    "SELECTIONS",
    "Composition",
    "Coverage",
    "Layout",
    "Library",
    "build_library",
    "compose",
    "coverage",
    "generate_layout",
    "load_library",
    "transition_tables",
    "weights_of",
]
