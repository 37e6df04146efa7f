"""One base exception for the data layer: a caller catches everything it refuses in one clause."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import audio_features
from audio_features.errors import AudioFeaturesError
from audio_features.features import REASON_MISSING_FILE, UnusableClipError
from fma_platform.errors import PlatformError, ReasonedError


def _public_exceptions() -> list[type[BaseException]]:
    found = []
    for module_info in pkgutil.iter_modules(audio_features.__path__):
        if module_info.name == "__main__":
            continue
        module = importlib.import_module(f"audio_features.{module_info.name}")
        found += [
            value for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, BaseException)
            and value.__module__ == module.__name__ and not name.startswith("_")
        ]
    return found


def test_every_public_error_derives_from_the_package_base():
    errors = _public_exceptions()
    assert {e.__name__ for e in errors} >= {
        "AudioFeaturesError", "MetadataError", "MetadataFileError", "AcquireError",
        "ChecksumMismatchError", "AudioDirError", "UnusableClipError", "CannotRun",
    }
    assert [e.__name__ for e in errors if not issubclass(e, AudioFeaturesError)] == []
    assert issubclass(AudioFeaturesError, PlatformError)


def test_an_unusable_clip_is_also_a_reasoned_value_error():
    with pytest.raises(AudioFeaturesError) as caught:
        raise UnusableClipError(REASON_MISSING_FILE, "000/000002.mp3")
    error = caught.value
    assert isinstance(error, ReasonedError) and isinstance(error, ValueError)
    assert (error.reason, error.detail) == ("missing_file", "000/000002.mp3")
    assert str(error) == "missing_file: 000/000002.mp3"
