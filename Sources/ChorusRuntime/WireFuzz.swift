import ChorusTransport
import ChorusWire
import Foundation
import Synchronization
import SwiftProtobuf

/// Sends `WireFuzzer` requests to live processes and tallies the replies (`chorus bench-fuzz`, the fuzz test and
/// bench/fuzz.sh). It does not decide whether a process crashed: the caller checks its processes afterwards;
/// `unresponsive` lists the targets that no longer answer a plain request at the end.
public enum WireFuzz {
    public struct Target: Sendable {
        public var name: String
        public var endpoint: String
        public var coordinator: Bool
        public init(name: String, endpoint: String, coordinator: Bool) {
            self.name = name; self.endpoint = endpoint; self.coordinator = coordinator
        }
    }

    /// Request types a worker serves; the rest go to the coordinator (partition_map: both).
    static let workerRequests: Set<String> = ["write_batch", "run_task", "profile_get", "profile_scan", "job_broadcast",
                                              "job_release", "replica_write", "copy_partition", "partition_chunk",
                                              "map_push", "user_history", "partition_map"]

    public struct Report: Codable, Sendable {
        public var seed: UInt64
        public var messages = 0
        public var seconds = 0.0
        /// Sent as one frame and awaited / truncated / with a flipped byte / with extra frames (not awaited).
        public var whole = 0, truncated = 0, flipped = 0, extraFrames = 0
        /// Replies by error code name ("ok" for a normal reply, "no_reply" after the timeout).
        public var replies: [String: Int] = [:]
        /// Per request type: replies by code.
        public var byRequest: [String: [String: Int]] = [:]
        /// BAD_REQUEST replies / awaited requests.
        public var badRequestRate = 0.0
        public var unresponsive: [String] = []

        enum CodingKeys: String, CodingKey {
            case seed, messages, seconds, whole, truncated, flipped, replies, unresponsive
            case extraFrames = "extra_frames", byRequest = "by_request", badRequestRate = "bad_request_rate"
        }
    }

    /// Sends up to `messages` requests (fewer if `seconds` runs out), `concurrency` in flight. Three in four go to a
    /// process that serves their type (so they get past the dispatch and into the handler), the rest to any target.
    /// `dictionary` adds strings for the generator (e.g. the cluster id).
    public static func run(targets: [Target], messages: Int, seed: UInt64, seconds: Double, concurrency: Int = 16,
                           dictionary: [String] = [], timeout: Duration = .seconds(5)) async throws -> Report {
        let clients = try targets.map { t in
            try DealerClient(connect: t.endpoint, correlate: responseCorrelationId)
        }
        defer { clients.forEach { $0.close() } }
        var fuzzer = WireFuzzer(seed: seed, dictionary: dictionary)
        var report = Report(seed: seed)
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        var correlation: UInt64 = 1 << 40
        await withTaskGroup(of: (String, String).self) { group in
            var inFlight = 0
            func tally(_ r: (String, String)) {
                report.replies[r.1, default: 0] += 1
                report.byRequest[r.0, default: [:]][r.1, default: 0] += 1
            }
            while report.messages < messages && ContinuousClock.now < deadline {
                var req = fuzzer.request()
                correlation += 1
                req.correlationID = correlation  // unique, so the reply can be matched
                report.messages += 1
                guard let bytes: [UInt8] = try? req.serializedBytes() else { continue }
                let kind = req.body.map(caseName) ?? "no_body"
                let serving = targets.indices.filter { i in
                    targets[i].coordinator ? kind != "partition_map" || i % 2 == 0 : Self.workerRequests.contains(kind)
                }
                let pick = !serving.isEmpty && fuzzer.chance(0.75) ? serving[fuzzer.below(serving.count)]
                    : fuzzer.below(targets.count)
                let client = clients[pick]
                switch fuzzer.frames(bytes) {
                case let .truncated(b): report.truncated += 1; client.post(frames: [b])
                case let .flipped(b): report.flipped += 1; client.post(frames: [b])
                case let .extra(f): report.extraFrames += 1; client.post(frames: f)
                case let .whole(b):
                    report.whole += 1
                    if inFlight >= concurrency, let r = await group.next() { inFlight -= 1; tally(r) }
                    inFlight += 1
                    let id = correlation
                    group.addTask {
                        do {
                            let reply = try await client.request(b, correlationId: id, timeout: timeout)
                            guard let resp = try? Chorus_V1_Response(serializedBytes: reply) else { return (kind, "undecodable_reply") }
                            if case let .error(e)? = resp.body { return (kind, codeName(e.code)) }
                            return (kind, resp.body == nil ? "empty" : "ok")
                        } catch {
                            return (kind, "no_reply")
                        }
                    }
                }
            }
            for await r in group { tally(r) }
        }
        report.seconds = (ContinuousClock.now - start).seconds
        report.badRequestRate = report.whole == 0 ? 0 : Double(report.replies["bad_request"] ?? 0) / Double(report.whole)
        // Still serving: a plain partition_map request to every target.
        for (i, t) in targets.enumerated() {
            var ping = Chorus_V1_Request()
            ping.protocolVersion = Wire.protocolVersion
            ping.correlationID = 7 + UInt64(i)
            ping.sender = "fuzz"
            ping.body = .partitionMap(.init())
            let ok: Bool
            if let b: [UInt8] = try? ping.serializedBytes(),
               let reply = try? await clients[i].request(b, correlationId: ping.correlationID, timeout: .seconds(10)),
               let resp = try? Chorus_V1_Response(serializedBytes: reply), case .partitionMap? = resp.body {
                ok = true
            } else {
                ok = false
            }
            if !ok { report.unresponsive.append(t.name) }
        }
        return report
    }

    /// "register_worker", "map_push", ... (the oneof case, from its Swift name).
    static func caseName(_ body: Chorus_V1_Request.OneOf_Body) -> String {
        let label = Mirror(reflecting: body).children.first?.label ?? "\(body)"
        return label.reduce(into: "") { s, c in
            if c.isUppercase { s += "_" + c.lowercased() } else { s.append(c) }
        }
    }

    static func codeName(_ c: Chorus_V1_ErrorCode) -> String {
        switch c {
        case .badRequest: return "bad_request"
        case .notFound: return "not_found"
        case .wrongOwner: return "wrong_owner"
        case .unavailable: return "unavailable"
        case .internal: return "internal"
        case .cancelled: return "cancelled"
        case .unknownNode: return "unknown_node"
        case .fenced: return "fenced"
        default: return "code_\(c.rawValue)"
        }
    }
}
