package drsearch;

import java.io.IOException;
import java.util.Arrays;
import java.util.Comparator;

import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.ReaderUtil;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.Sort;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.util.BytesRef;

/**
 * A query's BM25 top k, ranked as Anserini's SimpleSearcher ranks it (score, then the "id" field
 * ascending; scores adjusted as its ScoreTiesAdjusterReranker does), handed to Python as two arrays
 * (ids, scores) instead of a Java object per hit.
 *
 * Faster than searching with the (score, id) sort and reading the stored ids: the search keeps
 * Lucene's plain top-score collector (which may skip non-competitive documents), asking for `k +
 * margin` hits; the ids come from the "id" doc values. When the scores of the (k+margin)th and the
 * kth hit differ, every document scoring at least the kth score was collected, so ordering those by
 * (score, id) gives exactly the sorted search's first k. Otherwise (a tie reaching the end of the
 * list) the sorted search runs instead.
 */
public final class TopKArrays {
  private final IndexSearcher searcher;
  private final Sort sort;
  private final String idField;
  private final int margin;

  public TopKArrays(IndexSearcher searcher, Sort sort, String idField, int margin) {
    this.searcher = searcher;
    this.sort = sort;
    this.idField = idField;
    this.margin = margin;
  }

  /** Ids and scores of the result, best first. */
  public static final class Result {
    public final String[] ids;
    public final float[] scores;

    Result(String[] ids, float[] scores) {
      this.ids = ids;
      this.scores = scores;
    }
  }

  /** Lucene doc ids and scores of the result, best first: the ranking and scores of `search`. */
  public static final class Docs {
    public final int[] docs;
    public final float[] scores;

    Docs(int[] docs, float[] scores) {
      this.docs = docs;
      this.scores = scores;
    }
  }

  public Result search(Query query, int k) throws IOException {
    Ranked r = rank(query, k);
    String[] names = new String[r.hits.length];
    for (int i = 0; i < names.length; i++) names[i] = r.ids[i].utf8ToString();
    return new Result(names, adjusted(r.hits));
  }

  public Docs searchDocs(Query query, int k) throws IOException {
    Ranked r = rank(query, k);
    int[] docs = new int[r.hits.length];
    for (int i = 0; i < docs.length; i++) docs[i] = r.hits[i].doc;
    return new Docs(docs, adjusted(r.hits));
  }

  private static final class Ranked {
    final ScoreDoc[] hits;
    final BytesRef[] ids;

    Ranked(ScoreDoc[] hits, BytesRef[] ids) {
      this.hits = hits;
      this.ids = ids;
    }
  }

  private Ranked rank(Query query, int k) throws IOException {
    TopDocs top = searcher.search(query, k + margin);
    ScoreDoc[] hits = top.scoreDocs;
    if (hits.length == k + margin && hits[hits.length - 1].score == hits[k - 1].score) {
      hits = searcher.search(query, k, sort, true).scoreDocs;  // a tie at the cut: the exact sort decides
      return new Ranked(hits, ids(hits));
    }
    final BytesRef[] ids = ids(hits);
    final ScoreDoc[] h = hits;
    Integer[] order = new Integer[hits.length];
    for (int i = 0; i < order.length; i++) order[i] = i;
    // The sort's order: score descending, then the id's bytes ascending (SortField.Type.STRING_VAL).
    Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> -h[i].score).thenComparing(i -> ids[i]));
    int n = Math.min(k, hits.length);
    ScoreDoc[] ranked = new ScoreDoc[n];
    BytesRef[] rankedIds = new BytesRef[n];
    for (int i = 0; i < n; i++) {
      ranked[i] = hits[order[i]];
      rankedIds[i] = ids[order[i]];
    }
    return new Ranked(ranked, rankedIds);
  }

  /** Each hit's id from the id field's doc values (its stored value where a segment has none). */
  private BytesRef[] ids(ScoreDoc[] hits) throws IOException {
    BytesRef[] out = new BytesRef[hits.length];
    var leaves = searcher.getIndexReader().leaves();
    for (int i = 0; i < hits.length; i++) {
      LeafReaderContext leaf = leaves.get(ReaderUtil.subIndex(hits[i].doc, leaves));
      BinaryDocValues values = leaf.reader().getBinaryDocValues(idField);
      if (values != null && values.advanceExact(hits[i].doc - leaf.docBase)) {
        out[i] = BytesRef.deepCopyOf(values.binaryValue());
      } else {
        out[i] = new BytesRef(searcher.storedFields().document(hits[i].doc).get(idField));
      }
    }
    return out;
  }

  /** The adjustment of Anserini's ScoreTiesAdjusterReranker: scores rounded to 1e-4, and each score
   * within 1e-4 of the one before lowered by 1e-6 per tie, so the scores sort in the rank order. */
  private static float[] adjusted(ScoreDoc[] hits) {
    int n = hits.length;
    float[] scores = new float[n];
    int dup = 0;
    for (int i = 0; i < n; i++) {
      scores[i] = (float) (Math.round((double) hits[i].score * 1e4) / 1e4);  // in double, as Anserini 1.x
      if (i == 0 || scores[i - 1] - scores[i] > 1e-4f) {
        dup = 0;
      } else {
        dup++;
        scores[i] -= 1e-6f * dup;
      }
    }
    return scores;
  }
}
