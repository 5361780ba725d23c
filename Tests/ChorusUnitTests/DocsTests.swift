import ChorusJobs
@testable import ChorusRuntime
import Foundation
import Testing

/// docs/cli.md names the job kinds the runtime dispatches, no more and no fewer.
@Suite struct DocsTests {
    static let cliDoc: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return (try? String(contentsOf: url.appendingPathComponent("docs/cli.md"), encoding: .utf8)) ?? ""
    }()

    @Test func everyJobKindIsDocumentedAndEveryDocumentedKindExists() throws {
        let line = try #require(Self.cliDoc.split(separator: "\n").first { $0.hasPrefix("Job kinds:") },
                                "docs/cli.md has no \"Job kinds:\" line")
        // The kinds are the backticked words of the sentence up to its first full stop.
        let sentence = line.prefix { $0 != "." }
        let kinds = sentence.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        let all = JobParameters.allKinds(StandardJobs.registry)
        #expect(Set(kinds) == Set(all), "docs: \(kinds), runtime: \(all)")
        #expect(kinds.count == all.count)
    }

    /// docs/operations.md's metric table lists exactly the metrics that have a `# HELP` text (MetricDocs), and
    /// MetricsTests checks that every family a real cluster emits has one.
    @Test func everyMetricIsDocumentedInOperations() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let doc = try String(contentsOf: url.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let documented = Set(doc.split(separator: "\n").filter { $0.hasPrefix("| `chorus_") }
            .map { String($0.dropFirst(3).prefix { $0 != "`" }) })
        let onlyDocs = documented.subtracting(MetricDocs.help.keys).sorted()
        let undocumented = Set(MetricDocs.help.keys).subtracting(documented).sorted()
        #expect(documented == Set(MetricDocs.help.keys), "only in docs: \(onlyDocs); undocumented: \(undocumented)")
    }

    @Test func helpLinesAreAddedBeforeEachTypeLine() {
        let body = Array("# TYPE chorus_up_seconds gauge\nchorus_up_seconds 3.0\n# TYPE other gauge\nother 1\n".utf8)
        let out = String(decoding: MetricDocs.addHelp(body), as: UTF8.self)
        #expect(out == "# HELP chorus_up_seconds \(MetricDocs.help["chorus_up_seconds"]!)\n"
                + "# TYPE chorus_up_seconds gauge\nchorus_up_seconds 3.0\n# TYPE other gauge\nother 1\n")
    }
}
