import ArgumentParser
import ChorusData
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

struct Pipeline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a graph of jobs from a file and follow its steps as one unit.",
        discussion: reflow("""
        A pipeline file (JSON or YAML, docs/pipelines.md) names steps, each with a job kind, params and the
        steps it runs after. The coordinator starts each step's job once the steps it names succeeded; a step
        after a failed (or cancelled) one fails (or is cancelled) too, naming it. Pipelines survive a
        coordinator restart: finished steps are kept, the others resume.
        """),
        subcommands: [Run.self, Status.self, Watch.self, List.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit every step of a pipeline file as one request.",
            discussion: reflow("""
            The file is checked before anything is sent: a duplicate step name, an `after` naming no step and a
            cycle exit 65 with the file and the reason; an unknown job kind or parameter exits 64 and creates no
            job. With --wait the steps are followed until all of them ended, and the command exits 1 unless all
            succeeded.

            Example: chorus pipeline run docs/examples/local-pipeline.yaml --wait
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: ArgumentHelp("Pipeline file (.json, .yaml or .yml).", valueName: "FILE")) var file: String
        @Flag(help: "Wait until every step ended, showing their progress.") var wait = false

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let spec = try readPipelineFile(file)
                let c = try client.client()
                defer { c.close() }
                var p = try await c.submitPipeline(spec)
                if wait {
                    p = try await watchPipeline(c, p.id, json: client.json)
                    printPipeline(p, json: client.json)
                    if p.state != .succeeded { throw ExitCode(1) }
                } else {
                    printPipeline(p, json: client.json)
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each step of a pipeline: kind, job, state, progress and stage.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Pipeline id, e.g. pipe-000001.") var id: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                printPipeline(try await c.pipelineStatus(id), json: client.json)
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a pipeline's steps until all of them ended.",
            discussion: "Exit code 0 when every step succeeded, 1 otherwise.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Pipeline id.") var id: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let p = try await watchPipeline(c, id, json: client.json)
                printPipeline(p, json: client.json)
                if p.state != .succeeded { throw ExitCode(1) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List recent pipelines, newest first.")
        @OptionGroup var client: ClientOptions
        @Option(help: "How many.") var limit = 20
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let ps = try await c.pipelines(limit: limit)
                if client.json { printJSON(["pipelines": ps.map(pipelineDict)]) } else {
                    if ps.isEmpty { print("no pipelines yet: run one with `chorus pipeline run FILE`") }
                    ps.forEach { print(pipelineHeadline($0)) }
                }
            }
        }
    }
}

/// Reads and checks a pipeline file: not found 66, unreadable 74, malformed 65 (with the file and the reason).
func readPipelineFile(_ path: String) throws -> PipelineSpec {
    guard FileManager.default.fileExists(atPath: path) else {
        throw ChorusError(.notFound, "pipeline file not found: \(path)")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ChorusError(.storage, "cannot read \(path)")
    }
    return try PipelineSpec.parse(data, source: path)
}

func pipelineDict(_ p: Chorus_V1_PipelineInfo) -> [String: Any] {
    [
        "id": p.id, "name": p.name, "state": jobState(p.state), "submitted_at": iso(p.submittedAtMs),
        "steps": p.steps.map { s -> [String: Any] in
            var d: [String: Any] = ["name": s.name, "kind": s.kind, "job": s.jobID, "after": s.after,
                                    "state": jobState(s.job.state), "progress": s.job.progress, "stage": s.job.stage,
                                    "params": s.params]
            if s.job.startedAtMs > 0 { d["started_at_ms"] = Int(s.job.startedAtMs) }
            if s.job.finishedAtMs > 0 { d["finished_at_ms"] = Int(s.job.finishedAtMs) }
            if !s.job.error.isEmpty { d["error"] = s.job.error }
            return d
        },
    ]
}

func pipelineHeadline(_ p: Chorus_V1_PipelineInfo) -> String {
    let done = p.steps.filter { $0.job.state == .succeeded }.count
    return "\(p.id)  \(p.name.isEmpty ? "-" : p.name)  \(jobState(p.state))  \(done)/\(p.steps.count) steps succeeded"
}

/// The headline and one row per step, columns aligned; the errors of failed steps below.
func pipelineLines(_ p: Chorus_V1_PipelineInfo) -> [String] {
    let header = ["STEP", "KIND", "JOB", "STATE", "PROGRESS", "STAGE"]
    let rows = p.steps.map { s in
        [s.name, s.kind, s.jobID, jobState(s.job.state), String(format: "%5.1f%%", s.job.progress * 100), s.job.stage]
    }
    let widths = (0..<header.count - 1).map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
    func line(_ r: [String]) -> String {
        var out = ""
        for (c, v) in r.enumerated() {
            out += c < widths.count ? v.padding(toLength: widths[c] + 2, withPad: " ", startingAt: 0) : v
        }
        return out.trimmingCharacters(in: .whitespaces)
    }
    var out = [pipelineHeadline(p), line(header)] + rows.map(line)
    for s in p.steps where !s.job.error.isEmpty {
        out.append("\(s.name) (\(s.jobID)): \(jobState(s.job.state)): \(s.job.error)")
    }
    return out
}

func printPipeline(_ p: Chorus_V1_PipelineInfo, json: Bool) {
    if json { printJSON(pipelineDict(p)); return }
    pipelineLines(p).forEach { print($0) }
}

func pipelineEnded(_ p: Chorus_V1_PipelineInfo) -> Bool { p.steps.allSatisfy { jobEnded($0.job) } }

/// Follows a pipeline until every step ended. Progress goes to stderr: on a terminal the step table, redrawn in
/// place (and erased at the end: the caller prints the final one); elsewhere one line per step change; with
/// --json one compact pipeline object per change.
func watchPipeline(_ c: ChorusClient, _ id: String, json: Bool, every: Duration = .milliseconds(400)) async throws
    -> Chorus_V1_PipelineInfo {
    let block = ProgressBlock()
    defer { block.finish() }
    var last: Chorus_V1_PipelineInfo?
    while true {
        let p = try await c.pipelineStatus(id)
        let ended = pipelineEnded(p)
        if json {
            if p != last, let data = try? JSONSerialization.data(withJSONObject: pipelineDict(p), options: [.sortedKeys]) {
                FileHandle.standardError.write(data + Data("\n".utf8))
            }
        } else if !ended {
            if block.terminal {
                block.update(pipelineLines(p))
            } else {
                for s in p.steps {
                    let before = last?.steps.first { $0.name == s.name }?.job
                    if before?.state != s.job.state || before?.stage != s.job.stage {
                        eprint("\(s.name) (\(s.jobID)): " + jobLine(s.job))
                    }
                }
            }
        }
        last = p
        if ended { return p }
        try await Task.sleep(for: every)
    }
}

/// Several live lines on a terminal's stderr, redrawn in place: cursor up over the previous block, erase to the
/// end of the screen, write the new one. Each line is cut to the width, so nothing wraps.
final class ProgressBlock: Sendable {
    let terminal: Bool
    private let drawn = Mutex(0)

    init(terminal: Bool = isatty(2) != 0) { self.terminal = terminal }

    func update(_ lines: [String]) {
        guard terminal else { return }
        let width = ProgressLine.terminalWidth()
        let text = drawn.withLock { n in
            let up = n > 0 ? "\u{1B}[\(n)A" : ""
            n = lines.count
            return up + "\r\u{1B}[J" + lines.map { ProgressLine.fit($0, width: width) + "\n" }.joined()
        }
        FileHandle.standardError.write(Data(text.utf8))
    }

    func finish() {
        guard terminal else { return }
        let n = drawn.withLock { n in defer { n = 0 }; return n }
        if n > 0 { FileHandle.standardError.write(Data("\u{1B}[\(n)A\r\u{1B}[J".utf8)) }
    }
}
