// What the RocksDB C API lacks for partition moves by SST files: reading a file that is not (yet) part of a
// database. Implemented with rocksdb::SstFileReader (C++), so the Swift side stays on plain C calls.
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

/// The version of the RocksDB library loaded at run time ("7.8.3"), as a malloc'd string (free with
/// chorus_sst_free). The C API has no such call.
char *chorus_rocksdb_version(void);

#ifdef __cplusplus
}
#endif

#endif
