import ChorusModel
import ChorusWire
import Foundation
import Logging

extension AccessControl {
    /// Re-reads the allow-list for `chorus keys reload` or SIGHUP, and logs the outcome. On an error the old list
    /// stays in force and the error is thrown.
    func reload(logger: Logger, trigger: String) throws -> String {
        do {
            let n = try reload()
            logger.notice("allow-list reloaded", metadata: ["keys": "\(n)", "path": "\(path)", "trigger": "\(trigger)"])
            return "\(n) keys"
        } catch {
            logger.error("allow-list reload failed; the old list stays in force",
                         metadata: ["path": "\(path)", "error": "\(error)"])
            throw error
        }
    }
}

extension Coordinator {
    /// `chorus keys reload`: the coordinator re-reads its allow-list, then asks every live worker to re-read
    /// theirs. New connections are checked against the new lists; connections already let in are not disturbed.
    func reloadKeys(_ r: Chorus_V1_KeysReload) async throws -> Chorus_V1_AdminReply {
        guard let access else {
            throw ChorusError(.conflict, "this coordinator runs with --insecure: it has no allow-list to reload")
        }
        var lines = ["coordinator: " + (try access.reload(logger: logger, trigger: "keys reload"))]
        var failed = 0
        if !r.forwarded {
            let forward: Chorus_V1_KeysReload = { var f = Chorus_V1_KeysReload(); f.forwarded = true; return f }()
            let peers = await state.livePeers()
            // All workers at once, 2 s each, so one that does not answer does not hold up the reply.
            let results = await withTaskGroup(of: (String, String?, String).self) { group in
                for (id, peer) in peers {
                    group.addTask {
                        do {
                            guard case let .admin(a) = try await peer.call(.keysReload(forward), timeout: .seconds(2)) else {
                                throw ChorusError(.internal, "unexpected reply")
                            }
                            return (id, nil, a.message)
                        } catch {
                            return (id, "\(error)", "")
                        }
                    }
                }
                var out: [(String, String?, String)] = []
                for await r in group { out.append(r) }
                return out.sorted { $0.0 < $1.0 }
            }
            for (id, error, message) in results {
                if let error {
                    failed += 1
                    lines.append("\(id): failed (\(error))")
                } else {
                    lines.append("\(id): \(message)")
                }
            }
        }
        var reply = Chorus_V1_AdminReply()
        reply.message = lines.joined(separator: "; ")
        if failed > 0 {
            throw ChorusError(.unavailable, "allow-list reloaded with \(failed) failure(s): \(reply.message)",
                              hint: "fix the failed workers' keys directories and run `chorus keys reload` again, or send them SIGHUP")
        }
        return reply
    }

    /// SIGHUP: re-reads the allow-list of this coordinator only.
    public func reloadKeysOnSignal() {
        _ = try? access?.reload(logger: logger, trigger: "SIGHUP")
    }
}

extension Worker {
    func reloadKeys() throws -> Chorus_V1_AdminReply {
        guard let access else {
            throw ChorusError(.conflict, "worker \(name) runs with --insecure: it has no allow-list to reload")
        }
        var reply = Chorus_V1_AdminReply()
        reply.message = try access.reload(logger: logger, trigger: "keys reload")
        return reply
    }

    /// SIGHUP: re-reads this worker's allow-list.
    public func reloadKeysOnSignal() {
        _ = try? access?.reload(logger: logger, trigger: "SIGHUP")
    }
}
