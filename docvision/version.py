"""The version of docvision and of its record schema (kept apart so that any module may import them)."""

__version__ = "0.1.0"
SCHEMA_VERSION = 2  # docs/records.md; CHANGELOG.md says what each version changed
