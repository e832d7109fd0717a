"""The run folder's records: ``manifest.json`` (inputs, config, timings per stage) and the headline counts.

- :mod:`pipeline.runs.manifest`: stage records merged into ``manifest.json``.
- :mod:`pipeline.runs.night_folder`: a night's folder: one versioned run folder per run, the night's outputs
  published atomically when a run succeeds.
- :mod:`pipeline.runs.summary`: inputs, ingested, rejected, scored: the rows a nightly run publishes.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "MANIFEST_NAME": "manifest",
    "file_record": "manifest",
    "input_records": "manifest",
    "json_safe": "manifest",
    "read_manifest": "manifest",
    "record_stage": "manifest",
    "stage_record": "manifest",
    "utc_timestamp": "manifest",
    "NightFolder": "night_folder",
    "NightLocked": "night_folder",
    "PUBLISHED": "night_folder",
    "run_name": "night_folder",
    "catalog_counts": "summary",
    "headline_metrics": "summary",
    "summary_markdown": "summary",
    "summary_rows": "summary",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
