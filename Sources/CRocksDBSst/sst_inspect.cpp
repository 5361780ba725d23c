#include "chorus_sst.h"

#include <rocksdb/options.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/version.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace {

char *copy_bytes(const char *data, size_t len) {
  char *out = static_cast<char *>(std::malloc(len == 0 ? 1 : len));
  if (out != nullptr && len > 0) std::memcpy(out, data, len);
  return out;
}

int fail(char **error, const std::string &message) {
  if (error != nullptr) {
    *error = copy_bytes(message.c_str(), message.size() + 1);
  }
  return -1;
}

}  // namespace

extern "C" int chorus_sst_inspect(const char *path, chorus_sst_info *info, char **error) {
  if (path == nullptr || info == nullptr) return fail(error, "no path or no result given");
  std::memset(info, 0, sizeof(*info));
  try {
    rocksdb::Options options;
    rocksdb::SstFileReader reader(options);
    rocksdb::Status s = reader.Open(path);
    if (!s.ok()) return fail(error, "cannot open SST file: " + s.ToString());
    s = reader.VerifyChecksum();
    if (!s.ok()) return fail(error, "SST file checksum: " + s.ToString());
    auto props = reader.GetTableProperties();
    if (props == nullptr) return fail(error, "SST file has no table properties");
    if (props->num_deletions != 0 || props->num_range_deletions != 0) {
      return fail(error, "SST file holds deletions");
    }
    rocksdb::ReadOptions ro;
    ro.verify_checksums = true;
    std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(ro));
    it->SeekToFirst();
    if (!it->Valid()) {
      s = it->status();
      return fail(error, s.ok() ? std::string("SST file is empty") : "SST file: " + s.ToString());
    }
    std::string first = it->key().ToString();
    it->SeekToLast();
    if (!it->Valid()) return fail(error, "SST file: " + it->status().ToString());
    std::string last = it->key().ToString();
    info->entries = props->num_entries;
    info->first_key = copy_bytes(first.data(), first.size());
    info->first_key_len = first.size();
    info->last_key = copy_bytes(last.data(), last.size());
    info->last_key_len = last.size();
    if (info->first_key == nullptr || info->last_key == nullptr) {
      chorus_sst_free(info->first_key);
      chorus_sst_free(info->last_key);
      std::memset(info, 0, sizeof(*info));
      return fail(error, "out of memory");
    }
    return 0;
  } catch (const std::exception &e) {
    return fail(error, std::string("SST file: ") + e.what());
  } catch (...) {
    return fail(error, "SST file: unknown error");
  }
}

extern "C" void chorus_sst_free(void *p) { std::free(p); }

extern "C" char *chorus_rocksdb_version(void) {
  const std::string v = rocksdb::GetRocksVersionAsString(true);
  char *out = static_cast<char *>(std::malloc(v.size() + 1));
  if (out != nullptr) std::memcpy(out, v.c_str(), v.size() + 1);
  return out;
}
