package drsearch;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

import org.apache.lucene.analysis.Analyzer;

import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.ReaderUtil;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.Sort;
import org.apache.lucene.util.BytesRef;

/**
 * A query's BM25 top k, ranked as Anserini's SimpleSearcher ranks it (score, then the "id" field
 * ascending; scores adjusted as its ScoreTiesAdjusterReranker does), handed to Python as two arrays
 * (ids, scores) instead of a Java object per hit.
 *
 * Faster than searching with the (score, id) sort and reading the stored ids: the search keeps
 * Lucene's plain top-score collector (which may skip non-competitive documents), asking for `k +
 * margin` hits. When the scores of the (k+margin)th and the kth hit differ, every document scoring at
 * least the kth score was collected, so ordering those by (score, id) gives exactly the sorted
 * search's first k; ids, from the "id" doc values, are read for that only where scores tie.
 * Otherwise (a tie reaching the end of the list) the sorted search runs instead.
 *
 * Python calls the static methods, the helper passed as an argument: pyjnius keeps the object of
 * an instance method call on the method object that all instances of the class share
 * (kivy/pyjnius#563), so two Python threads calling one method of two helpers at once (an index
 * swapped in while the old one still serves) can each run on the other's index. A static call
 * carries no such state.
 */
public final class TopKArrays {
  private final IndexSearcher searcher;
  private final Sort sort;
  private final String idField;
  private final int margin;

  private final ExecutorService pool;  // null: batches run on the calling thread
  private final int threads;

  public TopKArrays(IndexSearcher searcher, Sort sort, String idField, int margin) {
    this(searcher, sort, idField, margin, 1);
  }

  /** With `threads` > 1, `searchDocsBatch` spreads a batch over that many threads, started now (a
   * thread inherits its creator's scheduling priority: the thread that opens the index, not a
   * request's). */
  public TopKArrays(IndexSearcher searcher, Sort sort, String idField, int margin, int threads) {
    this.searcher = searcher;
    this.sort = sort;
    this.idField = idField;
    this.margin = margin;
    this.threads = Math.max(1, threads);
    if (this.threads > 1) {
      pool = Executors.newFixedThreadPool(this.threads, task -> {
        Thread t = new Thread(task, "drsearch-topk");
        t.setDaemon(true);
        return t;
      });
      ((java.util.concurrent.ThreadPoolExecutor) pool).prestartAllCoreThreads();
    } else {
      pool = null;
    }
  }

  /** Stops the helper's batch threads; searches still queued are cancelled (their `awaitDocs` throws
   * rather than waiting for ever). */
  public static void close(TopKArrays topk) {
    if (topk.pool == null) return;
    for (Runnable queued : topk.pool.shutdownNow()) {
      if (queued instanceof Future) ((Future<?>) queued).cancel(false);
    }
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

  /** The helper's top k of `query`, as ids and scores. */
  public static Result search(TopKArrays topk, Query query, int k) throws IOException {
    return topk.rankedIds(query, k);
  }

  /** The helper's top k of `query`, as Lucene doc ids and scores. */
  public static Docs searchDocs(TopKArrays topk, Query query, int k) throws IOException {
    return topk.rankedDocs(query, k);
  }

  private Result rankedIds(Query query, int k) throws IOException {
    ScoreDoc[] hits = rank(query, k);
    BytesRef[] ids = ids(hits);
    String[] names = new String[hits.length];
    for (int i = 0; i < names.length; i++) names[i] = ids[i].utf8ToString();
    return new Result(names, adjusted(hits));
  }

  private Docs rankedDocs(Query query, int k) throws IOException {
    ScoreDoc[] hits = rank(query, k);
    int[] docs = new int[hits.length];
    for (int i = 0; i < docs.length; i++) docs[i] = hits[i].doc;
    return new Docs(docs, adjusted(hits));
  }

  /**
   * `searchDocs` of each query, as `generator` (an Anserini query generator, e.g.
   * BagOfWordsQueryGenerator) builds it over `field`, on the helper's threads, in one call: per
   * query its hit count, then all doc ids, then all scores, little-endian in one byte array (a
   * primitive array other than byte[] would cross to Python one element at a time).
   *
   * The generator's `buildQuery(String, Analyzer, String)` is called by reflection: Anserini's
   * classes target a newer Java than this helper is compiled for.
   */
  public static byte[] searchDocsBatch(TopKArrays topk, Object generator, Analyzer analyzer, String field,
      String[] queries, int k) throws IOException, ReflectiveOperationException {
    return topk.rankedDocsBatch(generator, analyzer, field, queries, k);
  }

  private byte[] rankedDocsBatch(Object generator, Analyzer analyzer, String field, String[] queries, int k)
      throws IOException, ReflectiveOperationException {
    Method build = generator.getClass().getMethod("buildQuery", String.class, Analyzer.class, String.class);
    int n = queries.length;
    Docs[] results = new Docs[n];
    AtomicInteger next = new AtomicInteger();
    Callable<Void> worker = () -> {
      for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) {
        results[i] = rankedDocs((Query) build.invoke(generator, field, analyzer, queries[i]), k);
      }
      return null;
    };
    int workers = pool == null ? 1 : Math.min(threads, n);
    List<Future<Void>> running = new ArrayList<>();
    for (int w = 1; w < workers; w++) running.add(pool.submit(worker));
    try {
      worker.call();  // the calling thread takes a share too
      for (Future<Void> f : running) f.get();
    } catch (ExecutionException e) {
      next.set(n);  // the other threads stop after their current query
      throw failure(e.getCause());
    } catch (Exception e) {
      next.set(n);
      throw failure(e);
    }
    int total = 0;
    for (Docs d : results) total += d.docs.length;
    ByteBuffer out = ByteBuffer.allocate(4 * (n + 2 * total)).order(ByteOrder.LITTLE_ENDIAN);
    for (Docs d : results) out.putInt(d.docs.length);
    for (Docs d : results) for (int doc : d.docs) out.putInt(doc);
    for (Docs d : results) for (float score : d.scores) out.putFloat(score);
    return out.array();
  }

  /**
   * `searchDocsBatch` of one query, started on one of the helper's threads; `awaitDocs` gives its
   * bytes. For a caller with other work meanwhile (encoding the query): no Python thread runs or
   * waits for the search, so it takes no turn of the interpreter's lock from the caller. Null where
   * the helper has no threads.
   */
  public static Future<byte[]> searchDocsLater(TopKArrays topk, Object generator, Analyzer analyzer, String field,
      String query, int k) {
    if (topk.pool == null) return null;
    String[] one = {query};
    return topk.pool.submit(() -> topk.rankedDocsBatch(generator, analyzer, field, one, k));
  }

  /** The bytes of a `searchDocsLater`, once its search is done. */
  public static byte[] awaitDocs(Future<byte[]> later) throws IOException, InterruptedException {
    try {
      return later.get();
    } catch (ExecutionException e) {
      throw failure(e.getCause());
    }
  }

  /** What stopped a batch, as the IOException or unchecked exception a query's search threw. */
  private static IOException failure(Throwable e) {
    if (e instanceof InvocationTargetException) e = e.getCause();
    if (e instanceof RuntimeException) throw (RuntimeException) e;
    if (e instanceof Error) throw (Error) e;
    return e instanceof IOException ? (IOException) e : new IOException(e);
  }

  /** The first k hits in the sorted search's order (score descending, then the id's bytes ascending). */
  private ScoreDoc[] rank(Query query, int k) throws IOException {
    ScoreDoc[] hits = searcher.search(query, k + margin).scoreDocs;
    if (hits.length == k + margin && hits[hits.length - 1].score == hits[k - 1].score) {
      return searcher.search(query, k, sort, true).scoreDocs;  // a tie at the cut: the exact sort decides
    }
    // Lucene lists equal scores by doc id: only such runs are put in id order, so that ids are read
    // for tied hits alone (usually a few of the k).
    for (int start = 0, end; start < hits.length; start = end) {
      for (end = start + 1; end < hits.length && hits[end].score == hits[start].score; end++) {}
      if (end - start > 1) byId(hits, start, end);
    }
    return hits.length > k ? Arrays.copyOf(hits, k) : hits;
  }

  /** Sorts hits[start, end) by id (SortField.Type.STRING_VAL's order: the id's bytes ascending). */
  private void byId(ScoreDoc[] hits, int start, int end) throws IOException {
    ScoreDoc[] run = Arrays.copyOfRange(hits, start, end);
    BytesRef[] ids = ids(run);
    Integer[] order = new Integer[run.length];
    for (int i = 0; i < order.length; i++) order[i] = i;
    Arrays.sort(order, Comparator.comparing(i -> ids[i]));
    for (int i = 0; i < order.length; i++) hits[start + i] = run[order[i]];
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
