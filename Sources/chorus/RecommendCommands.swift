import ArgumentParser
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

func recommendationsDict(_ r: Chorus_V1_Recommendations, contents: [String: ContentRecord] = [:]) -> [String: Any] {
    ["subject": r.subject, "status": r.status, "model_job": r.modelJob, "message": r.message,
     "items": r.items.map { i in
         var d: [String: Any] = ["content_id": i.contentID, "score": Double(i.score), "because": i.because,
                                 "similarity": Double(i.similarity), "reason": i.reason]
         if let c = contents[i.contentID] { d["content"] = contentSummaryDict(c) }
         return d }]
}

/// What `recommend` and `similar` show of an item: its channel, topics, hashtags and the start of its text.
func contentSummaryDict(_ c: ContentRecord) -> [String: Any] {
    ["channel": c.channel, "topics": c.topics, "hashtags": c.hashtags, "media_type": c.mediaType,
     "author_id": c.authorId, "snippet": snippet(c.text, 80)]
}

/// The first `max` characters of `text` on one line, with "…" when cut (at a word boundary when there is one).
func snippet(_ text: String, _ max: Int) -> String {
    let flat = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    guard flat.count > max else { return flat }
    var cut = String(flat.prefix(max - 1))
    if let space = cut.lastIndex(of: " "), cut.distance(from: cut.startIndex, to: space) > max / 2 {
        cut = String(cut[..<space])
    }
    return cut + "…"
}

/// A hashtag as written: "#tag" (stored hashtags may or may not keep their "#").
func hashtag(_ tag: String) -> String { tag.hasPrefix("#") ? tag : "#" + tag }

/// "“Loving the new camera…” (post on x; tech, #gadgets)", or the bare id when the record is not found.
func contentLabel(_ id: String, _ contents: [String: ContentRecord]) -> String {
    guard let c = contents[id] else { return id }
    let title = c.text.isEmpty ? id : "\u{201C}\(snippet(c.text, 60))\u{201D}"
    let about = (c.topics + c.hashtags.map(hashtag)).prefix(4).joined(separator: ", ")
    let kind = c.mediaType.isEmpty ? "" : c.mediaType + " "
    return title + " (\(c.text.isEmpty ? "" : id + ", ")\(kind)on \(c.channel)\(about.isEmpty ? "" : "; " + about))"
}

func printRecommendations(_ r: Chorus_V1_Recommendations, contents: [String: ContentRecord], json: Bool) {
    if json { printJSON(recommendationsDict(r, contents: contents)); return }
    if !r.message.isEmpty { print(r.message) }
    for (n, i) in r.items.enumerated() {
        print(String(format: "%2d. ", n + 1) + contentLabel(i.contentID, contents) + String(format: "  score %.3f", i.score))
        var why = i.reason
        // The reason names the user's closest item by id; show what it is.
        if !i.because.isEmpty, let c = contents[i.because], why.contains(i.because) {
            why = why.replacingOccurrences(of: i.because, with: contentLabel(i.because, [i.because: c]))
        }
        print("    why: " + why)
    }
    if r.items.isEmpty { print("nothing to show") }
    if !r.modelJob.isEmpty { print("model: \(r.modelJob)") }
}

/// The items of `r` and the items they are explained by, as content records (best effort: a partition that
/// cannot be read within the timeout leaves its items as bare ids, with a note on stderr).
/// `started` is when the command began: the lookup gets what is left of its --timeout.
func contentsFor(_ r: Chorus_V1_Recommendations, subject: String? = nil, _ c: ChorusClient,
                 started: ContinuousClock.Instant) async -> [String: ContentRecord] {
    let ids = r.items.flatMap { [$0.contentID, $0.because] }.filter { !$0.isEmpty } + (subject.map { [$0] } ?? [])
    let left = c.timeout - (ContinuousClock.now - started)
    guard !ids.isEmpty, left > .milliseconds(50) else { return [:] }
    do {
        return try await c.contents(ids, within: left)
    } catch {
        eprint("note: could not read the content records (\(error)); showing ids only")
        return [:]
    }
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
        discussion: reflow("""
        Scores every content item with the user's factors, leaves out what the user already interacted with, and
        shows each item (text snippet or id, channel, topics) with what drove its score: the user's own item
        closest to it, the item's overall rating (explicit mode), or the user's tastes as a whole. A user the
        model has no factors for gets the most popular items instead (status no_factors_yet, never NaN), and a
        message that says why: no interactions, none with a rating for an explicit model, or none it saw.
        Example: chorus recommend u0000042 --n 5
        """))
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
            let started = ContinuousClock.now
            let r = try await c.recommend(userId: userId, n: n)
            printRecommendations(r, contents: await contentsFor(r, c, started: started), json: client.json)
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
            let started = ContinuousClock.now
            let r = try await c.similar(contentId: contentId, n: n)
            let contents = await contentsFor(r, subject: contentId, c, started: started)
            if !client.json, let me = contents[contentId] { print("similar to " + contentLabel(contentId, [contentId: me]) + ":") }
            printRecommendations(r, contents: contents, json: client.json)
        }
    }
}
