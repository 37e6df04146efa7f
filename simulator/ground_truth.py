"""What simulated listeners' tastes are made of: the ground truth a recommender is scored against.

A listener's affinity for a track (``simulator.behaviour``) and the pull of its picks use the
cosine between the listener's taste vector and a per-track vector: the **taste space**. Two
setups, chosen per run (``simulate(..., ground_truth=...)``, ``python -m simulator run
--ground-truth``):

``embedding`` (the default, as before)
    The taste space is the catalogue's audio **embedding**, the very vectors the content and
    hybrid recommenders rank with. Recommenders see: the events, track genres, the
    embeddings, the catalogue's listens/favourites. Nothing of the taste space is hidden
    from them, so content/hybrid scores partly measure the simulator's own formula
    (circular): use it to check that a recommender *can* recover a planted audio taste.

``latent``
    The taste space is ``LATENT_DIMS`` **latent track attributes** drawn for the simulation
    from a generator seeded by the run's seed (:func:`latent_attributes`). Each is
    ``LATENT_GENRE_SHARE`` of its variance a per-genre centre and the rest noise of its
    own, so genre still carries realistic signal; they are independent of the embeddings.
    They live only in the simulator's memory: never written to MongoDB, Kafka or a file
    (the saved listeners carry their taste *direction* in that space, labelled
    ``taste_space: "latent"``, not the tracks' attributes). Recommenders see the same
    inputs as above (events, genres, embeddings, listens/favourites) and nothing of the
    attributes except through the events the attributes shaped; the embeddings play no
    part in any listener's choice.

In both setups genre preferences, popularity bias and the favourites-per-listen quality
score act the same way.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from simulator.catalogue import UNKNOWN_GENRE, CatalogueArrays
from simulator.errors import SimulationParameterError

LATENT_DIMS = 16
# Share of each attribute vector's variance that is its genre's centre (0: independent of
# genre, 1: all tracks of a genre alike). 0.5: a listener's favourite genres predict much,
# not all, of what it likes, as with the clustered synthetic embeddings.
LATENT_GENRE_SHARE = 0.5
_LATENT_STREAM = 2  # generator stream of the attributes ([seed, 2]); 0 and 1 are listeners and plays


class GroundTruth(StrEnum):
    """Which per-track vectors listeners' tastes are defined over (module doc)."""

    EMBEDDING = "embedding"
    LATENT = "latent"


def parse_ground_truth(value: str | GroundTruth) -> GroundTruth:
    """``value`` as a ``GroundTruth``; anything else raises ``SimulationParameterError``."""
    try:
        return GroundTruth(value)
    except ValueError:
        raise SimulationParameterError(
            f"ground truth must be one of {[g.value for g in GroundTruth]}, got {value!r}") from None


def latent_attributes(catalogue: CatalogueArrays, *, seed: int, dims: int = LATENT_DIMS,
                      genre_share: float = LATENT_GENRE_SHARE) -> np.ndarray:
    """Unit latent attribute rows ``(n_tracks, dims)`` aligned to ``catalogue``, from ``seed``.

    ``sqrt(genre_share)`` x the track's genre centre + ``sqrt(1 - genre_share)`` x its own
    noise (both unit on average), normalised; a track without a top-level genre is noise
    only. Drawn in track-id order, so a track's attributes do not depend on the catalogue's
    row order. Same catalogue and seed, same attributes.
    """
    if dims < 1:
        raise SimulationParameterError(f"latent dims must be at least 1, got {dims}")
    if not 0.0 <= genre_share <= 1.0:
        raise SimulationParameterError(f"latent genre share must be in [0, 1], got {genre_share}")
    rng = np.random.default_rng([seed, _LATENT_STREAM])
    centres = rng.normal(size=(len(catalogue.genre_ids), dims))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = np.empty((catalogue.size, dims))
    noise[np.argsort(catalogue.track_ids, kind="stable")] = rng.normal(0.0, 1.0 / np.sqrt(dims),
                                                                       size=(catalogue.size, dims))
    known = catalogue.genre_codes != UNKNOWN_GENRE
    genre_part = np.zeros((catalogue.size, dims))
    genre_part[known] = centres[catalogue.genre_codes[known]]
    attributes = np.sqrt(genre_share) * genre_part + np.sqrt(1.0 - genre_share) * noise
    return attributes / np.maximum(np.linalg.norm(attributes, axis=1, keepdims=True), 1e-12)


def taste_space(catalogue: CatalogueArrays, ground_truth: GroundTruth, *, seed: int) -> np.ndarray | None:
    """The per-track vectors tastes are defined over: the embeddings (None without any) or latent attributes."""
    if parse_ground_truth(ground_truth) is GroundTruth.EMBEDDING:
        return catalogue.embeddings
    return latent_attributes(catalogue, seed=seed)
