@testable import ChorusRuntime
import ChorusModel
import Foundation
import Testing

/// CurveZMQ keys (issue 17, part 1, the files only): generation through libzmq, zcert files with a 0600 secret,
/// and the allow-list of public keys with roles.
@Suite struct CurveKeysTests {
    func tempDir() -> String { NSTemporaryDirectory() + "chorus-keys-" + UUID().uuidString }

    @Test func generatedFilesRoundTripWithTheirModes() throws {
        #expect(CurveKeys.available, "libzmq here is built with libsodium")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pair = try CurveKeys.generate()
        #expect(CurveKeys.isZ85Key(pair.publicKey) && CurveKeys.isZ85Key(pair.secretKey))
        #expect(CurveKeys.publicKey(ofSecret: pair.secretKey) == pair.publicKey)
        #expect(try CurveKeys.generate() != pair)
        let cert = CurveKeys.Certificate(name: "ingest-1", role: .ingest, publicKey: pair.publicKey, secretKey: pair.secretKey)
        let (pub, sec) = try CurveKeys.write(cert, to: dir)
        #expect(try FileManager.default.attributesOfItem(atPath: sec)[.posixPermissions] as? Int == 0o600)
        let publicText = try String(contentsOfFile: pub, encoding: .utf8)
        #expect(!publicText.contains(pair.secretKey), "the public file holds no secret")
        let readPublic = try CurveKeys.Certificate.parse(publicText, source: pub)
        #expect(readPublic == CurveKeys.Certificate(name: "ingest-1", role: .ingest, publicKey: pair.publicKey))
        let readSecret = try CurveKeys.Certificate.parse(try String(contentsOfFile: sec, encoding: .utf8), source: sec)
        #expect(readSecret == cert)
        // Never overwritten.
        #expect(throws: ChorusError.self) { try CurveKeys.write(cert, to: dir) }
    }

    @Test func allowListReadsADirectoryAndRefusesBadCertificates() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var keys: [String: CurveKeys.KeyPair] = [:]
        for (name, role) in [("w1", CurveKeys.Role.worker), ("ops", .operator), ("ops-new", .operator), ("alice", .analyst)] {
            let p = try CurveKeys.generate()
            keys[name] = p
            _ = try CurveKeys.write(.init(name: name, role: role, publicKey: p.publicKey, secretKey: p.secretKey), to: dir)
        }
        let list = try CurveKeys.AllowList.load(dir)
        #expect(list.byKey.count == 4, "secret files are skipped")
        #expect(list.byKey[keys["w1"]!.publicKey]?.role == .worker)
        #expect(list.byKey[keys["alice"]!.publicKey]?.name == "alice")

        let bad = tempDir()
        defer { try? FileManager.default.removeItem(atPath: bad) }
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        let k = try CurveKeys.generate().publicKey
        for (text, why) in [("metadata\n    role = \"root\"\ncurve\n    public-key = \"\(k)\"\n", "not one of"),
                            ("metadata\n    role = \"admin\"\ncurve\n    public-key = \"short\"\n", "public-key"),
                            ("metadata\n    role = \"admin\"\ncurve\n    public-key = \"\(k)\"\n    secret-key = \"\(try CurveKeys.generate().secretKey)\"\n", "does not belong")] {
            try text.write(toFile: bad + "/x.key", atomically: true, encoding: .utf8)
            do {
                _ = try CurveKeys.AllowList.load(bad)
                Issue.record("accepted: \(text)")
            } catch let e as ChorusError {
                #expect(e.message.contains(why) && e.message.contains("x.key"), "\(e.message)")
            }
        }
    }
}
