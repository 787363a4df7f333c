"""The prior over COMPASS latents: uniform on the box [LATENT_LOW, LATENT_HIGH]^d.

Training draws its candidate latents from it and search draws or repairs into it, so both live
here, below training and search.
"""

from __future__ import annotations

import jax

from ceiling.policies.networks import LATENT_HIGH, LATENT_LOW


def sample_prior(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Latents of `shape` (e.g. [N, d]) drawn uniformly from the prior's box."""
    return jax.random.uniform(key, shape, minval=LATENT_LOW, maxval=LATENT_HIGH)


def clip_to_prior(latents: jax.Array) -> jax.Array:
    """The nearest points of the prior's box."""
    return jax.numpy.clip(latents, LATENT_LOW, LATENT_HIGH)
