import ChorusModel
import ChorusWire
import Foundation

/// Raw requests sent straight to one worker, bypassing routing — what a client or coordinator holding a stale
/// partition map would send. Used by `chorus debug` and the fencing tests to prove that stale requests are refused.
public enum DebugRequests {
    /// Writes one user record into `partition` on the worker at `address`, claiming map version `mapVersion`.
    public static func writeUser(worker address: String, partition: UInt32, mapVersion: UInt64, userId: String,
                                 security: NodeSecurity, serverKey: String?, timeout: Duration = .seconds(3)) async throws -> Chorus_V1_WriteReply {
        let peer = try Peer(endpoint: address, role: "worker", sender: "debug", security: security, serverKey: serverKey)
        defer { peer.close() }
        var user = Chorus_V1_User()
        user.id = userId
        user.channel = "debug"
        var put = Chorus_V1_Put()
        put.partition = partition
        put.role = .user
        put.keyID = Data(userId.utf8)
        put.value = try user.serializedData()
        put.counted = true
        var wb = Chorus_V1_WriteBatch()
        wb.mapVersion = mapVersion
        wb.puts = [put]
        guard case let .writeBatch(r) = try await peer.call(.writeBatch(wb), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r
    }

    /// Runs one stage of a job kind (the CLI: the features catalog) for `partition` on the worker at `address`,
    /// as a job of its own that is released afterwards.
    public static func runTask(worker address: String, kind: String, stage: String, partition: UInt32,
                               mapVersion: UInt64, security: NodeSecurity, serverKey: String?,
                               timeout: Duration = .seconds(10)) async throws -> Chorus_V1_TaskResult {
        let peer = try Peer(endpoint: address, role: "worker", sender: "debug", security: security, serverKey: serverKey)
        defer { peer.close() }
        var t = Chorus_V1_RunTask()
        t.jobID = "debug-" + UUID().uuidString.lowercased().prefix(8)
        t.kind = kind
        t.stage = stage
        t.partition = partition
        t.partitions = [partition]
        t.mapVersion = mapVersion
        defer {
            var r = Chorus_V1_JobRef()
            r.id = t.jobID
            let release = peer
            Task { _ = try? await release.call(.jobRelease(r), timeout: .seconds(2)) }
        }
        guard case let .taskResults(rs) = try await peer.call(.runTask(t), timeout: timeout), let r = rs.results.first else {
            throw ChorusError(.internal, "unexpected reply")
        }
        if r.hasError { throw Peer.error(r.error, role: "worker") }
        return r
    }
}
