import ArgumentParser
import ChorusData
import ChorusModel
import ChorusRuntime
import Foundation

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the audit log: who drained, removed, rebalanced, reloaded keys, submitted or cancelled jobs, approved plans (admin).",
        discussion: reflow("""
        Every administrative and privacy request the coordinator gets is appended to its audit log, with the name
        and role of the key that sent it (never a name the client wrote), the time, the action, the target and
        the result, refusals included. Oldest first.

        Example: chorus audit --since 24h

        Example: chorus audit --since 2026-12-01T00:00:00Z --json
        """))

    @Option(help: ArgumentHelp("Only entries at or after T: ISO 8601 (2026-12-01T00:00:00Z), unix seconds, or an age such as 30m, 24h, 7d.",
                               valueName: "T"))
    var since: String?

    @Option(help: "The newest this many entries (1...100000).") var limit: UInt32 = 1000

    @OptionGroup var options: ClientOptions

    /// Unix milliseconds of --since.
    static func sinceMs(_ text: String, now: Date = Date()) -> Int64? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let unit = text.last, let scale = units[unit], let n = Double(text.dropLast()), n >= 0, n.isFinite, n < 1e7 {
            return Int64((now.timeIntervalSince1970 - n * scale) * 1000)
        }
        return Timestamp.parse(text).map { $0 * 1000 }
    }

    func run() async throws {
        try await guarded {
            guard (1...100_000).contains(limit) else { throw ChorusError(.usage, "--limit must be 1...100000") }
            var from: Int64 = 0
            if let since {
                guard let ms = Self.sinceMs(since) else {
                    throw ChorusError(.usage, "--since '\(since)' is not a time: use ISO 8601, unix seconds, or an age such as 24h")
                }
                from = ms
            }
            let client = try options.client()
            defer { client.close() }
            let entries = try await client.auditLog(sinceMs: from, limit: limit)
            let iso = ISO8601DateFormatter()
            func time(_ ms: Int64) -> String { iso.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) }
            if options.json {
                printJSON(["entries": entries.map { e -> [String: Any] in
                    ["time": time(e.timeMs), "time_ms": Int(e.timeMs), "principal": e.principal, "role": e.role,
                     "action": e.action, "target": e.target, "ok": e.ok, "result": e.result]
                }])
                return
            }
            if entries.isEmpty {
                print("no audit entries" + (since.map { " since \($0)" } ?? ""))
                return
            }
            let rows = entries.map { e in
                [time(e.timeMs), e.principal.isEmpty ? "-" : e.principal, e.role.isEmpty ? "-" : e.role, e.action, e.target,
                 (e.ok ? "ok: " : "REFUSED/FAILED: ") + e.result]
            }
            let header = ["TIME", "PRINCIPAL", "ROLE", "ACTION", "TARGET", "RESULT"]
            var widths = header.map(\.count)
            for r in rows { for i in 0..<5 { widths[i] = max(widths[i], min(r[i].count, 40)) } }
            func line(_ r: [String]) -> String {
                (0..<5).map { r[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    + "  " + r[5]
            }
            print(line(header))
            rows.forEach { print(line($0)) }
        }
    }
}
