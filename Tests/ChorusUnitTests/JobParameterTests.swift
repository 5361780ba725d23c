import ChorusAnalytics
import ChorusModel
import ChorusJobs
@testable import ChorusRuntime
import Foundation
import Testing

/// Every job parameter is declared once and checked at submit (issue 11).
@Suite struct JobParameterTests {
    func usage(_ kind: String, _ params: [String: String]) -> String? {
        do { _ = try JobParameters.validate(kind: kind, params: params, registry: StandardJobs.registry); return nil } catch let e as ChorusError {
            #expect(e.code == .usage && e.exitCode == 64)
            return e.message
        } catch { return "\(error)" }
    }

    @Test func badKeysAndValuesAreRefused() {
        #expect(usage("features", ["nosuchparam": "1"])?.contains("unknown parameter 'nosuchparam'") == true)
        #expect(usage("features", ["as_of": "notanumber"])?.contains("as_of") == true)
        #expect(usage("sentiment", ["sensitivity": "abc"])?.contains("sensitivity") == true)
        #expect(usage("sentiment", ["min_count": "-3"])?.contains("min_count") == true)
        #expect(usage("sentiment", ["sensitivty": "3"])?.contains("did you mean sensitivity?") == true)
        #expect(usage("als", ["rank": "16"])?.contains("mode is required") == true)
        #expect(usage("als", ["mode": "implicit", "rank": "1e300"])?.contains("rank") == true)
        #expect(usage("themes", ["key": "nokey"])?.contains("KIND:NAME") == true)
        #expect(usage("themes", [:])?.contains("key is required") == true)
        #expect(usage("nosuchkind", [:])?.contains("unknown job kind") == true)
        #expect(usage("als", ["mode": "implicit", "seed": "7"]) == nil)
        // Times are stored as unix seconds.
        #expect((try? JobParameters.validate(kind: "features", params: ["as_of": "2025-09-29T00:00:00Z"],
                                             registry: StandardJobs.registry))
                == ["as_of": "1759104000"])
    }

    /// Every `params["KEY"]` the job code reads is declared for some kind, and every kind has declarations: a
    /// parameter added to a job without a declaration would be refused at submit, so this catches it first.
    @Test func everyKeyTheCodeReadsIsDeclared() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        var read = Set<String>()
        let patterns = [try Regex(#"params\["([a-z_]+)"\]"#),
                        try Regex(#"params\.(?:int|int64|double|bool|string)\("([a-z_]+)""#)]
        let files = try FileManager.default.subpathsOfDirectory(atPath: root + "/Sources").filter {
            ($0.hasPrefix("ChorusRuntime/") || $0.hasPrefix("ChorusJobs/")) && $0.hasSuffix(".swift")
        }
        for f in files {
            let text = try String(contentsOfFile: root + "/Sources/" + f, encoding: .utf8)
            for pattern in patterns {
                for m in text.matches(of: pattern) { read.insert(String(m.output[1].substring ?? "")) }
            }
        }
        let registry = StandardJobs.registry
        let kinds = JobParameters.allKinds(registry)
        let declared = Set(kinds.flatMap { JobParameters.declared($0, registry: registry)?.map(\.name) ?? [] })
        let notJobParams: Set<String> = ["job_id"]  // a model-serving record's params, not a job's
        #expect(!read.isEmpty)
        #expect(read.subtracting(declared).subtracting(notJobParams).isEmpty,
                "read but not declared: \(read.subtracting(declared).subtracting(notJobParams).sorted())")
        for kind in kinds { #expect(JobParameters.declared(kind, registry: registry) != nil, "\(kind) has no declarations") }
    }

    @Test func helpFitsEightyColumnsAndShowsTheRealDefaults() {
        let help = JobParameters.helpText(StandardJobs.registry)
        #expect(help.split(separator: "\n").allSatisfy { $0.count <= 80 })
        #expect(help.contains("sensitivity=4:"))
        #expect(String(ALS.Config().rank)
                == JobParameters.declared("als", registry: StandardJobs.registry)?.first { $0.name == "rank" }?.defaultValue)
    }
}

extension JobParameterTests {
    /// Every parameter a user may pass is named in the docs (docs/cli.md, docs/sentiment.md or docs/forecasting.md), so a new one
    /// cannot ship undocumented.
    @Test func everyDeclaredParameterIsDocumented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let docs = try ["docs/cli.md", "docs/sentiment.md", "docs/forecasting.md"].map {
            try String(contentsOfFile: root + "/" + $0, encoding: .utf8)
        }.joined(separator: "\n")
        for kind in JobParameters.allKinds(StandardJobs.registry) {
            for p in JobParameters.declared(kind, registry: StandardJobs.registry) ?? [] where !p.internalUse {
                #expect(docs.contains("`\(p.name)`") || docs.contains("`\(p.name)=")
                        || (p.name.hasPrefix("weight_") && docs.contains("`weight_")),
                        "\(kind): parameter \(p.name) is not in docs/cli.md, docs/sentiment.md or docs/forecasting.md")
            }
        }
    }
}
