import ChorusAnalytics
import ChorusData
import ChorusModel
import ChorusWire
import Foundation

/// Keys of stored models in the coordinator's store: "model/<name>/<version, 8 digits>".
enum ModelKeys {
    static func key(_ name: String, _ version: Int) -> [UInt8] { Array("model/\(name)/\(String(format: "%08d", version))".utf8) }
    static func prefix(_ name: String) -> [UInt8] { Array("model/\(name)/".utf8) }
    static let all = Array("model/".utf8)
}

extension Coordinator {
    // MARK: - Model store

    /// Stores a model file as the next version of its name; returns that version.
    /// The version is chosen and written in one job of the serial `storeQueue`, off the cooperative pool.
    func storeModel(_ file: SentimentModelFile, name: String? = nil, shipped: Bool = false) async throws -> Chorus_V1_ModelSummary {
        var named = file
        let n = name ?? named.info.name
        guard !n.isEmpty, n.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ChorusError(.usage, "model name '\(n)' must be letters, digits, '-', '_' or '.'")
        }
        named.info.name = n
        if shipped { named.info.notes = (named.info.notes.isEmpty ? "" : named.info.notes + "; ") + "shipped with Chorus" }
        let unnumbered = named
        let (f, bytes) = try await storeQueue.run { () throws -> (SentimentModelFile, [UInt8]) in
            var f = unnumbered
            // Versions are numbered per coordinator: a file exported elsewhere as version 2 may be version 1 here.
            // The number it carried is kept in the notes, so `model show` explains the difference.
            let carried = f.info.version
            f.info.version = (try self.latestModelVersion(n) ?? 0) + 1
            if carried > 0, carried != f.info.version, !f.info.notes.contains("was version \(carried) ") {
                f.info.notes = (f.info.notes.isEmpty ? "" : f.info.notes + "; ")
                    + "was version \(carried) where it was exported; versions are numbered per coordinator"
            }
            let bytes = try f.encoded()
            do { try self.store.put(ModelKeys.key(n, f.info.version), bytes, sync: true) } catch { throw ChorusError(.storage, "\(error)") }
            return (f, bytes)
        }
        logger.info("model stored", metadata: ["model": "\(n)", "version": "\(f.info.version)", "bytes": "\(bytes.count)"])
        return try summary(f.info, bytes: bytes.count)
    }

    func latestModelVersion(_ name: String) throws -> Int? {
        var latest: Int?
        try store.scan(prefix: ModelKeys.prefix(name)) { key, _ in
            let s = String(decoding: key, as: UTF8.self)
            if let v = Int(s.split(separator: "/").last ?? "") { latest = max(latest ?? 0, v) }
            return true
        }
        return latest
    }

    func summary(_ info: SentimentModelInfo, bytes: Int) throws -> Chorus_V1_ModelSummary {
        var s = Chorus_V1_ModelSummary()
        s.name = info.name
        s.version = UInt32(info.version)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        s.infoJson = String(decoding: try enc.encode(info), as: UTF8.self)
        s.bytes = UInt64(bytes)
        s.shipped = info.notes.contains("shipped with Chorus")
        if let d = ISO8601DateFormatter().date(from: info.createdAt) { s.storedAtMs = Int64(d.timeIntervalSince1970 * 1000) }
        return s
    }

    func listModels(_ r: Chorus_V1_ModelRequest) throws -> Chorus_V1_ModelList {
        var list = Chorus_V1_ModelList()
        try store.scan(prefix: r.name.isEmpty ? ModelKeys.all : ModelKeys.prefix(r.name)) { _, value in
            let f = try SentimentModelFile.decode([UInt8](value))
            list.models.append(try summary(f.info, bytes: value.count))
            return true
        }
        return list
    }

    func getModel(_ r: Chorus_V1_ModelRequest) throws -> Chorus_V1_ModelReply {
        let name = r.name.isEmpty ? SentimentModelFile.defaultName : r.name
        guard let version = r.version > 0 ? Int(r.version) : try latestModelVersion(name),
              let bytes = try store.get(ModelKeys.key(name, version)) else {
            throw ChorusError(.notFound, "no model '\(name)'\(r.version > 0 ? " version \(r.version)" : "")",
                              hint: "see `chorus model list`")
        }
        let f = try SentimentModelFile.decode(bytes)
        var reply = Chorus_V1_ModelReply()
        reply.summary = try summary(f.info, bytes: bytes.count)
        if r.withFile { reply.file = Data(bytes) }
        return reply
    }

    /// At start: stores the shipped default model if no model of that name is stored yet.
    func loadShippedModel() async {
        do {
            guard try latestModelVersion(SentimentModelFile.defaultName) == nil else { return }
            guard let path = SentimentModelFile.shippedPath() else {
                logger.notice("no shipped sentiment model found (models/sentiment-default.chsm); train one with `chorus model train sentiment`")
                return
            }
            let s = try await storeModel(try SentimentModelFile.read(path: path), shipped: true)
            logger.info("shipped sentiment model loaded", metadata: ["path": "\(path)", "version": "\(s.version)"])
        } catch {
            logger.warning("could not load the shipped sentiment model", metadata: ["error": "\(error)"])
        }
    }
}
