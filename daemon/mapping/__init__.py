"""The YAML mapping language: what each emotion sounds like and which parts play it.

A mapping file is read into frozen dataclasses (:mod:`.model`) and checked completely before
anything plays (:mod:`.parse`): a bad file raises :class:`MappingError` with one line that names
the file, the key path and what is allowed there. Every key, with its limits, is declared once
in :mod:`.keys`, which the checks and :mod:`.describe` (a mapping written back as YAML) walk.
Files and presets are found and watched for hot reload in :mod:`.files`. The keys are
documented for users in ``mappings/default.yaml``.
"""

from .describe import describe_mapping
from .files import (MAX_FILE_BYTES, PRESET_NAME, MappingWatcher, list_presets, load_mapping, mapping_path,
                    preset_is_faithful, presets_dir)
from .model import (BLENDS, CC_SOURCES, CHANGE_AT, CURVES, DEFAULT_SOURCE, PART_NAMES, RHYTHMS, ControlSpec,
                    EmotionStyle, FacesConfig, Humanize, Mapping, PartConfig, Transition)
from .parse import default_mapping_text, parse_mapping

__all__ = [
    "BLENDS", "CC_SOURCES", "CHANGE_AT", "CURVES", "DEFAULT_SOURCE", "MAX_FILE_BYTES", "PART_NAMES", "PRESET_NAME",
    "RHYTHMS", "ControlSpec", "EmotionStyle", "FacesConfig", "Humanize", "Mapping", "MappingWatcher", "PartConfig",
    "Transition", "default_mapping_text", "describe_mapping", "list_presets", "load_mapping", "mapping_path",
    "parse_mapping", "preset_is_faithful", "presets_dir",
]
