"""The synthetic FMA-shaped sample: made-up metadata and synthesised audio in FMA's layout.

The platform's default dataset when FMA's archives are not at hand. Everything in it is
labelled synthetic. ``python -m fma_sample --out DIR --tracks N --seed S`` writes one.

- :mod:`fma_sample.synth`: building blocks of the synthesised music;
- :mod:`fma_sample.recipes`: one recipe per top-level FMA genre, :func:`~fma_sample.recipes.synthesize_clip`;
- :mod:`fma_sample.tracks`: the made-up tracks and genre tables;
- :mod:`fma_sample.sample`: writes the folder (tables, clips, planted broken files, manifest);
- :mod:`fma_sample.cli`: the command line.

Layering: this package may import ``audio_features`` (FMA's formats and writers) and
``fma_platform``; ``audio_features`` never imports it.
"""

# Part of every sample's parameters: a new version invalidates clips written by an older one.
GENERATOR_VERSION = "1.0.0"
