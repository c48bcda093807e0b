// The key service Parquet modular encryption asks for a version's key (dp-sandbox).
//
// Spark reads and writes a version's Parquet files through Parquet's
// PropertiesDrivenCryptoFactory, which wraps each file's data keys with a
// "master key" fetched from a KmsClient. dp-sandbox is that key service: the
// master key of a version is derived from the version's data key, which the
// instance's master key wraps in the store. The sandbox unwraps it, derives the
// Parquet key, and hands it to one Spark session as the Hadoop setting
// dps.version.key.<id> (base64); this class returns it to Parquet's own local
// key wrapping (AES-GCM, in parquet-hadoop). It holds no key of its own, keeps
// none on disk, and refuses an identifier it was not given.
package org.dpsandbox.spark;

import java.util.Base64;
import org.apache.parquet.crypto.KeyAccessDeniedException;
import org.apache.parquet.crypto.keytools.LocalWrapKmsClient;

public class VersionKeyKms extends LocalWrapKmsClient {
  public static final String PREFIX = "dps.version.key.";

  @Override
  protected void initializeInternal() {}

  @Override
  protected byte[] getMasterKeyFromServer(String keyId) throws KeyAccessDeniedException {
    String encoded = hadoopConfiguration.getTrimmed(PREFIX + keyId);
    if (encoded == null || encoded.isEmpty()) {
      throw new KeyAccessDeniedException("no key was given for this version");
    }
    return Base64.getDecoder().decode(encoded);
  }
}
