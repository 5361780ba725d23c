import ArgumentParser
import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation
import Logging

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: membership, partition map, job history and job engine.",
        discussion: reflow("""
        State is kept in RocksDB under --data, so a restart keeps the map, the members and the job history;
        jobs that were running resume from their first stage. Every partition is kept on R workers (--replication);
        dead workers are replaced and joining workers get their share through throttled background moves.
        Example: chorus coordinator --bind tcp://127.0.0.1:7100 --data /var/lib/chorus/coord
        """))

    @Option(help: ArgumentHelp("ZeroMQ endpoint to listen on.", valueName: "ADDR"))
    var bind = "tcp://127.0.0.1:7100"

    @Option(help: ArgumentHelp("Data directory.", valueName: "DIR"))
    var data: String

    @Option(help: "Partition count, fixed when the cluster is created (default 64).")
    var partitions: UInt32?

    @Option(help: "Replication factor R (copies of every partition on distinct workers), fixed when the cluster is created (default 2).")
    var replication: UInt32?

    @Option(help: "Throttle of each partition move, in MiB/s (0 = unlimited).")
    var moveRateMib: Double = 32

    func validate() throws {
        // Checked before the conversion to bytes/s: UInt64(1e300) would trap.
        guard moveRateMib.isFinite, moveRateMib >= 0, moveRateMib <= 1_000_000 else {
            throw ValidationError("--move-rate-mib must be 0...1000000 (0 = unthrottled)")
        }
    }

    @Option(help: "Partition moves in flight at once in the whole cluster.")
    var maxMoves: Int = 4

    @Flag(help: "Refuse an approval of a document version (a campaign plan) by the person who wrote it.")
    var blockSelfApproval = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        setupLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        try await guarded {
            var o = CoordinatorOptions(bind: bind, dataDir: data, partitions: partitions, replication: replication)
            o.jobs = StandardJobs.registry
            o.moves.rateBytesPerSecond = UInt64(max(0, moveRateMib) * 1_048_576)
            o.moves.maxMoves = max(1, maxMoves)
            o.blockSelfApproval = blockSelfApproval
            let c = try Coordinator(options: o, logger: Logger(label: "chorus.coordinator"))
            print("coordinator listening on \(c.endpoint)")
            fflush(nil)
            let task = Task { await c.run() }
            await waitForTermination()
            c.shutdown()
            task.cancel()
            await task.value
            c.closeStore()
        }
    }
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: a RocksDB shard of partitions that applies writes and runs tasks.",
        discussion: reflow("""
        The worker's id is minted once and kept in --data, so a restart rejoins as the same node.
        Example: chorus worker --coordinator tcp://127.0.0.1:7100 --bind tcp://127.0.0.1:7101 --data /var/lib/chorus/w1
        """))

    @Option(help: ArgumentHelp("Coordinator endpoint.", valueName: "ADDR"))
    var coordinator: String = ProcessInfo.processInfo.environment["CHORUS_COORDINATOR"] ?? "tcp://127.0.0.1:7100"

    @Option(help: ArgumentHelp("ZeroMQ endpoint to listen on (port * = any free port).", valueName: "ADDR"))
    var bind = "tcp://127.0.0.1:*"

    @Option(help: ArgumentHelp("Address other processes use to reach this worker (default: the bound one).",
                               valueName: "ADDR"))
    var advertise: String?

    @Option(help: ArgumentHelp("Data directory.", valueName: "DIR"))
    var data: String

    @Option(help: "Human-readable node name (default: derived from the node id).")
    var name: String?

    @Option(help: "Cores to use for tasks (default: all).")
    var cores: Int?

    @Option(help: ArgumentHelp("""
        Free space (MiB) to keep on the data directory's disk. Below it the worker warns and takes no new \
        partition copies; after a full disk made it read-only, it resumes writes once this much is free again.
        """, valueName: "MiB"))
    var minFreeMib: UInt64 = 512

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        setupLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        try await guarded {
            var o = WorkerOptions(coordinator: coordinator, bind: bind, advertise: advertise, dataDir: data, name: name)
            o.jobs = StandardJobs.registry
            if let cores { o.cores = cores }
            guard minFreeMib <= 1 << 30 else { throw ChorusError(.usage, "--min-free-mib \(minFreeMib) is too large") }
            o.minFreeBytes = minFreeMib << 20
            let w = try Worker(options: o, logger: Logger(label: "chorus.worker"))
            print("worker \(w.name) (\(w.nodeId)) listening on \(w.endpoint)")
            fflush(nil)
            let task = Task { await w.run() }
            await waitForTermination()
            w.shutdown()
            task.cancel()
            await task.value
            w.closeStore()
        }
    }
}
