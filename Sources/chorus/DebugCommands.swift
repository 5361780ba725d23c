import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation

/// Hidden: raw requests to one worker, as a stale client or coordinator would send them (fencing checks).
struct Debug: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send raw requests straight to a worker (for fencing checks; not for normal use).",
        shouldDisplay: false, subcommands: [Write.self, Task_.self])

    struct Target: ParsableArguments {
        @Option(help: ArgumentHelp("Worker endpoint.", valueName: "ADDR")) var worker: String
        @Option(help: "Partition.") var partition: UInt32
        @Option(help: "Map version to claim.") var mapVersion: UInt64
        @Option(help: ArgumentHelp("The worker's public key (Z85). Unset: worker.key of the keys directory.", valueName: "KEY"))
        var workerKey: String?
        @OptionGroup var security: SecurityOptions

        /// This client's security, and the worker's server key. `task` sends a cluster-internal request, so it
        /// defaults to the keys directory's `worker` key.
        func resolve(internalRequest: Bool = false) throws -> (NodeSecurity, String?) {
            let s = try security.resolve(server: internalRequest && security.keyName == nil ? "worker" : nil)
            guard s.isSecure, workerKey == nil, let dir = security.keysDir else { return (s, workerKey) }
            let path = (dir as NSString).appendingPathComponent("worker.key")
            let text = try? String(contentsOfFile: path, encoding: .utf8)
            return (s, try text.map { try CurveKeys.Certificate.parse($0, source: path).publicKey })
        }
    }

    struct Write: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write one user record into a partition.")
        @OptionGroup var target: Target
        @Option(help: "User id to write.") var userId: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let (security, key) = try target.resolve()
                let r = try await DebugRequests.writeUser(worker: target.worker, partition: target.partition,
                                                          mapVersion: target.mapVersion, userId: userId,
                                                          security: security, serverKey: key)
                printJSON(["stored": Int(r.stored), "duplicates": Int(r.duplicates)])
            }
        }
    }

    struct Task_: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "task",
                                                        abstract: "Run a features catalog task for a partition.")
        @OptionGroup var target: Target
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let (security, key) = try target.resolve(internalRequest: true)
                let r = try await DebugRequests.runTask(worker: target.worker, kind: "features", stage: "catalog",
                                                        partition: target.partition,
                                                        mapVersion: target.mapVersion,
                                                        security: security, serverKey: key)
                printJSON(["records_read": Int(r.recordsRead), "map_version": Int(r.mapVersion)])
            }
        }
    }
}
