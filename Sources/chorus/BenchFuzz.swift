import ArgumentParser
import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation
import Logging

/// Structure-aware wire fuzzing of a running cluster (issue 21; docs/architecture.md, "Messages"). Sends random
/// well-formed `Request`s (and truncated, corrupted and multi-frame ones) to the coordinator and every worker, and
/// prints what came back. Whether a process died is for the caller to check (the fuzz test and bench/fuzz.sh do).
struct BenchFuzz: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-fuzz",
        abstract: "Send random well-formed requests to a cluster's coordinator and workers (fuzzing helper).",
        discussion: "Do not point it at a cluster whose data matters: random write batches are stored.",
        shouldDisplay: false)

    @OptionGroup var client: ClientOptions
    @Option(help: "Requests to send.") var messages = 2000
    @Option(help: "Random seed (the same seed sends the same requests).") var seed: UInt64 = 1
    @Option(help: "Stop after this many seconds even if not all requests were sent.") var seconds: Double = 60
    @Option(help: "Requests in flight at once.") var concurrency = 16
    @Option(help: "Fuzz only the coordinator, only the workers, or both.") var targets = "all"

    func run() async throws {
        setupLogging(level: .error)
        try await guarded {
            guard seconds.isFinite, seconds > 0, seconds <= 86_400, messages >= 0, (1...1024).contains(concurrency),
                  ["all", "coordinator", "workers"].contains(targets) else {
                throw ChorusError(.usage, "bench-fuzz: --seconds in (0, 86400], --messages ≥ 0, --concurrency in "
                                  + "1...1024, --targets all, coordinator or workers")
            }
            let c = try client.client()
            let status = try await c.clusterStatus()
            c.close()
            var list: [WireFuzz.Target] = []
            if targets != "workers" { list.append(.init(name: "coordinator", endpoint: client.coordinator, coordinator: true)) }
            if targets != "coordinator" {
                for n in status.nodes where n.state != .dead && !n.address.isEmpty {
                    list.append(.init(name: n.name, endpoint: n.address, coordinator: false, serverKey: n.publicKey))
                }
            }
            guard !list.isEmpty else { throw ChorusError(.unavailable, "bench-fuzz: nothing to fuzz") }
            // The cluster id gets map pushes past the cluster check, so the map's own rules are exercised.
            // Client requests go with this client's key; cluster-internal ones with the keys directory's `worker`
            // key when there is one, so they reach their handlers.
            var securities = [try client.security.resolve(server: nil)]
            if securities[0].isSecure, let dir = client.security.keysDir,
               let worker = try? NodeSecurity.load(keysDir: dir, name: "worker") {
                securities.append(worker)
            }
            let report = try await WireFuzz.run(targets: list, securities: securities, messages: messages, seed: seed, seconds: seconds,
                                                concurrency: concurrency, dictionary: [status.coordinatorID],
                                                seeds: WireFuzz.seeds(partitions: status.partitionCount,
                                                                      clusterId: status.coordinatorID,
                                                                      jobs: StandardJobs.registry))
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            if !report.unresponsive.isEmpty {
                throw ChorusError(.unavailable, "no longer answering after the fuzz: "
                                  + report.unresponsive.joined(separator: ", "))
            }
        }
    }
}
