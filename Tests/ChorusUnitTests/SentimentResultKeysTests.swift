import ChorusStorage
@testable import ChorusRuntime
import Foundation
import Testing

/// A coordinator store from before the job SDK keeps its sentiment series and alerts (issue 12).
@Suite struct SentimentResultKeysTests {
    @Test func theResultsOfTheReleaseBeforeTheSDKMoveToTheirNewKeysOnce() throws {
        let dir = NSTemporaryDirectory() + "chorus-keys-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(path: dir)
        defer { store.close() }
        try store.put(Array("sentiment/keys".utf8), Array("[1]".utf8))
        try store.put(Array("sentiment/series/topic:tech".utf8), Array("s".utf8))
        try store.put(Array("alert/000000490000/topic:tech/dip".utf8), Array("a".utf8))
        try store.put(Array("job/job-000001".utf8), Array("j".utf8))
        #expect(try SentimentResultKeys.migrate(store) == 3)
        #expect(try store.get(SentimentResultKeys.keys) == Array("[1]".utf8))
        #expect(try store.get(SentimentResultKeys.series("topic:tech")) == Array("s".utf8))
        #expect(try store.get(SentimentResultKeys.alerts + Array("000000490000/topic:tech/dip".utf8)) == Array("a".utf8))
        #expect(try store.get(Array("sentiment/keys".utf8)) == nil && store.get(Array("alert/000000490000/topic:tech/dip".utf8)) == nil)
        #expect(try store.get(Array("job/job-000001".utf8)) == Array("j".utf8))
        #expect(try SentimentResultKeys.migrate(store) == 0)
    }
}
