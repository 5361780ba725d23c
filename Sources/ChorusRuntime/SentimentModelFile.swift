import ChorusAnalytics
import ChorusData
import ChorusModel
import Foundation

/// What a sentiment model says about itself (`chorus model show NAME`): the JSON header of the model file.
public struct SentimentModelInfo: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        public var file: String
        public var set: String
        public var format: String
        /// Records read from the file, and those refused (with file:line:reason in the trainer's output).
        public var read: Int
        public var rejected: Int
        /// Used after de-duplication, split into training and held-out examples.
        public var train: Int
        public var heldOut: Int
        enum CodingKeys: String, CodingKey { case file, set, format, read, rejected, train, heldOut = "held_out" }
    }

    public struct SetMetrics: Codable, Sendable, Equatable {
        public var set: String
        public var examples: Int
        public var accuracy: Double
        /// Macro-F1 over the classes present in the gold labels (binary sets: negative and positive only).
        public var macroF1: Double
        public var f1: [String: Double]
        enum CodingKeys: String, CodingKey { case set, examples, accuracy, macroF1 = "macro_f1", f1 }
    }

    public struct Epoch: Codable, Sendable, Equatable {
        public var epoch: Int
        public var loss: Double
        public var heldOutAccuracy: Double
        enum CodingKeys: String, CodingKey { case epoch, loss, heldOutAccuracy = "held_out_accuracy" }
        public init(epoch: Int, loss: Double, heldOutAccuracy: Double) {
            self.epoch = epoch; self.loss = loss; self.heldOutAccuracy = heldOutAccuracy
        }
    }

    public var format = SentimentModelFile.formatName
    public var name: String
    public var version: Int
    /// ISO 8601, UTC.
    public var createdAt: String
    public var classes: [String] = SentimentLabel.allCases.map(\.name)
    public var dimensions: Int
    public var featurizer = SentimentModelFile.featurizerName
    public var lambda: Double
    public var epochs: Int
    public var finalLoss: Double
    public var heldOutPercent: Int
    public var duplicates: Int
    public var conflicting: Int
    public var sources: [Source]
    /// Held-out metrics per set, measured when training ended.
    public var heldOut: [SetMetrics]
    public var history: [Epoch]
    public var workers: Int
    public var partitions: Int
    public var trainingSeconds: Double
    /// The command that produced it, when recorded.
    public var command: String
    public var notes: String

    public init(name: String, version: Int, createdAt: String, dimensions: Int, lambda: Double, epochs: Int,
                finalLoss: Double, heldOutPercent: Int, duplicates: Int, conflicting: Int, sources: [Source],
                heldOut: [SetMetrics], history: [Epoch], workers: Int, partitions: Int, trainingSeconds: Double,
                command: String, notes: String) {
        self.name = name; self.version = version; self.createdAt = createdAt; self.dimensions = dimensions
        self.lambda = lambda; self.epochs = epochs; self.finalLoss = finalLoss; self.heldOutPercent = heldOutPercent
        self.duplicates = duplicates; self.conflicting = conflicting; self.sources = sources; self.heldOut = heldOut
        self.history = history; self.workers = workers; self.partitions = partitions
        self.trainingSeconds = trainingSeconds; self.command = command; self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case format, name, version, createdAt = "created_at", classes, dimensions, featurizer, lambda, epochs
        case finalLoss = "final_loss", heldOutPercent = "held_out_percent", duplicates, conflicting, sources
        case heldOut = "held_out", history, workers, partitions, trainingSeconds = "training_seconds", command, notes
    }
}

/// The model file: `CHORUSSM` magic, format version (u32 LE), header length (u32 LE), the JSON header
/// (`SentimentModelInfo`), then the parameters as float32 LE in the trainer's layout (classes × dimensions,
/// class-major, then the class biases). Nothing else: the file holds only weights Chorus trained.
public struct SentimentModelFile: Sendable {
    public static let magic = Array("CHORUSSM".utf8)
    public static let formatVersion: UInt32 = 1
    public static let formatName = "chorus-sentiment-model/1"
    public static let featurizerName = "SocialTokenizer + SentimentFeaturizer v1 (FNV-1a 64 hashed names)"
    /// The name of the model shipped in the repository (models/sentiment-default.chsm).
    public static let defaultName = "sentiment-default"

    public var info: SentimentModelInfo
    public var parameters: [Float]

    public init(info: SentimentModelInfo, parameters: [Float]) {
        self.info = info
        self.parameters = parameters
    }

    public func scorer() -> SentimentScorer {
        SentimentScorer(dimensions: info.dimensions, classes: info.classes.count, parameters: parameters)
    }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let header = try encoder.encode(info)
        var out = Self.magic
        out.reserveCapacity(16 + header.count + parameters.count * 4)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u32(Self.formatVersion)
        u32(UInt32(header.count))
        out.append(contentsOf: header)
        for p in parameters { u32(p.bitPattern) }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> SentimentModelFile {
        func bad(_ why: String) -> ChorusError {
            ChorusError(.invalidInput, "not a Chorus sentiment model file: \(why)", hint: "train one with `chorus model train sentiment`")
        }
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { throw bad("wrong magic") }
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        guard u32(8) == formatVersion else { throw bad("format version \(u32(8)); this build reads \(formatVersion)") }
        let headerLength = Int(u32(12))
        guard 16 + headerLength <= bytes.count else { throw bad("truncated header") }
        let info: SentimentModelInfo
        do {
            info = try JSONDecoder().decode(SentimentModelInfo.self, from: Data(bytes[16..<(16 + headerLength)]))
        } catch {
            throw bad("header: \(error)")
        }
        guard info.dimensions > 0, info.dimensions & (info.dimensions - 1) == 0, info.dimensions <= 1 << 24 else {
            throw bad("dimensions \(info.dimensions) is not a power of two up to 2^24")
        }
        // The scorer reads three classes (negative, neutral, positive); a file from the wire may claim any number.
        guard info.classes.count == 3 else { throw bad("\(info.classes.count) classes; a sentiment model has 3") }
        let count = info.classes.count * info.dimensions + info.classes.count
        let start = 16 + headerLength
        guard bytes.count == start + count * 4 else {
            throw bad("expected \(count) parameters, found \((bytes.count - start) / 4)")
        }
        var params = [Float](repeating: 0, count: count)
        for i in 0..<count { params[i] = Float(bitPattern: u32(start + 4 * i)) }
        if let i = params.firstIndex(where: { !$0.isFinite }) { throw bad("parameter \(i) is not finite") }
        return SentimentModelFile(info: info, parameters: params)
    }

    public static func read(path: String) throws -> SentimentModelFile {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw ChorusError(.notFound, "cannot read model file \(path)")
        }
        return try decode([UInt8](d))
    }

    /// The model that ships with Chorus, when it can be found: $CHORUS_MODELS/sentiment-default.chsm, then
    /// `models/` beside the executable's package (a build tree), then /usr/share/chorus/models.
    public static func shippedPath() -> String? {
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["CHORUS_MODELS"] { candidates.append(dir) }
        // .build/<config>/chorus -> the package root is three levels up.
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("models").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/models")
        candidates.append("/usr/share/chorus/models")
        for c in candidates {
            let p = c + "/" + defaultName + ".chsm"
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        return nil
    }
}
