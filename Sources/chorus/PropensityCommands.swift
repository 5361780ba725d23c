import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation

/// `chorus propensity ...`: reads what the last `propensity` job kept on the coordinator.
struct Propensity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The users most likely to convert, from the last `propensity` job.",
        discussion: reflow("""
        A `propensity` job (chorus job submit propensity --wait) fits a logistic regression that predicts whether a
        user converts within horizon_days (default 7), checks it on a later, held-out period, and scores every user
        as of the latest interaction. Its summary (chorus job status ID) gives the held-out AUC, log-loss,
        calibration error, lift and the drivers in words; each user's score and reasons are in `chorus profile get
        USER` under "propensity". See docs/audience.md, "Conversion propensity".
        """),
        subcommands: [Top.self, Features.self])

    struct Top: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the users to target: highest probability of converting first.",
            discussion: reflow("""
            Shows up to --n users of the last propensity job's top list (it keeps the `top` parameter's count,
            default 10,000), with the calibrated probability of a conversion within the horizon, the decile among
            all scored users (1 = the top 10%) and, when a `segments` job has run, the user's segment. --segment ID
            keeps the users of one segment (run `chorus job submit segments` first). Users with too little data are
            never listed: their profile says "insufficient data".
            Example: chorus propensity top --n 100 --segment 2
            """))
        @OptionGroup var client: ClientOptions
        @Option(parsing: .unconditional, help: ArgumentHelp("How many users (1...10000).", valueName: "N")) var n = 100
        @Option(help: ArgumentHelp("Only users of this segment (from the last `segments` job).", valueName: "ID"))
        var segment: Int?

        func validate() throws {
            guard (1...10_000).contains(n) else { throw ValidationError("--n must be between 1 and 10000 (got \(n))") }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                guard let (bytes, job) = try await c.jobResult(kind: "propensity", key: "top") else {
                    throw ChorusError(.notFound, "no propensity scores yet",
                                      hint: "run `chorus job submit propensity --wait` first (after ingesting interactions)")
                }
                guard let d = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                    throw ChorusError(.internal, "the stored top list of \(job) is not JSON")
                }
                let all = d["users"] as? [[String: Any]] ?? []
                var users = all
                if let segment {
                    guard all.contains(where: { $0["segment"] != nil }) else {
                        throw ChorusError(.notFound, "the users of \(job) have no segments",
                                          hint: "run `chorus job submit segments --wait`, then the propensity job again")
                    }
                    users = all.filter { ($0["segment"] as? NSNumber)?.intValue == segment }
                }
                users = Array(users.prefix(n))
                let horizon = (d["horizon_days"] as? NSNumber)?.intValue ?? 0
                let asOf = d["scored_as_of"] as? String ?? ""
                if client.json {
                    var out: [String: Any] = ["job_id": job, "horizon_days": horizon, "scored_as_of": asOf, "users": users]
                    if let segment { out["segment"] = segment }
                    printJSON(out)
                    return
                }
                print("users most likely to convert within \(horizon) days (scored as of \(asOf) by \(job))"
                      + (segment.map { ", segment \($0)" } ?? "") + ":")
                func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
                    let fill = String(repeating: " ", count: max(0, w - s.count))
                    return left ? s + fill : fill + s
                }
                print(pad("rank", 5) + "  " + pad("user", 24, left: true) + "  " + pad("probability", 11) + "  "
                      + pad("decile", 6) + "  segment")
                for (i, u) in users.enumerated() {
                    let p = (u["probability"] as? NSNumber)?.doubleValue ?? 0
                    let dec = (u["decile"] as? NSNumber)?.intValue ?? 0
                    let seg = (u["segment"] as? NSNumber).map { String($0.intValue) } ?? "-"
                    print(pad(String(i + 1), 5) + "  " + pad(u["user_id"] as? String ?? "", 24, left: true) + "  "
                          + pad(String(format: "%.2f%%", 100 * p), 11) + "  " + pad(String(dec), 6) + "  " + seg)
                }
                if users.isEmpty { print("nobody to show" + (segment != nil ? " in this segment" : "")) }
            }
        }
    }

    struct Features: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the design matrix of the last propensity job run with export_features=true (CSV).",
            discussion: reflow("""
            One row per user and period: user_id, slice (fit, dev, calibration: the training period; test: the
            held-out period; score: features as of the end of the data), label (converted within the horizon after
            that period's cutoff; 0 for score rows) and every feature standardized as the model saw it. The model's
            λ, coefficients and calibration are in the job summary. bench/propensity_sklearn.py fits scikit-learn
            on exactly this matrix.
            Example: chorus job submit propensity --param export_features=true --wait
                     chorus propensity features --out /tmp/design.csv
            """))
        @OptionGroup var client: ClientOptions
        @Option(help: ArgumentHelp("Output file (default: standard output).", valueName: "FILE")) var out: String?

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                // A run without export_features stores an empty export, so an older run's matrix is never shown.
                guard let (bytes, job) = try await c.jobResult(kind: "propensity", key: "features"), !bytes.isEmpty else {
                    throw ChorusError(.notFound, "no propensity feature export",
                                      hint: "run `chorus job submit propensity --param export_features=true --wait` first")
                }
                if let out {
                    guard FileManager.default.createFile(atPath: out, contents: Data(bytes)) else {
                        throw ChorusError(.storage, "cannot write \(out)", hint: "check the directory exists and is writable")
                    }
                    if client.json {
                        printJSON(["job_id": job, "out": out, "bytes": bytes.count])
                    } else {
                        eprint("wrote \(out) (\(bytes.count) bytes, from \(job))")
                    }
                } else {
                    FileHandle.standardOutput.write(Data(bytes))
                }
            }
        }
    }
}
