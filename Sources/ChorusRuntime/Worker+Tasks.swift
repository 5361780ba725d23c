import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import SwiftProtobuf

/// The built-in job kinds not yet moved onto the job SDK (JobSDK/Job.swift); each moves to
/// Sources/ChorusJobs/<Kind>/ and leaves this list.
public enum JobKinds {
    public static let als = "als"
    public static let all = [als]

    /// Tasks per partition of a job (the progress denominator).
    public static func stageCount(_ kind: String, params: [String: String]) -> Int {
        if kind == als {
            // [als-last] + als-load + 2 per iteration + als-save
            let last = params["holdout_by"] == "last" ? 1 : 0
            return last + 2 + 2 * max(1, Int(params["iterations"] ?? "") ?? ALS.Config().iterations)
        }
        return 1
    }
}

extension Worker {
    func runTask(_ t: Chorus_V1_RunTask) async throws -> Chorus_V1_TaskResult {
        guard JobKinds.all.contains(t.kind) else { throw ChorusError(.usage, "unknown job kind '\(t.kind)'") }
        try checkLease("tasks")
        if state.withLock({ $0.map.version }) < t.mapVersion { try await refreshMap() }
        try checkPrimary([t.partition], in: state.withLock { $0.map })
        state.withLock { $0.runningTasks += 1 }
        defer { state.withLock { $0.runningTasks -= 1 } }
        // Test knob: slow every task down so tests can disturb a running job (documented in docs/cli.md).
        if let ms = Int(t.params["debug_task_delay_ms"] ?? ""), ms > 0 {
            _ = try await computeQueue.run { usleep(UInt32(min(ms, 60_000)) * 1000) }
        }
        var result: Chorus_V1_TaskResult
        switch [JobKinds.als].contains(t.kind) ? t.kind : t.stage {
        case JobKinds.als:
            result = try await runALSTask(t)
        default:
            throw ChorusError(.usage, "unknown stage '\(t.stage)' for job kind \(t.kind)")
        }
        // Fencing: a worker that lost its lease or the partition while the task ran returns no result.
        try checkLease("task results")
        let map = state.withLock { $0.map }
        guard map.assignments[Int(t.partition)].owner == nodeId else {
            throw fence("worker \(name) lost partition \(t.partition) while its task ran (map version \(map.version))")
        }
        result.mapVersion = map.version
        return result
    }

    static func idPart(_ key: UnsafeRawBufferPointer) -> String {
        String(decoding: key[5...], as: UTF8.self)
    }

    /// The key id up to the 0x00 separator (the grouping id of a two-part key).
    static func groupId(_ key: UnsafeRawBufferPointer) -> String {
        let rest = key[5...]
        let end = rest.firstIndex(of: 0) ?? rest.endIndex
        return String(decoding: key[5..<end], as: UTF8.self)
    }
}
