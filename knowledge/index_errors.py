"""The index's errors and file names, shared by its reader, its writer and the build pipeline."""

from __future__ import annotations

from knowledge.errors import PatientQAError

FORMAT_VERSION = 2  # 2: chunks record their page breaks
MANIFEST = "manifest.json"
REBUILD_HINT = "run 'patient-qa index build' to rebuild it"


class IndexError_(PatientQAError):
    """Base for index problems a person can fix."""


class IndexNotFoundError(IndexError_):
    """No index at the given place."""


class IndexMismatchError(IndexError_):
    """The index was built with another model, dimension or format version."""


class BuildLockedError(IndexError_):
    """Another build of the same index holds its lock."""

