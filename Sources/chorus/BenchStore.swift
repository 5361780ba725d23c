import ArgumentParser
import ChorusData
import ChorusModel
import ChorusStorage
import Foundation

/// The raw RocksDB batch-write rate on this machine: the limit ingest is measured against.
struct BenchStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-store",
        abstract: "Measure the raw RocksDB batch-write rate with Chorus-like keys and values (benchmark helper).",
        shouldDisplay: false)

    @Option(help: "Keys to write.") var records = 1_000_000
    @Option(help: "Keys per batch.") var batch = 4000
    @Option(help: "Value size in bytes (a stored interaction is about 90).") var valueBytes = 90
    @Option(help: ArgumentHelp("Scratch directory (deleted first).", valueName: "DIR")) var data: String

    func run() async throws {
        try? FileManager.default.removeItem(atPath: data)
        for checkFirst in [false, true] {
            let dir = data + (checkFirst ? "/with-get" : "/put-only")
            let store = try Store(path: dir)
            var g = SplitMix64(seed: 1)
            let value = [UInt8](repeating: 0x61, count: valueBytes)
            let start = ContinuousClock.now
            var written = 0
            while written < records {
                var wb = WriteBatch()
                for _ in 0..<min(batch, records - written) {
                    let id = "u\(g.next() % 1_000_000)\u{0}i\(written)"
                    let key = [0, 0, 0, UInt8(g.next() % 64), 3] + Array(id.utf8)
                    if checkFirst, try store.get(key) == value { continue }
                    wb.put(key, value)
                    written += 1
                }
                try store.write(wb)
            }
            let secs = Double((ContinuousClock.now - start).components.attoseconds) / 1e18
                + Double((ContinuousClock.now - start).components.seconds)
            print(String(format: "  %@: %d keys in %.2f s = %.0f keys/s", checkFirst ? "get+put (idempotent path)" : "put only",
                         written, secs, Double(written) / secs))
            store.close()
        }
        try? FileManager.default.removeItem(atPath: data)
    }
}

