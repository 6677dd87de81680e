"""Near-duplicate lookup: which stored postings are reposts of this one.

Why bands: two 64-bit SimHashes within Hamming distance 3 agree exactly on at least one of four
16-bit bands (pigeonhole), so candidates come from an indexed equality lookup per band and only those
few are compared; the cost does not grow with the number of stored postings.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, insert, literal, or_, select, union
from sqlalchemy.orm import Session

from core.models import Posting, PostingBand
from pipelines.fastsql import Prepared
from pipelines.fingerprint import hamming

__all__ = ["BANDS", "MAX_DISTANCE", "add_bands", "band_values", "near_duplicates"]

BANDS = 4
MAX_DISTANCE = 3


def band_values(simhash: int) -> list[tuple[int, int]]:
    unsigned = simhash & ((1 << 64) - 1)
    return [(band, (unsigned >> (16 * band)) & 0xFFFF) for band in range(BANDS)]


_INSERT_BANDS = Prepared(insert(PostingBand), ("posting_id", "band", "value"))


def add_bands(sess: Session, posting_id: int, simhash: int | None) -> None:
    if simhash is None:
        return
    # one executemany statement, not four ORM objects through the unit of work (a crawl stores thousands)
    _INSERT_BANDS.executemany(
        sess.connection(),
        [{"posting_id": posting_id, "band": band, "value": value} for band, value in band_values(simhash)],
    )


# Built once (see pipelines.store): the same-text postings and the band candidates in one UNION, the
# same-text ones marked so they count whatever their SimHash.
_SAME_TEXT = select(Posting.id, Posting.simhash, literal(1).label("same")).where(
    Posting.content_hash == bindparam("content_hash")
)
_SAME_TEXT_FAST = Prepared(_SAME_TEXT)
_NEAR = Prepared(
    union(
        _SAME_TEXT,
        select(Posting.id, Posting.simhash, literal(0).label("same"))
        .join(PostingBand, PostingBand.posting_id == Posting.id)
        .where(
            or_(*(and_(PostingBand.band == b, PostingBand.value == bindparam(f"v{b}")) for b in range(BANDS)))
        )
        .distinct()
        .limit(5000)
        .subquery()
        .select(),
    )
)


def near_duplicates(
    sess: Session, simhash: int | None, content_hash: str, *, exclude: int | None = None
) -> list[int]:
    """Ids of stored postings with the same text or a SimHash within MAX_DISTANCE, oldest first (one
    round trip)."""
    conn = sess.connection()
    if simhash is None:
        rows = _SAME_TEXT_FAST.rows(conn, {"content_hash": content_hash})
        return sorted({pid for pid, _, _ in rows} - {exclude or -1})
    params: dict[str, object] = {"content_hash": content_hash}
    params.update({f"v{band}": value for band, value in band_values(simhash)})
    found = {
        pid
        for pid, other, same in _NEAR.rows(conn, params)
        if same or (other is not None and hamming(simhash, other) <= MAX_DISTANCE)
    }
    found.discard(exclude or -1)
    return sorted(found)
