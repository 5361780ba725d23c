#include "chorus_sst.h"

#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Accepts puts in the default column family and refuses every other record: a replica batch carries puts only.
class PutsOnly : public rocksdb::WriteBatch::Handler {
 public:
  uint32_t *partitions;
  size_t capacity;
  size_t partition_count = 0;
  uint64_t entries = 0;
  void *context;
  chorus_writebatch_put_fn each;

  PutsOnly(uint32_t *p, size_t c, void *ctx, chorus_writebatch_put_fn fn)
      : partitions(p), capacity(c), context(ctx), each(fn) {}

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice &key, const rocksdb::Slice &value) override {
    if (cf != 0) return rocksdb::Status::InvalidArgument("a put in a column family other than the default");
    if (key.size() < 5) return rocksdb::Status::InvalidArgument("a key shorter than 5 bytes");
    const auto *b = reinterpret_cast<const unsigned char *>(key.data());
    uint32_t p = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | uint32_t(b[3]);
    bool known = false;
    // Keys arrive sorted, so the partition is almost always the last one seen.
    for (size_t i = partition_count; i > 0; i--) {
      if (partitions[i - 1] == p) { known = true; break; }
    }
    if (!known) {
      if (partition_count == capacity) return rocksdb::Status::InvalidArgument("too many partitions in one batch");
      partitions[partition_count++] = p;
    }
    entries++;
    if (each != nullptr) each(context, key.data(), key.size(), value.data(), value.size());
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice &) override { return refuse("a delete"); }
  rocksdb::Status SingleDeleteCF(uint32_t, const rocksdb::Slice &) override { return refuse("a single delete"); }
  rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice &, const rocksdb::Slice &) override {
    return refuse("a range delete");
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice &, const rocksdb::Slice &) override {
    return refuse("a merge");
  }
  rocksdb::Status PutBlobIndexCF(uint32_t, const rocksdb::Slice &, const rocksdb::Slice &) override {
    return refuse("a blob index");
  }
  rocksdb::Status MarkBeginPrepare(bool) override { return refuse("a transaction marker"); }
  rocksdb::Status MarkEndPrepare(const rocksdb::Slice &) override { return refuse("a transaction marker"); }
  rocksdb::Status MarkCommit(const rocksdb::Slice &) override { return refuse("a transaction marker"); }
  rocksdb::Status MarkRollback(const rocksdb::Slice &) override { return refuse("a transaction marker"); }
  rocksdb::Status MarkNoop(bool) override { return refuse("a transaction marker"); }

 private:
  static rocksdb::Status refuse(const char *what) {
    return rocksdb::Status::InvalidArgument(std::string(what) + " (a replica batch holds puts only)");
  }
};

int fail(char **error, const std::string &message) {
  if (error != nullptr) {
    char *out = static_cast<char *>(std::malloc(message.size() + 1));
    if (out != nullptr) std::memcpy(out, message.c_str(), message.size() + 1);
    *error = out;
  }
  return -1;
}

}  // namespace

extern "C" int chorus_writebatch_check(const char *rep, size_t rep_len, uint32_t *partitions, size_t capacity,
                                       size_t *partition_count, uint64_t *entries, void *context,
                                       chorus_writebatch_put_fn each, char **error) {
  if (rep == nullptr || partitions == nullptr || partition_count == nullptr || entries == nullptr) {
    return fail(error, "no batch or no result given");
  }
  // The header is 12 bytes (sequence number, count); WriteBatch's constructor asserts nothing about it, and
  // Iterate reports a short rep as corruption.
  if (rep_len < 12) return fail(error, "malformed write batch: shorter than its 12-byte header");
  rocksdb::WriteBatch batch(std::string(rep, rep_len));
  PutsOnly handler(partitions, capacity, context, each);
  rocksdb::Status s = batch.Iterate(&handler);
  if (!s.ok()) return fail(error, "write batch refused: " + s.ToString());
  // Every record that changes data counts in the header, so equal counts also mean no other record kind.
  if (handler.entries != batch.Count()) {
    return fail(error, "write batch refused: " + std::to_string(handler.entries) + " puts but a header count of " +
                           std::to_string(batch.Count()));
  }
  *partition_count = handler.partition_count;
  *entries = handler.entries;
  return 0;
}
