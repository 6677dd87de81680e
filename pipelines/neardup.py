"""Near-duplicate lookup: which stored postings are reposts of this one.

Why bands: two 64-bit SimHashes within Hamming distance 3 agree exactly on at least one of four
16-bit bands (pigeonhole), so candidates come from an indexed equality lookup per band and only those
few are compared; the cost does not grow with the number of stored postings.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.models import Posting, PostingBand
from pipelines.fingerprint import hamming

__all__ = ["BANDS", "MAX_DISTANCE", "add_bands", "band_values", "near_duplicates"]

BANDS = 4
MAX_DISTANCE = 3


def band_values(simhash: int) -> list[tuple[int, int]]:
    unsigned = simhash & ((1 << 64) - 1)
    return [(band, (unsigned >> (16 * band)) & 0xFFFF) for band in range(BANDS)]


def add_bands(sess: Session, posting_id: int, simhash: int | None) -> None:
    if simhash is None:
        return
    for band, value in band_values(simhash):
        sess.add(PostingBand(posting_id=posting_id, band=band, value=value))


def near_duplicates(
    sess: Session, simhash: int | None, content_hash: str, *, exclude: int | None = None
) -> list[int]:
    """Ids of stored postings with the same text or a SimHash within MAX_DISTANCE, oldest first."""
    found: set[int] = set(sess.scalars(select(Posting.id).where(Posting.content_hash == content_hash)))
    if simhash is not None:
        clause = or_(*(and_(PostingBand.band == b, PostingBand.value == v) for b, v in band_values(simhash)))
        rows = sess.execute(
            select(Posting.id, Posting.simhash)
            .join(PostingBand, PostingBand.posting_id == Posting.id)
            .where(clause)
            .distinct()
            .limit(5000)
        ).all()
        found.update(
            pid for pid, other in rows if other is not None and hamming(simhash, other) <= MAX_DISTANCE
        )
    found.discard(exclude or -1)
    return sorted(found)
