import ChorusJobs
import ChorusRuntime
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
}
