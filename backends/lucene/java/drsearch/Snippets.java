package drsearch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Query-biased snippets for all hits of a response in one call: `snippet` of ranker/snippets.py,
 * character for character, for the texts it can take here. Python keeps the reference
 * implementation and computes the rest: a text with Han characters (matched by bigrams there) or
 * with surrogates (Python counts code points, Java UTF-16 units) gets length -1 back.
 *
 * Character classes and lower cases come from Python (`setClasses`), so that "whitespace" is
 * str.isspace, "word character" str.isalnum or "_", and so on, exactly as there.
 */
public final class Snippets {
  static final int SPACE = 1;      // str.isspace(): what str.split() splits on
  static final int WORD = 2;       // ranker.snippets._in_word: Python's \w less kana
  static final int HAN = 4;        // indexer.analysis.HAN (its BMP part)
  static final int COMBINING = 8;  // a mark (ranker.snippets._is_mark: category Mn, Mc or Me)
  static final int BREAK = 16;     // ranker.snippets._BREAK: where a cut reads naturally
  static final int OTHER = 32;     // a surrogate, or a character that Python lower-cases otherwise than `lowerCase` says
  static final int SPACING = 64;   // a space other than " " (and from `flags`: a text not single-spaced)
  static final int PYTHON = HAN | OTHER;  // texts with these are left to Python

  private static volatile byte[] classes;
  private static volatile char[] lowerCase;

  private Snippets() {}

  /** The class bits of every BMP character (65,536 bytes) and its lower case by Python's str.lower
   * (65,536 UTF-16LE units, where OTHER is not set), once per JVM. */
  public static synchronized void setClasses(byte[] table, byte[] lower) {
    if (table.length != 65536 || lower.length != 2 * 65536) throw new IllegalArgumentException("65536 classes expected");
    lowerCase = chars(lower);
    classes = table.clone();
  }

  /**
   * Snippets of hits whose texts (UTF-16LE, joined) end at `ends`. Hit i belongs to query
   * `queryOf[i]`, whose stems are `stems[stemEnds[q - 1] .. stemEnds[q])`. Returns per hit an int32
   * (little-endian) length in UTF-16 units, -1 where Python must compute it, then the snippets'
   * UTF-16LE, one after another. With `threads` above 1, a response of many hits is cut into that
   * many parts of about equal length, made side by side (the caller's thread takes a part too) by
   * helpers at the caller's niceness `nice`.
   */
  public static byte[] make(byte[] texts, int[] ends, int[] queryOf, String[] stems, int[] stemEnds, int maxChars,
                            int threads, int nice) {
    byte[] cls = classes;
    char[] lower = lowerCase;
    if (cls == null || lower == null) throw new IllegalStateException("Snippets.setClasses was not called");
    Job job = new Job(chars(texts), ends, queryOf, stems, stemEnds, maxChars, cls, lower);
    int n = ends.length;
    int parts = Math.max(1, Math.min(threads, n / MIN_PART_HITS));
    StringBuilder[] made = new StringBuilder[parts];
    int[] cuts = cuts(ends, parts);
    if (parts == 1) {
      made[0] = job.run(0, n);
    } else {
      runSideBySide(job, cuts, made, helpers(nice, threads));
    }
    int size = 0;
    for (StringBuilder part : made) size += part.length();
    ByteBuffer buf = ByteBuffer.allocate(4 * n + 2 * size).order(ByteOrder.LITTLE_ENDIAN);
    for (int length : job.lengths) buf.putInt(length);
    CharBuffer chars = buf.asCharBuffer();
    for (StringBuilder part : made) chars.put(part.toString());
    return buf.array();
  }

  static final int MIN_PART_HITS = 32;  // fewer hits a part do not pay for the hand-off

  /** Where each of `parts` parts starts, by hit index, cut so that each holds about as many text
   * characters; then `ends.length`. */
  private static int[] cuts(int[] ends, int parts) {
    int n = ends.length;
    int[] cuts = new int[parts + 1];
    long total = n == 0 ? 0 : ends[n - 1];
    int i = 0;
    for (int p = 1; p < parts; p++) {
      long target = total * p / parts;
      while (i < n && (i == 0 ? 0 : ends[i - 1]) < target) i++;
      cuts[p] = i;
    }
    cuts[parts] = n;
    return cuts;
  }

  /** Helper pools by the niceness of the callers they serve. A pool's threads are started by its
   * first callers and so inherit their niceness (Linux schedules threads one by one): a bulk
   * request's snippets stay at its low-priority thread's level (service.priority). */
  private static final ConcurrentHashMap<Integer, ExecutorService> HELPERS = new ConcurrentHashMap<>();

  private static ExecutorService helpers(int nice, int threads) {
    return HELPERS.computeIfAbsent(nice, n -> Executors.newFixedThreadPool(Math.max(1, threads - 1), task -> {
      Thread thread = new Thread(task, "snip-nice" + n);  // the name is the thread's comm: at most 15 characters
      thread.setDaemon(true);
      return thread;
    }));
  }

  /** The parts `cuts` marks, claimed one by one by this thread and by helpers: a helper that starts
   * late (its pool busy) finds nothing left, and this thread never waits for a part that no thread
   * has begun. */
  private static void runSideBySide(Job job, int[] cuts, StringBuilder[] made, ExecutorService pool) {
    int parts = made.length;
    AtomicInteger next = new AtomicInteger();
    CountDownLatch done = new CountDownLatch(parts);
    Throwable[] failure = new Throwable[1];
    Runnable claim = () -> {
      for (int p = next.getAndIncrement(); p < parts; p = next.getAndIncrement()) {
        try {
          made[p] = job.run(cuts[p], cuts[p + 1]);
        } catch (Throwable t) {
          synchronized (failure) {
            if (failure[0] == null) failure[0] = t;
          }
        } finally {
          done.countDown();
        }
      }
    };
    for (int h = 1; h < parts; h++) pool.execute(claim);
    claim.run();
    try {
      done.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while making snippets", e);
    }
    if (failure[0] instanceof RuntimeException) throw (RuntimeException) failure[0];
    if (failure[0] instanceof Error) throw (Error) failure[0];
    if (failure[0] != null) throw new IllegalStateException(failure[0]);
  }

  /** One call's texts and queries; `run` makes the snippets of a range of hits (ranges may run side by side). */
  private static final class Job {
    final char[] all;
    final int[] ends, queryOf, stemEnds;
    final String[] stems;
    final int maxChars;
    final byte[] cls;
    final char[] lower;
    final int[] lengths;

    Job(char[] all, int[] ends, int[] queryOf, String[] stems, int[] stemEnds, int maxChars, byte[] cls, char[] lower) {
      this.all = all;
      this.ends = ends;
      this.queryOf = queryOf;
      this.stemEnds = stemEnds;
      this.maxChars = maxChars;
      this.cls = cls;
      this.lower = lower;
      this.lengths = new int[ends.length];
      this.stems = stems;
    }

    StringBuilder run(int from, int to) {
      StringBuilder out = new StringBuilder((to - from) * (maxChars + 2));
      char[] spaced = new char[64];
      char[] low = new char[64];
      int begin = from == 0 ? 0 : ends[from - 1];
      for (int i = from; i < to; i++) {
        int end = ends[i];
        int length = end - begin;
        if (low.length < length) {
          spaced = new char[length];
          low = new char[length];
        }
        int flags = flags(all, begin, end, cls);
        char[] text = all;
        int offset = begin;
        if ((flags & PYTHON) != 0) {
          length = -1;
        } else if ((flags & SPACING) != 0) {
          length = singleSpaced(all, begin, end, spaced, cls);
          text = spaced;
          offset = 0;
        }
        begin = end;
        if (length < 0) {
          lengths[i] = -1;
          continue;
        }
        int before = out.length();
        if (length <= maxChars) {
          out.append(text, offset, length);
        } else {
          for (int j = 0; j < length; j++) low[j] = lower[text[offset + j]];
          int q = queryOf[i];
          int[] positions = wordStarts(text, offset, new String(low, 0, length), length, q == 0 ? 0 : stemEnds[q - 1],
                                       stemEnds[q]);
          snippet(text, offset, length, positions, maxChars, cls, out);
        }
        lengths[i] = out.length() - before;
      }
      return out;
    }

    /** Where a word whose 5-character prefix is one of the stems starts (a shorter stem must be the
     * whole word), sorted, each once: `_word_starts` of ranker/snippets.py. */
    private int[] wordStarts(char[] text, int offset, String lowered, int size, int firstStem, int endStem) {
      int[] found = new int[16];
      int count = 0;
      for (int s = firstStem; s < endStem; s++) {
        String stem = stems[s];
        int n = stem.length();
        if (n == 0) continue;
        for (int at = lowered.indexOf(stem); at >= 0; at = lowered.indexOf(stem, at + 1)) {
          if (at > 0 && is(cls, text[offset + at - 1], WORD)) continue;
          if (n < 5 && at + n < size && is(cls, text[offset + at + n], WORD)) continue;
          if (count == found.length) found = Arrays.copyOf(found, count * 2);
          found[count++] = at;
        }
      }
      Arrays.sort(found, 0, count);
      int unique = 0;
      for (int i = 0; i < count; i++) if (unique == 0 || found[unique - 1] != found[i]) found[unique++] = found[i];
      return Arrays.copyOf(found, unique);
    }
  }

  private static char[] chars(byte[] utf16le) {
    CharBuffer view = ByteBuffer.wrap(utf16le).order(ByteOrder.LITTLE_ENDIAN).asCharBuffer();
    char[] out = new char[view.remaining()];
    view.get(out);
    return out;
  }

  /** The class bits of all[begin:end] or-ed together, plus SPACING where `" ".join(text.split())`
   * would change the text (a space other than " ", two in a row, one at either end). A read-only
   * pass: most texts are single-spaced already and are then read where they lie. */
  private static int flags(char[] all, int begin, int end, byte[] cls) {
    int seen = 0, runs = 0, previous = SPACE;  // a space at the start counts as a run
    for (int j = begin; j < end; j++) {
      int k = cls[all[j]];
      seen |= k;
      runs |= previous & k;
      previous = k;
    }
    runs |= previous;  // a space at the end
    return seen | ((runs & SPACE) != 0 ? SPACING : 0);
  }

  /** `" ".join(text.split())` of all[begin:end] into text; its length. */
  private static int singleSpaced(char[] all, int begin, int end, char[] text, byte[] cls) {
    int size = 0;
    boolean gap = false;
    for (int j = begin; j < end; j++) {
      char c = all[j];
      if ((cls[c] & SPACE) != 0) {
        gap = size > 0;
        continue;
      }
      if (gap) {
        text[size++] = ' ';
        gap = false;
      }
      text[size++] = c;
    }
    return size;
  }

  private static boolean is(byte[] cls, char c, int bit) {
    return (cls[c] & bit) != 0;
  }

  /** `snippet` of ranker/snippets.py for the single-spaced text[offset:offset+size] (longer than
   * maxChars), whose query words start at `positions`. */
  private static void snippet(char[] text, int offset, int size, int[] positions, int maxChars, byte[] cls,
                              StringBuilder out) {
    int start = 0, firstMatch = size;
    if (positions.length > 0) {
      int best = positions[0], bestCount = 0, j = 0;
      for (int i = 0; i < positions.length; i++) {
        int pos = positions[i];
        while (positions[j] < pos - maxChars * 2 / 3) j++;
        if (i - j + 1 > bestCount) {
          best = positions[j];
          bestCount = i - j + 1;
        }
      }
      start = Math.max(0, best - maxChars / 6);
      firstMatch = best;
    }
    int end = Math.min(size, start + maxChars);
    start = Math.max(0, end - maxChars);
    if (start > 0) {
      int brk = -1;
      for (int i = start, stop = Math.min(start + 30, firstMatch); i < stop; i++) {
        if (is(cls, text[offset + i], BREAK)) {
          brk = i;
          break;
        }
      }
      start = clusterStart(text, offset, size, brk >= 0 ? brk + 1 : start, cls);
    }
    if (end < size) {
      int brk = -1;
      for (int i = Math.max(start, end - 30); i < end; i++) if (is(cls, text[offset + i], BREAK)) brk = i;
      if (brk >= 0) end = is(cls, text[offset + brk], SPACE) ? brk : brk + 1;  // before a space, after a punctuation mark
      end = clusterStart(text, offset, size, end, cls);
    }
    int from = start, to = end;  // str.strip()
    while (from < to && is(cls, text[offset + from], SPACE)) from++;
    while (to > from && is(cls, text[offset + to - 1], SPACE)) to--;
    // The marks count: where no break was near the cut (CJK, Thai, a long URL) they took it past maxChars.
    int over = (start > 0 ? 1 : 0) + (to - from) + (end < size ? 1 : 0) - maxChars;
    if (over > 0 && end < size) {
      to = from + clusterStart(text, offset + from, to - from, to - from - over, cls);
      while (to > from && is(cls, text[offset + to - 1], SPACE)) to--;
    } else if (over > 0) {
      int i = over;
      while (clusterStart(text, offset + from, to - from, i, cls) != i) i++;
      from += i;
      while (from < to && is(cls, text[offset + from], SPACE)) from++;
    }
    if (start > 0) out.append('\u2026');
    out.append(text, offset + from, to - from);
    if (end < size) out.append('\u2026');
  }

  /** `i` moved back to the start of its character: never before a combining mark or variation
   * selector, or inside a zero-width-joiner sequence (`_cluster_start`; no surrogates reach here). */
  private static int clusterStart(char[] text, int offset, int size, int i, byte[] cls) {
    while (0 < i && i < size) {
      char c = text[offset + i];
      if (!(is(cls, c, COMBINING) || c == '\u200d' || c == '\ufe0e' || c == '\ufe0f' || text[offset + i - 1] == '\u200d')) break;
      i--;
    }
    return i;
  }
}
