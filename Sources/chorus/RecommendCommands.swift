import ArgumentParser
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

func recommendationsDict(_ r: Chorus_V1_Recommendations) -> [String: Any] {
    ["subject": r.subject, "status": r.status, "model_job": r.modelJob, "message": r.message,
     "items": r.items.map { i in
         ["content_id": i.contentID, "score": Double(i.score), "because": i.because,
          "similarity": Double(i.similarity), "reason": i.reason] as [String: Any] }]
}

func printRecommendations(_ r: Chorus_V1_Recommendations, json: Bool) {
    if json { printJSON(recommendationsDict(r)); return }
    if !r.message.isEmpty { print(r.message) }
    for (n, i) in r.items.enumerated() {
        print(String(format: "%2d. ", n + 1) + i.contentID + String(format: "  (score %.3f)  ", i.score) + i.reason)
    }
    if r.items.isEmpty { print("nothing to show") }
    if !r.modelJob.isEmpty { print("model: \(r.modelJob)") }
}

/// The most items `recommend` and `similar` return (the coordinator's cap).
let maxItems = 1000

/// `--n` takes its next word whatever it looks like (so `--n -5` is read as -5, not as a flag) and must be in range.
func validateItemCount(_ n: Int) throws {
    guard (1...maxItems).contains(n) else {
        throw ValidationError("--n must be between 1 and \(maxItems) (got \(n))")
    }
}

struct Recommend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recommend content for a user from the latest `als` job.",
        discussion: """
        Scores every content item with the user's factors, leaves out what the user already interacted with, and
        explains each item by the user's own item closest to it. A user the model has not seen gets a clear
        "no factors yet" (status no_factors_yet) and the most popular items instead, never NaN.
        Example: chorus recommend u0000042 --n 5
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "User id.") var userId: String
    @Option(parsing: .unconditional, help: ArgumentHelp("How many items (1...\(maxItems)).", valueName: "N"))
    var n = 10
    func validate() throws { try validateItemCount(n) }
    func run() async throws {
        setupLogging(level: .warning)
        try await guarded {
            let c = try client.client()
            defer { c.close() }
            printRecommendations(try await c.recommend(userId: userId, n: n), json: client.json)
        }
    }
}

struct Similar: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the content closest to an item in the latest `als` job's factor space.",
        discussion: "Cosine similarity of content factors. Content the model has not seen: status no_factors_yet.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Content id.") var contentId: String
    @Option(parsing: .unconditional, help: ArgumentHelp("How many items (1...\(maxItems)).", valueName: "N"))
    var n = 10
    func validate() throws { try validateItemCount(n) }
    func run() async throws {
        setupLogging(level: .warning)
        try await guarded {
            let c = try client.client()
            defer { c.close() }
            printRecommendations(try await c.similar(contentId: contentId, n: n), json: client.json)
        }
    }
}
