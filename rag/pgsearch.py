"""Search in PostgreSQL: the half of ``PgStore`` that supplies retrieval's candidates.

- **Vectors**: ``ORDER BY embedding <#> q LIMIT n`` through the HNSW index (inner product;
  vectors are normalised), reading ``hnsw.ef_search`` candidates. With a date filter, the
  passages in range are scanned exactly when there are few of them; otherwise the HNSW search
  reads proportionally more candidates and filters them (pgvector 0.6 filters after the scan).
- **BM25 in SQL**, as FTS5 computes it (k1 1.2, b 0.75, title weighted 0.4) so that both stores
  rank alike: IDF from document counts (counted through the GIN index, cached until the index
  grows or shrinks by 10%), the length norm from each passage's token count and the average from
  the ``rag_state`` counters, and each phrase's frequency in a passage as ``ts_rank_cd`` with no
  normalisation and weights {title 0.4, text 1}: for a one-phrase query, cover density is
  exactly the weighted count of its occurrences. ``@@`` is checked first, since most phrases are
  absent from most candidates and it costs a fifth as much. Scoring a candidate costs
  microseconds (FTS5: a fraction of one), so above ``lexical_budget`` passages an OR query keeps
  its rarest phrases within that many postings, as the SQLite store does above its own budget; a
query left with only words that several budgets' worth of passages have ("who won the league")
is not scored at all (the dense half still answers it).

Expects of the class it is mixed into: ``config`` (``PgConfig``), ``lexical_budget``, ``server``,
``dimension``, ``_read()`` (a connection for reading), ``_state()`` and the caches ``_df``,
``_tsq`` and ``_range`` (see ``PgStore.__init__``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from .errors import EmbedderMismatchError
from .lexical import LexicalQuery
from .pgschema import TEXT_WEIGHT, TITLE_WEIGHT, guarded

K1, B = 1.2, 0.75
EF_PER_ROOT = 1.0  # HNSW candidates per search per square root of the passages
OVERFLOW = 4  # a query whose rarest phrases still match this many budgets of passages is not scored
RANK_WEIGHTS = f"{{0,0,{TITLE_WEIGHT},{TEXT_WEIGHT}}}"  # ts_rank_cd weights D, C, B (title), A (text)


class PgSearch:
    """BM25 and vector search in SQL (mixed into ``PgStore``)."""

    def _tsqueries(self, phrases: Sequence[str]) -> dict[str, str]:
        """Each phrase as a tsquery (text form; '' when it has no words), parsed by the server
        with the same configuration as the passages."""
        missing = [p for p in phrases if p not in self._tsq]
        if missing:
            with self._read() as conn:
                rows = conn.execute("SELECT p, phraseto_tsquery('rag_fts', rag_fold(p))::text FROM unnest(%s::text[]) p",
                                    (missing,)).fetchall()
            if len(self._tsq) > 50_000:
                self._tsq.clear()
            for p, q in rows:
                self._tsq[p] = q
        return {p: self._tsq.get(p, "") for p in phrases}

    def _doc_freq(self, phrase: str, tsq: str, n_chunks: int) -> int:
        hit = self._df.get(phrase)
        if hit is not None and abs(hit[0] - n_chunks) <= n_chunks // 10:
            return hit[1]
        if not tsq:
            return 0
        with self._read() as conn:
            df = int(conn.execute("SELECT count(*) FROM chunks WHERE tsv @@ %s::tsquery", (tsq,)).fetchone()[0])
        if len(self._df) > 50_000:
            self._df.clear()
        self._df[phrase] = (n_chunks, df)
        return df

    @guarded
    def document_frequency(self, phrase: str, n_chunks: int | None = None) -> int:
        """Passages holding a phrase (``"words"``, quotes optional; stemmed as BM25 stems);
        cached until the index grows or shrinks by 10%."""
        if n_chunks is None:
            n_chunks = self.count()[1]
        words = phrase.strip().strip('"')
        return self._doc_freq(words, self._tsqueries([words])[words], n_chunks)

    @guarded
    def lexical_search(self, match: LexicalQuery | str, n: int, since: str | None = None,
                       until: str | None = None) -> list[tuple[int, float]]:
        """BM25 as FTS5 computes it (title weighted 0.4); (chunk id, score) best first."""
        if isinstance(match, str):
            match = _parse_fts5(match)
        if not match:
            return []
        _, _, n_chunks, n_tokens = self._state()
        if n_chunks == 0:
            return []
        tsq = self._tsqueries(match.phrases)
        any_ = [p for p in dict.fromkeys(match.any) if tsq[p]]
        all_ = [p for p in dict.fromkeys(match.all) if tsq[p]]
        if not any_ and not all_:
            return []
        df = {p: self._doc_freq(p, tsq[p], n_chunks) for p in dict.fromkeys(all_ + any_)}
        any_ = self._within_budget(any_, all_, df, n_chunks)
        budget = self.lexical_budget
        if budget and n_chunks > budget:
            estimate = min([sum(df[p] for p in any_) if any_ else n_chunks] + [df[p] for p in all_])
            if estimate > OVERFLOW * budget:
                return []  # only words a large share of passages have: little to rank by, and slow to
        phrases = list(dict.fromkeys(all_ + any_))
        parts = [f"({tsq[p]})" for p in all_]
        if any_:
            parts.append("(" + " | ".join(f"({tsq[p]})" for p in any_) + ")")
        cond = " & ".join(parts)
        avgdl = n_tokens / n_chunks if n_tokens else 1.0
        # per passage: f<i> the weighted frequency of phrase i, k the length norm; float8 throughout
        tfs, terms, args = [], [], []
        for i, p in enumerate(phrases):  # most phrases are absent from a passage: @@ says so at a fifth of the cost
            tfs.append(f"CASE WHEN c.tsv @@ %s::tsquery THEN ts_rank_cd('{RANK_WEIGHTS}', c.tsv, %s::tsquery, 0)::float8 "
                       f"ELSE 0 END AS f{i}")
            terms.append(f"%s::float8 * f{i} / (f{i} + k)")
            args += [tsq[p], tsq[p]]
        where, wargs = _date_where(since, until)
        sql = (f"SELECT id, ({' + '.join(terms)}) * {K1 + 1!r} AS s FROM (SELECT c.id, {', '.join(tfs)}, "
               f"{K1 * (1 - B)!r} + {K1 * B!r} * c.tokens / %s::float8 AS k FROM chunks c "
               f"WHERE c.tsv @@ %s::tsquery{where} OFFSET 0) m ORDER BY s DESC, id LIMIT %s")
        # as FTS5; a count taken while another process writes may exceed the passages counted before it
        idfs = [max(math.log((max(n_chunks - df[p], 0) + 0.5) / (df[p] + 0.5)), 1e-6) for p in phrases]
        with self._read() as conn:
            rows = conn.execute(sql, [*idfs, *args, avgdl, cond, *wargs, n]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _within_budget(self, any_: list[str], all_: list[str], df: dict[str, int], n_chunks: int) -> list[str]:
        """The OR phrases to score: all of them, or for a large index the rarest within the
        posting budget (at least one)."""
        budget = self.lexical_budget
        if not budget or n_chunks <= budget or len(any_) < 2:
            return any_
        cap = min((df[p] for p in all_), default=None)
        keep = sorted(any_, key=lambda p: df[p])
        while len(keep) > 1 and min(sum(df[p] for p in keep), cap if cap is not None else math.inf) > budget:
            keep.pop()
        kept = set(keep)
        return [p for p in any_ if p in kept]

    # ------------------------------------------------------------------ dense

    @guarded
    def dense_search(self, qvec: np.ndarray, n: int, since: str | None = None,
                     until: str | None = None) -> list[tuple[int, float]]:
        """Inner-product top-n through the HNSW index; (chunk id, cosine) best first."""
        q = np.ascontiguousarray(np.asarray(qvec, dtype=np.float32).reshape(-1))
        dim = self.dimension
        if dim is None:
            return []
        if q.shape[0] != dim:
            raise EmbedderMismatchError(f"index {self.server}: query vector dimension {q.shape[0]} != index {dim}")
        where, wargs = _date_where(since, until)
        n_chunks = self._state()[2]
        ef = max(self.ef_search(n_chunks), n)
        if where:
            in_range = self._in_range(since, until, where, wargs)
            if in_range == 0:
                return []
            if in_range <= self.config.exact_max:
                sql = (f"WITH c AS MATERIALIZED (SELECT c.id, c.embedding FROM chunks c WHERE true{where}) "
                       "SELECT id, -(embedding <#> %s) FROM c ORDER BY embedding <#> %s LIMIT %s")
                with self._read() as conn:
                    rows = conn.execute(sql, [*wargs, q, q, n]).fetchall()
                return [(int(r[0]), float(r[1])) for r in rows]
            ef = min(1000, max(ef, math.ceil(2 * n * n_chunks / in_range)))
        sql = (f"SELECT c.id, -(c.embedding <#> %s) FROM chunks c WHERE true{where} "
               "ORDER BY c.embedding <#> %s LIMIT %s")
        with self._read() as conn:
            if getattr(conn, "_rag_ef", None) != ef:  # a session setting: set again only when it changes
                conn.execute(f"SET hnsw.ef_search = {int(ef)}")
                conn._rag_ef = ef
            rows = conn.execute(sql, [q, *wargs, q, n]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    @guarded
    def embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of these chunks: fusion scores a passage that only BM25 found by
        its true similarity to the question (as the SQLite store does)."""
        if not ids:
            return {}
        with self._read() as conn:
            rows = conn.execute("SELECT id, embedding FROM chunks WHERE id = ANY(%s)",
                                [[int(i) for i in ids]]).fetchall()
        return {int(cid): np.asarray(vec.to_numpy(), dtype=np.float32) for cid, vec in rows}

    def ef_search(self, n_chunks: int) -> int:
        """HNSW candidates a search reads: ``config.ef_search``, else grown with the index as
        ``EF_PER_ROOT`` x sqrt(passages), within 100..1000 (pgvector's maximum): recall@10
        against exact search 0.987 at 100k passages, 0.869 at 1M (docs/SCALING.md), for a few
        milliseconds more than a fixed 100."""
        if self.config.ef_search:
            return int(self.config.ef_search)
        return int(min(1000, max(100, EF_PER_ROOT * math.sqrt(max(n_chunks, 1)))))

    def _in_range(self, since, until, where: str, wargs: list) -> int:
        key = (since, until)
        if key not in self._range:
            with self._read() as conn:
                self._range[key] = int(conn.execute(f"SELECT count(*) FROM chunks c WHERE true{where}",
                                                    wargs).fetchone()[0])
        return self._range[key]


def _date_where(since: str | None, until: str | None) -> tuple[str, list[str]]:
    clauses, args = "", []
    if since:
        clauses += " AND c.date >= %s"
        args.append(since)
    if until:
        clauses += " AND c.date <= %s"
        args.append(until)
    return clauses, args


_PHRASE = re.compile(r'"([^"]*)"')


def _parse_fts5(match: str) -> LexicalQuery:
    """The FTS5 expressions retrieval used to build (``"a" OR "b"``, ``"x" AND ("a" OR "b")``)
    as a LexicalQuery, for callers that still pass strings."""
    head, sep, tail = match.partition(" AND (")
    if sep:
        return LexicalQuery(tuple(_PHRASE.findall(tail)), tuple(_PHRASE.findall(head)))
    return LexicalQuery(tuple(_PHRASE.findall(match)))
