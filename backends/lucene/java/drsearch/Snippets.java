package drsearch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.util.Arrays;

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
  static final int WORD = 2;       // str.isalnum() or "_": Python's \w
  static final int HAN = 4;        // indexer.analysis.HAN (its BMP part)
  static final int COMBINING = 8;  // unicodedata.combining(c) != 0
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
   * UTF-16LE, one after another.
   */
  public static byte[] make(byte[] texts, int[] ends, int[] queryOf, String[] stems, int[] stemEnds, int maxChars) {
    byte[] cls = classes;
    char[] lower = lowerCase;
    if (cls == null || lower == null) throw new IllegalStateException("Snippets.setClasses was not called");
    char[] all = chars(texts);
    int n = ends.length;
    int[] lengths = new int[n];
    StringBuilder out = new StringBuilder(n * (maxChars + 2));
    char[] spaced = new char[64];
    char[] low = new char[64];
    int begin = 0;
    for (int i = 0; i < n; i++) {
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
        snippet(text, offset, new String(low, 0, length), length, stems, q == 0 ? 0 : stemEnds[q - 1], stemEnds[q],
                maxChars, cls, out);
      }
      lengths[i] = out.length() - before;
    }
    ByteBuffer buf = ByteBuffer.allocate(4 * n + 2 * out.length()).order(ByteOrder.LITTLE_ENDIAN);
    for (int length : lengths) buf.putInt(length);
    for (int i = 0; i < out.length(); i++) buf.putChar(out.charAt(i));
    return buf.array();
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
   * maxChars), lower-cased `lowered`. */
  private static void snippet(char[] text, int offset, String lowered, int size, String[] stems, int firstStem,
                              int endStem, int maxChars, byte[] cls, StringBuilder out) {
    int[] positions = wordStarts(text, offset, lowered, size, stems, firstStem, endStem, cls);
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
    if (start > 0) out.append('\u2026');
    out.append(text, offset + from, to - from);
    if (end < size) out.append('\u2026');
  }

  /** Where a word whose 5-character prefix is one of the stems starts (a shorter stem must be the
   * whole word), sorted, each once: `_word_starts` of ranker/snippets.py. */
  private static int[] wordStarts(char[] text, int offset, String lowered, int size, String[] stems, int firstStem,
                                  int endStem, byte[] cls) {
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
