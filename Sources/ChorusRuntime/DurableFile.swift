import ChorusModel
import Foundation
import Glibc

/// Small files written whole and synced to disk (the follow checkpoint, key files). The calls block: use them off
/// the async pool.
enum DurableFile {
    /// Writes `bytes` into `path` with exactly `mode` (whatever the umask), then syncs it. `exclusive`: fails if the
    /// file exists; otherwise an existing file is truncated.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t, exclusive: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC), mode)
        guard fd >= 0 else { throw failure("cannot create", path) }
        defer { close(fd) }
        _ = fchmod(fd, mode)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("cannot write", path)
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw failure("cannot sync", path) }
    }

    /// Replaces `path` so that a crash leaves the old or the new contents: a synced temporary file renamed over it,
    /// then the directory synced.
    static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o644) throws {
        let tmp = path + ".tmp"
        try write(bytes, to: tmp, mode: mode, exclusive: false)
        guard rename(tmp, path) == 0 else { throw failure("cannot replace", path) }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    private static func failure(_ what: String, _ path: String) -> ChorusError {
        ChorusError(.storage, "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
