package drsearch;

import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.file.Paths;

import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;

/**
 * Writes the "id" of every document of a Lucene index in doc id order, each as a 4-byte big-endian
 * length and its UTF-8 bytes (length -1: a deleted document), so that the build can map Lucene doc
 * ids to the passages' column positions once instead of per query.
 *
 * Usage: java -cp anserini-fatjar.jar:drsearch-lucene.jar drsearch.DocIds INDEX_DIR ID_FIELD OUT_FILE
 */
public final class DocIds {
  private DocIds() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 3) {
      System.err.println("usage: drsearch.DocIds INDEX_DIR ID_FIELD OUT_FILE");
      System.exit(2);
    }
    String field = args[1];
    try (DirectoryReader reader = DirectoryReader.open(FSDirectory.open(Paths.get(args[0])));
         DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(args[2]), 1 << 16))) {
      for (LeafReaderContext leaf : reader.leaves()) {
        LeafReader r = leaf.reader();
        BinaryDocValues values = r.getBinaryDocValues(field);
        StoredFields stored = r.storedFields();
        Bits live = r.getLiveDocs();
        for (int doc = 0; doc < r.maxDoc(); doc++) {
          if (live != null && !live.get(doc)) {
            out.writeInt(-1);
            continue;
          }
          BytesRef id = values != null && values.advanceExact(doc) ? values.binaryValue() : new BytesRef(stored.document(doc).get(field));
          out.writeInt(id.length);
          out.write(id.bytes, id.offset, id.length);
        }
      }
    }
  }
}
