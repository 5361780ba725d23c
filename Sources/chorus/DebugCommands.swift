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
    }

    struct Write: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write one user record into a partition.")
        @OptionGroup var target: Target
        @Option(help: "User id to write.") var userId: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let r = try await DebugRequests.writeUser(worker: target.worker, partition: target.partition,
                                                          mapVersion: target.mapVersion, userId: userId)
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
                let r = try await DebugRequests.runTask(worker: target.worker, kind: "features", stage: "catalog",
                                                        partition: target.partition,
                                                        mapVersion: target.mapVersion)
                printJSON(["records_read": Int(r.recordsRead), "map_version": Int(r.mapVersion)])
            }
        }
    }
}
