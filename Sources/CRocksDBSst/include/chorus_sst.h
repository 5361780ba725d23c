// What the RocksDB C API lacks for partition moves by SST files: reading a file that is not (yet) part of a
// database; and for replication: checking a serialized write batch whole (its C iterator skips range deletes and
// reports no error). Implemented in C++ (rocksdb::SstFileReader, rocksdb::WriteBatch), so the Swift side stays on
// plain C calls.
#ifndef CHORUS_SST_H
#define CHORUS_SST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Facts about one SST file, after its block checksums were verified.
typedef struct chorus_sst_info {
  uint64_t entries;   // number of entries (puts; files written for moves hold no deletes)
  char *first_key;    // smallest key (malloc'd; free with chorus_sst_free)
  size_t first_key_len;
  char *last_key;     // largest key (malloc'd)
  size_t last_key_len;
} chorus_sst_info;

/// Opens the SST file at `path`, verifies every block checksum, and reads its entry count and key range.
/// Returns 0 on success. On failure returns -1 and sets *error to a malloc'd message (free with chorus_sst_free).
int chorus_sst_inspect(const char *path, chorus_sst_info *info, char **error);

void chorus_sst_free(void *p);

/// Called once per put by chorus_writebatch_check, in batch order.
typedef void (*chorus_writebatch_put_fn)(void *context, const char *key, size_t key_len, const char *value,
                                         size_t value_len);

/// Checks a serialized rocksdb::WriteBatch (the rep a replica receives): it must parse, hold only puts in the
/// default column family, each key at least 5 bytes long, and as many entries as its header says. Writes the
/// distinct partitions of its keys (the first 4 bytes, big-endian) to `partitions`, at most `capacity` of them,
/// and their number to *partition_count, and the number of puts to *entries. `each`, if not NULL, is called for
/// every put. Returns 0, or -1 with a malloc'd message in *error.
int chorus_writebatch_check(const char *rep, size_t rep_len, uint32_t *partitions, size_t capacity,
                            size_t *partition_count, uint64_t *entries, void *context,
                            chorus_writebatch_put_fn each, char **error);

#ifdef __cplusplus
}
#endif

#endif
