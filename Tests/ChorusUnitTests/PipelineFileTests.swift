import ChorusData
import ChorusModel
import Foundation
import Testing

/// Pipeline files (docs/pipelines.md): JSON and the YAML subset read into the same steps, and every graph error
/// named with the file and the reason.
@Suite struct PipelineFileTests {
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    func parse(_ text: String, _ source: String = "p.yaml") throws -> PipelineSpec {
        try PipelineSpec.parse(Data(text.utf8), source: source)
    }

    func failure(_ text: String, _ source: String = "p.yaml") -> String {
        do {
            _ = try parse(text, source)
            return "no error"
        } catch let e as ChorusError {
            #expect(e.code == .invalidInput, "\(e)")
            return e.message
        } catch {
            return "\(error)"
        }
    }

    @Test func yamlAndJsonGiveTheSameSteps() throws {
        let yaml = try parse("""
        # a comment
        ---
        name: nightly
        steps:
          - name: features
            kind: features
            params:
              as_of: 1759104000   # trailing comment
          - name: als
            kind: als
            after: [features]
            params: {mode: implicit, rank: 16, lambda: 0.1, biases: false}
          - name: "report"
            kind: 'features'
            after:
              - features
              - als
        """)
        let json = try parse("""
        {"name": "nightly", "steps": [
          {"name": "features", "kind": "features", "params": {"as_of": 1759104000}},
          {"name": "als", "kind": "als", "after": ["features"],
           "params": {"mode": "implicit", "rank": 16, "lambda": 0.1, "biases": false}},
          {"name": "report", "kind": "features", "after": ["features", "als"]}
        ]}
        """, "p.json")
        #expect(yaml == json)
        #expect(yaml.name == "nightly")
        #expect(yaml.steps.map(\.name) == ["features", "als", "report"])
        #expect(yaml.steps[1].params == ["mode": "implicit", "rank": "16", "lambda": "0.1", "biases": "false"])
        #expect(yaml.steps[0].params == ["as_of": "1759104000"])
        #expect(yaml.steps[2].after == ["features", "als"])
        // Without an extension the first character decides; without a name, the file's name is the name.
        let sniffed = try parse(#"{"steps": [{"name": "a", "kind": "features"}]}"#, "dir/nightly")
        #expect(sniffed.name == "nightly" && sniffed.steps.count == 1)
    }

    @Test func yamlScalarsQuotesAndSequencesAtTheKeysIndent() throws {
        let p = try parse("""
        steps:
        - name: a
          kind: features
          params:
            keywords: "nova, phone"
            note: 'it''s # not a comment'
            empty: ""
            url: http://x/y
        - {name: b, kind: features, after: a}
        """)
        #expect(p.steps.count == 2)
        #expect(p.steps[0].params == ["keywords": "nova, phone", "note": "it's # not a comment", "empty": "",
                                      "url": "http://x/y"])
        #expect(p.steps[1].after == ["a"])
        #expect(p.name == "p")
    }

    @Test func theOrderPutsDependenciesFirst() throws {
        let p = try parse("""
        steps:
          - {name: c, kind: features, after: [b, a]}
          - {name: a, kind: features}
          - {name: b, kind: features, after: [a]}
        """)
        #expect(try p.order().map { p.steps[$0].name } == ["a", "b", "c"])
    }

    @Test(arguments: [
        ("steps:\n  - {name: a, kind: features}\n  - {name: a, kind: als}\n", "duplicate step name 'a' (steps[0] and steps[1])"),
        ("steps:\n  - {name: a, kind: features, after: [nope]}\n", "step 'a' runs after 'nope', which is not a step of this pipeline"),
        ("steps:\n  - {name: a, kind: features, after: [b]}\n  - {name: b, kind: features, after: [a]}\n",
         "form a cycle: a -> b -> a"),
        ("steps:\n  - {name: a, kind: features, after: [a]}\n", "form a cycle: a -> a"),
        ("steps:\n  - {name: x, kind: features}\n  - {name: a, kind: features, after: [c]}\n  - {name: b, kind: features, after: [a]}\n"
            + "  - {name: c, kind: features, after: [b]}\n", "form a cycle: a -> c -> b -> a"),
        ("steps: []\n", "no steps"),
        ("name: x\n", "no `steps`"),
        ("steps:\n  - {kind: features}\n", "steps[0] has no name"),
        ("steps:\n  - {name: a}\n", "step 'a' has no kind"),
        ("steps:\n  - {name: 'a b', kind: features}\n", "step name 'a b' must be"),
        ("steps:\n  - {name: a, kind: features, afer: [b]}\n", "steps[0]: unknown key 'afer'"),
        ("stpes: []\n", "unknown key 'stpes' at the top level"),
        ("steps:\n  - name: a\n    kind: features\n    params:\n      x:\n        y: 1\n", "steps[0].params.x must be a string"),
        ("steps:\n  - name: a\n     kind: features\n", "line 3: unexpected indentation"),
        ("steps:\n\t- name: a\n", "line 2: a tab in the indentation"),
        ("steps:\n  - name: &x a\n", "line 2: anchors, aliases and tags are not supported"),
        ("steps:\n  - name: a\n    kind: |\n      features\n", "line 3: multi-line scalars"),
        ("steps:\n  - name: \"a\n", "line 2: an unterminated \"string\""),
        ("steps:\n  - name: a\n    name: b\n", "line 3: duplicate key 'name'"),
        ("steps:\n  - {name: a, kind: features, after: [b}\n", "line 2: an unclosed [ or {"),
        ("steps:\n  - {name: a, kind: features, after: [b]\n", "line 2: a flow mapping must end on its line with }"),
        ("just text\n", "line 1: expected `key: value`"),
    ])
    func yamlAndGraphErrorsNameTheFileAndTheReason(_ text: String, _ reason: String) {
        let message = failure(text)
        #expect(message.hasPrefix("p.yaml: "), "\(message)")
        #expect(message.contains(reason), "\(message)")
    }

    @Test func jsonErrorsNameTheLine() {
        let m = failure("{\"steps\": [\n  {\"name\": \"a\", \"kind\": \"features\",}\n]}", "p.json")
        #expect(m.hasPrefix("p.json: line 2: not valid JSON"), "\(m)")
        let dup = failure(#"{"steps": [{"name": "a", "kind": "x"}, {"name": "a", "kind": "y"}]}"#, "p.json")
        #expect(dup.contains("duplicate step name 'a'"), "\(dup)")
        let cyc = failure(#"{"steps": [{"name": "a", "kind": "x", "after": "b"}, {"name": "b", "kind": "y", "after": ["a"]}]}"#, "p.json")
        #expect(cyc.contains("cycle: a -> b -> a"), "\(cyc)")
    }

    /// The shipped examples are the pipeline `chorus local` runs with its defaults.
    @Test func theShippedExamplesAreTheLocalPipeline() throws {
        let local = PipelineSpec.local(users: 2000, seed: 7, sentiment: true)
        for file in ["local-pipeline.yaml", "local-pipeline.json"] {
            let path = Self.repo + "/docs/examples/" + file
            let data = try #require(FileManager.default.contents(atPath: path), "\(path)")
            #expect(try PipelineSpec.parse(data, source: path) == local, "\(file)")
        }
        #expect(PipelineSpec.local(users: 2000, seed: 7, sentiment: false).steps.map(\.name) == ["features", "als", "segments", "influence", "propensity", "forecast", "best-times", "content-insights"])
    }
}
