"""BIO tags: validation, and repair of an `I-` tag that opens an entity to `B-` (counted, one warning per source)."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class BioRepairs:
    """Counts I- tags repaired to B- in one source, and logs one summary for it."""

    def __init__(self, source: str):
        self.source = source
        self.count = 0
        self.first_places: list[str] = []

    def check(self, tags: list[str], where: Callable[[int], str]) -> list[str]:
        """Validate BIO tags (`where(position)` names a tag's place); an `I-X` after `O` or another type -> `B-X`."""
        repaired = []
        previous_type = None
        for position, tag in enumerate(tags):
            if tag == "O":
                previous_type = None
            elif tag[:2] in ("B-", "I-") and len(tag) > 2:
                entity_type = tag[2:]
                if tag.startswith("I-") and entity_type != previous_type:
                    tag = "B-" + entity_type
                    self.count += 1
                    if len(self.first_places) < 3:
                        self.first_places.append(where(position))
                previous_type = entity_type
            else:
                raise ValueError(
                    f"{where(position)}: tag {tag!r} is not BIO; use 'O', 'B-<type>' or 'I-<type>' "
                    "(convert IOBES/IOB1 first)."
                )
            repaired.append(tag)
        return repaired

    def report(self) -> None:
        if self.count:
            logger.warning(
                "%s: repaired %d I- tags that followed O or another entity type to B- (first: %s).",
                self.source,
                self.count,
                "; ".join(self.first_places),
            )
